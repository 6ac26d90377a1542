/**
 * Header rules of the forward path (RFC 9110 §7.6.1): hop-by-hop headers are
 * not forwarded either way, and the forwarding headers say who the client is.
 */

export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Request headers we set ourselves, so the client's copies are dropped. */
const REPLACED_ON_REQUEST = new Set(['host', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-real-ip', 'accept-encoding', 'content-length', 'expect']);

/**
 * Request headers a client could use to make the origin believe something the
 * edge did not check, never passed on: `Forwarded` (RFC 7239: another
 * client address, host or protocol), and the URL overrides some frameworks
 * honour (`X-Original-URL`, `X-Rewrite-URL`: another path than the one whose
 * channel was matched). Every `X-Forwarded-*` is dropped too (prefix check
 * below); the edge writes its own For/Proto/Host.
 */
const STRIPPED_ON_REQUEST = new Set(['forwarded', 'x-original-url', 'x-rewrite-url']);
const X_FORWARDED = 'x-forwarded-';

/** Header names listed in a Connection header are hop-by-hop too. */
function connectionTokens(raw: readonly string[]): Set<string> | undefined {
  let tokens: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === 10 && raw[i]!.toLowerCase() === 'connection') {
      tokens ??= new Set();
      for (const t of raw[i + 1]!.split(',')) tokens.add(t.trim().toLowerCase());
    }
  }
  return tokens;
}

export interface ForwardingInfo {
  /** `host[:port]` of the upstream. */
  readonly upstreamHost: string;
  readonly clientIp: string;
  /** The request came from a trusted proxy: its X-Forwarded-* are kept and extended. */
  readonly fromTrustedProxy: boolean;
  readonly peerIp: string;
  /**
   * A playlist is rewritten, so byte ranges of the upstream body mean nothing
   * for what the client gets: Range / If-Range are not forwarded and the full
   * playlist comes back (ffmpeg sends `Range: bytes=0-` on every request; a
   * 206 would pass the playlist through unrewritten).
   */
  readonly dropRange?: boolean;
}

/**
 * True when the raw header list has more than one Host: the middleware
 * (X-Real-Host) would read the first and the origin, behind another proxy,
 * maybe the second (hardening issue, item 13). Compares names without
 * lower-casing them: no allocation.
 */
export function hasDuplicateHost(raw: readonly string[]): boolean {
  let seen = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (
      name.length === 4 &&
      (name.charCodeAt(0) | 0x20) === 0x68 /* h */ &&
      (name.charCodeAt(1) | 0x20) === 0x6f /* o */ &&
      (name.charCodeAt(2) | 0x20) === 0x73 /* s */ &&
      (name.charCodeAt(3) | 0x20) === 0x74 /* t */
    ) {
      if (seen) return true;
      seen = true;
    }
  }
  return false;
}

/** `name` equals `lower` (a lower-case header name of the same length) ignoring ASCII case, without allocating. */
function isNamed(name: string, lower: string): boolean {
  // `| 0x20` folds letters only; no other token character (RFC 9110 §5.6.2) folds onto a letter or `-`.
  for (let i = 0; i < lower.length; i++) if ((name.charCodeAt(i) | 0x20) !== lower.charCodeAt(i)) return false;
  return true;
}

/**
 * What the request path reads from a request head, in one pass over the raw
 * list: the checks (more than one Host, a Transfer-Encoding) and the values a
 * new session keeps (Host, User-Agent, Referer, as `req.headers` gives them:
 * the first of duplicates, '' when absent). `req.headers` is built lazily by
 * Node, one object and a lower-cased name per header: the hot path never asks
 * for it. One instance per request handler, refilled by each request before
 * anything can interleave (the handler reads it synchronously).
 */
export class RequestHead {
  duplicateHost = false;
  /** A Transfer-Encoding is declared (players send no bodies). */
  framesBody = false;
  host = '';
  userAgent = '';
  referer = '';

  read(raw: readonly string[]): this {
    let hosts = 0;
    let host = '';
    let userAgent: string | undefined;
    let referer: string | undefined;
    let framesBody = false;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      switch (name.length) {
        case 4:
          if (isNamed(name, 'host') && hosts++ === 0) host = raw[i + 1]!;
          break;
        case 7:
          if (referer === undefined && isNamed(name, 'referer')) referer = raw[i + 1]!;
          break;
        case 10:
          if (userAgent === undefined && isNamed(name, 'user-agent')) userAgent = raw[i + 1]!;
          break;
        case 17:
          if (isNamed(name, 'transfer-encoding')) framesBody = true;
          break;
      }
    }
    this.duplicateHost = hosts > 1;
    this.framesBody = framesBody;
    this.host = host;
    this.userAgent = userAgent ?? '';
    this.referer = referer ?? '';
    return this;
  }
}

/**
 * Upstream request headers as a flat [name, value, …] list (undici's cheapest
 * form), from the client's raw headers.
 */
export function upstreamRequestHeaders(raw: readonly string[], info: ForwardingInfo): string[] {
  const dropped = connectionTokens(raw);
  const out: string[] = ['host', info.upstreamHost];
  let xff: string | undefined;
  let proto: string | undefined;
  let clientHost: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    if (name === 'host') clientHost = value;
    else if (name === 'x-forwarded-for') xff = xff === undefined ? value : `${xff}, ${value}`;
    else if (name === 'x-forwarded-proto') proto ??= value;
    if (HOP_BY_HOP.has(name) || REPLACED_ON_REQUEST.has(name) || STRIPPED_ON_REQUEST.has(name) || name.startsWith(X_FORWARDED) || dropped?.has(name) === true) continue;
    if (info.dropRange === true && (name === 'range' || name === 'if-range')) continue;
    out.push(name, value);
  }
  // From a trusted proxy the chain goes on; from anyone else it starts here (a client's own XFF is a lie we don't pass on).
  out.push('x-forwarded-for', info.fromTrustedProxy && xff !== undefined ? `${xff}, ${info.peerIp}` : info.clientIp);
  out.push('x-forwarded-proto', info.fromTrustedProxy && proto !== undefined ? proto : 'http');
  if (clientHost !== undefined) out.push('x-forwarded-host', clientHost);
  out.push('x-real-ip', info.clientIp);
  return out;
}

/**
 * Response headers for the client from undici's raw list, minus hop-by-hop
 * ones and any listed in `drop` (lower-case). Returns a flat [name, value, …]
 * list as `res.writeHead` accepts it.
 */
export function clientResponseHeaders(raw: readonly (string | Buffer)[], drop?: ReadonlySet<string>): string[] {
  const strings = raw.map((v) => (typeof v === 'string' ? v : v.toString('latin1')));
  const dropped = connectionTokens(strings);
  const out: string[] = [];
  for (let i = 0; i < strings.length; i += 2) {
    const name = strings[i]!.toLowerCase();
    if (HOP_BY_HOP.has(name) || dropped?.has(name) === true || drop?.has(name) === true) continue;
    out.push(strings[i]!, strings[i + 1]!);
  }
  return out;
}
