/**
 * The HTTP client every middleware backend uses: a keep-alive undici Pool per
 * middleware origin, the client's raw query passed byte for byte, a body read
 * with a size cap, and transport failures turned into EdgeErrors
 * (EDGE_ERR_BACKEND_*: "unavailable"). A backend file only builds the request
 * and reads the answer (describeRequest / interpret, call.ts); whether a
 * status is a decision at all (5xx is not) is the backend's interpret's call.
 */
import { readFileSync } from 'node:fs';
import { Pool } from 'undici';
import { EdgeError, classifyTransportError, type ErrorCode } from '../../errors.js';
import type { MiddlewareCall } from './call.js';

export interface MiddlewareClientOptions {
  /** Base URL as configured; with or without a trailing slash. */
  readonly url: string;
  readonly timeoutMs: number;
  /**
   * undici's own limit on waiting for the answer's headers and body (default
   * timeoutMs). GuardedBackend lets a call outlive its caller's timeout so the
   * middleware is never asked more than backend.concurrency at once, and sets
   * this to its hard limit: at timeoutMs undici would close the connection
   * while the middleware still works on the request (auth/guarded.ts).
   */
  readonly exchangeLimitMs?: number;
  readonly maxBodyBytes: number;
  readonly connections: number;
  /** PEM file with the CA that signed an HTTPS middleware's certificate (private PKI). */
  readonly caFile?: string;
}

export interface MiddlewareAnswer {
  readonly status: number;
  header(name: string): string | undefined;
  /** The body as text, up to maxBodyBytes (undefined when not asked for, or cut). */
  readonly body: string | undefined;
}

/** The code a transport failure of a middleware call is recorded with (`check` reports the same). */
export const TRANSPORT_FAILURE_CODE: Readonly<Record<string, ErrorCode>> = {
  timeout: 'EDGE_ERR_BACKEND_TIMEOUT',
  refused: 'EDGE_ERR_BACKEND_REFUSED',
  reset: 'EDGE_ERR_BACKEND_RESET',
  invalid: 'EDGE_ERR_BACKEND_INVALID',
};

/** `base` + `?query` (or `&query` when the base has a query of its own); the query's bytes untouched. */
export function appendQuery(base: string, query: string): string {
  if (query === '') return base;
  const q = base.indexOf('?');
  if (q === -1) return `${base}?${query}`;
  if (q === base.length - 1 || base.endsWith('&')) return base + query;
  return `${base}&${query}`;
}

/** `a/` + `/b` → `a/b`: base URLs work with or without a trailing slash. */
export function joinPath(base: string, path: string): string {
  return `${base.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
}

export class MiddlewareClient {
  private readonly pool: Pool;
  /** `scheme://host[:port]` the pool connects to. URL credentials are not part of it: they are never sent. */
  readonly origin: string;
  /** Path (and query) of the configured URL, exactly as written: URL.pathname would re-encode it. */
  readonly basePath: string;
  readonly options: MiddlewareClientOptions;

  constructor(options: MiddlewareClientOptions) {
    this.options = options;
    const url = new URL(options.url);
    const slash = options.url.indexOf('/', options.url.indexOf('//') + 2);
    const pathAndQuery = slash === -1 ? '/' : options.url.slice(slash).split('#')[0]!;
    this.basePath = pathAndQuery === '' ? '/' : pathAndQuery;
    this.origin = url.origin;
    this.pool = new Pool(url.origin, {
      connections: options.connections,
      // A connection not yet made holds no work at the middleware: it gets the caller's timeout.
      connectTimeout: options.timeoutMs,
      headersTimeout: options.exchangeLimitMs ?? options.timeoutMs,
      bodyTimeout: options.exchangeLimitMs ?? options.timeoutMs,
      keepAliveTimeout: 30_000,
      ...(options.caFile !== undefined && { connect: { ca: readFileSync(options.caFile) } }),
    });
  }

  /**
   * Sends `call` (built by the backend's describeRequest). Resolves with the
   * answer whatever its status, once its body was read or discarded; rejects
   * with an EdgeError when there is no answer (timeout, refused, reset,
   * malformed HTTP).
   */
  async send(call: MiddlewareCall, signal: AbortSignal): Promise<MiddlewareAnswer> {
    let response;
    try {
      response = await this.pool.request({ method: call.method, path: call.path, headers: call.headers as string[], signal });
    } catch (err) {
      if (signal.aborted) throw new EdgeError('EDGE_ERR_BACKEND_TIMEOUT', 'middleware call aborted before its answer', { cause: err });
      const kind = classifyTransportError(err);
      throw new EdgeError(TRANSPORT_FAILURE_CODE[kind]!, `middleware ${kind}: ${(err as Error).message}`, { cause: err });
    }
    const { statusCode, headers: responseHeaders, body } = response;
    let text: string | undefined;
    try {
      if (call.readBody) text = await readCapped(body, this.options.maxBodyBytes);
      // Read and discard the rest, at most maxBodyBytes: keeps the connection reusable without trusting its size.
      // No signal of its own: the request's already destroys the body when the call is aborted.
      else await body.dump({ limit: this.options.maxBodyBytes });
    } catch {
      text = undefined; // a body cut short does not change the status we already have
    }
    return {
      status: statusCode,
      header(name) {
        const v = responseHeaders[name];
        return Array.isArray(v) ? v[0] : v;
      },
      body: text,
    };
  }

  async close(): Promise<void> {
    await this.pool.close().catch(() => undefined);
  }
}

async function readCapped(body: AsyncIterable<Buffer> & { destroy(err?: Error): unknown }, limit: number): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) {
      body.destroy();
      return undefined;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size).toString('utf8');
}
