/**
 * CORS for browser players on another origin (a web app, a Smart TV app):
 * without `Access-Control-Allow-Origin` a browser hides every answer of the
 * edge from the page, so a 403 (denied, session ended) reads as "network
 * error, status 0", indistinguishable from a dead server (operator issue,
 * part 2).
 *
 * Configured by `cors.origins` (`--cors-origin`): exact origins, or `*`.
 * - A request whose `Origin` is allowed gets `Access-Control-Allow-Origin`
 *   (its origin, or `*`), `Vary: Origin` (unless `*`: the answer is then the
 *   same for every origin), `Access-Control-Expose-Headers` (what a player
 *   reads beyond the CORS-safelisted headers) and, with `cors.credentials`,
 *   `Access-Control-Allow-Credentials`. On every answer of the public
 *   listener: forwarded responses, rewritten playlists, and the edge's own
 *   errors and redirects.
 * - Any other `Origin` (or none) gets no CORS header at all: the browser then
 *   blocks the page from reading the answer, as it should.
 * - A preflight (`OPTIONS` with `Access-Control-Request-Method`) is answered
 *   by the edge itself, 204, on any path: it never opens a session, asks the
 *   middleware or reaches the origin.
 * - The origin's own `Access-Control-*` headers win: a forwarded response
 *   that already carries `Access-Control-Allow-Origin` passes as it is, and
 *   the edge adds none of its own (two policies in one response would mean
 *   whatever the browser read first; one would be doubled).
 *
 * Everything a response needs is built once, per configured origin (or once
 * for `*`), when the policy is made: the hot path looks the request's Origin
 * up in a map and appends a ready array. No per-request allocation.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CorsConfig } from '../config/schema.js';

/**
 * What a player may read beyond the CORS-safelisted response headers
 * (Cache-Control, Content-Language, Content-Length, Content-Type, Expires,
 * Last-Modified, Pragma): byte ranges (`Content-Range`, `Accept-Ranges`),
 * when to retry a 503 (`Retry-After`), the age and identity of a cached
 * object (`Age`, `Date`, `ETag`, `X-Cache`). `Content-Length` is listed too,
 * for browsers older than its safelisting. The JSON error body needs nothing:
 * any allowed response's body is readable.
 */
export const CORS_EXPOSED_HEADERS = 'Content-Length, Content-Range, Accept-Ranges, Retry-After, Age, Date, ETag, X-Cache';

/** Methods the public listener serves, as a preflight answer and an `Allow` header name them. */
export const CORS_ALLOWED_METHODS = 'GET, HEAD, OPTIONS';

/**
 * Request headers a preflight may ask for and get: what players send
 * (ranges, conditional requests, cache control, Apple's playback session ID).
 * Anything else requested is left out of the answer, so the browser does not
 * send it: the edge has no use for it, and the origin should not get it from
 * a page on another site.
 */
const ALLOWED_REQUEST_HEADERS: ReadonlySet<string> = new Set([
  'range',
  'if-range',
  'if-none-match',
  'if-modified-since',
  'cache-control',
  'pragma',
  'accept',
  'accept-language',
  'content-language',
  'x-playback-session-id',
  'x-requested-with',
]);

/** A preflight asking for too many headers is cut short: a browser never asks for more than a handful. */
const MAX_PREFLIGHT_HEADERS = 32;

/**
 * The serialized form of one `cors.origins` entry, as a browser writes the
 * `Origin` header (scheme and host lower-case, no default port, no path), or
 * undefined when the entry is not an origin. `null` is the origin of
 * sandboxed frames and of some Smart TV apps loaded from a file.
 */
export function normalizeCorsOrigin(entry: string): string | undefined {
  const text = entry.trim();
  if (text === '*' || text === 'null') return text;
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#\s]*)\/?$/.exec(text);
  if (m === null) return undefined;
  const scheme = m[1]!.toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') return `${scheme}://${m[2]!.toLowerCase()}`;
  try {
    const url = new URL(text);
    if (url.username !== '' || url.password !== '' || url.host === '') return undefined;
    return url.origin;
  } catch {
    return undefined;
  }
}

/** The `Origin` header's value from a raw header list, without building `req.headers` (no allocation). */
export function originHeader(raw: readonly string[]): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (
      name.length === 6 &&
      (name.charCodeAt(0) | 0x20) === 0x6f /* o */ &&
      (name.charCodeAt(1) | 0x20) === 0x72 /* r */ &&
      (name.charCodeAt(2) | 0x20) === 0x69 /* i */ &&
      (name.charCodeAt(3) | 0x20) === 0x67 /* g */ &&
      (name.charCodeAt(4) | 0x20) === 0x69 /* i */ &&
      (name.charCodeAt(5) | 0x20) === 0x6e /* n */
    ) {
      return raw[i + 1];
    }
  }
  return undefined;
}

/** True when a flat [name, value, …] response header list already has `Access-Control-Allow-Origin`. */
export function hasAllowOrigin(headers: readonly string[]): boolean {
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (name.length === 27 && name.toLowerCase() === 'access-control-allow-origin') return true;
  }
  return false;
}

export class CorsPolicy {
  /** Response headers for `*`, or undefined when origins are listed. */
  private readonly any: readonly string[] | undefined;
  /** Response headers per listed origin. */
  private readonly byOrigin: ReadonlyMap<string, readonly string[]>;
  /** Preflight headers per allowed origin (before Allow-Headers, which echoes the request). */
  private readonly preflightAny: readonly string[] | undefined;
  private readonly preflightByOrigin: ReadonlyMap<string, readonly string[]>;

  /** undefined when CORS is off (no `cors.origins`): no header is ever added. */
  static from(config: CorsConfig | undefined): CorsPolicy | undefined {
    return config === undefined ? undefined : new CorsPolicy(config);
  }

  private constructor(config: CorsConfig) {
    const credentials = config.credentials ? ['access-control-allow-credentials', 'true'] : [];
    const build = (origin: string): string[] => [
      'access-control-allow-origin',
      origin,
      ...(origin === '*' ? [] : ['vary', 'Origin']),
      ...credentials,
      'access-control-expose-headers',
      CORS_EXPOSED_HEADERS,
    ];
    const preflight = (origin: string): string[] => [
      'access-control-allow-origin',
      origin,
      // The answer depends on the origin and on the headers asked for: caches must key on both.
      'vary',
      origin === '*' ? 'Access-Control-Request-Headers' : 'Origin, Access-Control-Request-Headers',
      ...credentials,
      'access-control-allow-methods',
      CORS_ALLOWED_METHODS,
      'access-control-max-age',
      String(config.maxAgeS),
    ];
    const wildcard = config.origins.includes('*');
    this.any = wildcard ? Object.freeze(build('*')) : undefined;
    this.preflightAny = wildcard ? Object.freeze(preflight('*')) : undefined;
    this.byOrigin = new Map(wildcard ? [] : config.origins.map((o) => [o, Object.freeze(build(o))]));
    this.preflightByOrigin = new Map(wildcard ? [] : config.origins.map((o) => [o, Object.freeze(preflight(o))]));
  }

  /**
   * Headers to append to a response to a request with this `Origin`: a
   * ready, shared array (never modify it), or undefined when the request
   * sent no Origin or one that is not allowed.
   */
  headersFor(origin: string | undefined): readonly string[] | undefined {
    if (origin === undefined) return undefined;
    return this.any ?? this.byOrigin.get(origin);
  }

  /** The same, read from the request behind a response (every serving path has its `res`). */
  headersForResponse(res: ServerResponse): readonly string[] | undefined {
    return this.headersFor(originHeader(res.req.rawHeaders));
  }

  /**
   * Answers an `OPTIONS` request: 204 with `Allow`, plus the preflight's
   * CORS headers when its Origin is allowed. Counts nothing and touches no
   * session: the caller records the request.
   */
  answerOptions(req: IncomingMessage, res: ServerResponse): void {
    const headers: string[] = ['allow', CORS_ALLOWED_METHODS, 'content-length', '0', 'cache-control', 'no-store'];
    const origin = originHeader(req.rawHeaders);
    const preflight = origin === undefined ? undefined : (this.preflightAny ?? this.preflightByOrigin.get(origin));
    if (preflight !== undefined) {
      headers.push(...preflight);
      const asked = allowedRequestHeaders(req.headers['access-control-request-headers']);
      if (asked !== '') headers.push('access-control-allow-headers', asked);
    }
    res.writeHead(204, headers);
    res.end();
  }
}

/** The headers a preflight asked for that players may send, lower-case, comma-separated ('' for none). */
export function allowedRequestHeaders(requested: string | undefined): string {
  if (requested === undefined || requested === '') return '';
  const out: string[] = [];
  const names = requested.split(',', MAX_PREFLIGHT_HEADERS);
  for (const name of names) {
    const n = name.trim().toLowerCase();
    if (ALLOWED_REQUEST_HEADERS.has(n) && !out.includes(n)) out.push(n);
  }
  return out.join(', ');
}
