/**
 * The HTTP client every middleware backend uses: a keep-alive undici Pool per
 * middleware origin, the client's raw query passed byte for byte, a body read
 * with a size cap, and transport failures turned into EdgeErrors
 * (EDGE_ERR_BACKEND_*: "unavailable"). A backend file only builds the request
 * and reads the answer (describeRequest / interpret, call.ts); whether a
 * status is a decision at all (5xx is not) is the backend's interpret's call.
 */
import { readFileSync } from 'node:fs';
import { Pool, type Dispatcher } from 'undici';
import { EdgeError, classifyTransportError, type ErrorCode } from '../../errors.js';
import { CallAbort } from '../types.js';
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
   * malformed HTTP). `cancel` cuts the exchange (its connection closes).
   *
   * On undici's dispatch API (like the forward path): no promise API's
   * request object, body stream and dump per call, and cancellable through a
   * CallAbort without an AbortSignal.
   */
  send(call: MiddlewareCall, cancel: AbortSignal | CallAbort): Promise<MiddlewareAnswer> {
    return new Promise((resolve, reject) => {
      this.pool.dispatch({ method: call.method, path: call.path, headers: call.headers as string[] }, new MiddlewareExchange(call.readBody, this.options.maxBodyBytes, cancel, resolve, reject));
    });
  }

  async close(): Promise<void> {
    await this.pool.close().catch(() => undefined);
  }
}

/**
 * One middleware exchange. The answer is settled once the body was read (up to
 * maxBodyBytes, when the verdict needs it) or discarded (up to maxBodyBytes:
 * keeps the connection reusable without trusting the body's size); a body
 * that is larger, or cut short, leaves the status as it is and no body
 * (the connection is closed). No answer at all is an EdgeError.
 */
class MiddlewareExchange implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  private status = 0;
  private headers: Record<string, string | string[] | undefined> = {};
  private chunks: Buffer[] | undefined;
  private bytes = 0;
  /** The body was over the limit: the exchange was cut on purpose, the answer stands without it. */
  private cut = false;
  private settled = false;
  private readonly onAbort = (reason: unknown): void => {
    this.controller?.abort(reason as Error);
  };
  private readonly onSignal = (): void => this.onAbort((this.cancel as AbortSignal).reason);

  constructor(
    readBody: boolean,
    private readonly maxBodyBytes: number,
    private readonly cancel: AbortSignal | CallAbort,
    private readonly resolve: (answer: MiddlewareAnswer) => void,
    private readonly reject: (err: EdgeError) => void,
  ) {
    if (readBody) this.chunks = [];
    if (cancel instanceof CallAbort) cancel.onAbort = this.onAbort;
    else cancel.addEventListener('abort', this.onSignal, { once: true });
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.cancel.aborted) controller.abort(this.cancel.reason as Error);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    this.status = statusCode;
    this.headers = headers;
    const length = Number(headers['content-length']);
    if (length > this.maxBodyBytes) this.overLimit(controller);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.cut) return;
    this.bytes += chunk.length;
    if (this.bytes > this.maxBodyBytes) {
      this.overLimit(controller);
      return;
    }
    this.chunks?.push(chunk);
  }

  onResponseEnd(): void {
    this.settle(this.chunks === undefined ? undefined : Buffer.concat(this.chunks, this.bytes).toString('utf8'));
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    // An answer whose body was over the limit or cut short keeps its status: it was an answer.
    if (this.status !== 0) {
      this.settle(undefined);
      return;
    }
    if (this.settled) return;
    this.done();
    if (this.cancel.aborted) {
      this.reject(new EdgeError('EDGE_ERR_BACKEND_TIMEOUT', 'middleware call aborted before its answer', { cause: err }));
      return;
    }
    const kind = classifyTransportError(err);
    this.reject(new EdgeError(TRANSPORT_FAILURE_CODE[kind]!, `middleware ${kind}: ${err.message}`, { cause: err }));
  }

  private overLimit(controller: Dispatcher.DispatchController): void {
    this.cut = true;
    this.chunks = undefined;
    controller.abort(new Error('middleware answer body over backend.maxBodyBytes'));
  }

  private settle(body: string | undefined): void {
    if (this.settled) return;
    this.done();
    const headers = this.headers;
    this.resolve({
      status: this.status,
      header(name) {
        const v = headers[name];
        return Array.isArray(v) ? v[0] : v;
      },
      body: this.cut ? undefined : body,
    });
  }

  private done(): void {
    this.settled = true;
    if (this.cancel instanceof CallAbort) this.cancel.onAbort = undefined;
    else this.cancel.removeEventListener('abort', this.onSignal);
  }
}
