// A fake authorization middleware (the HTTP backend Astra's "auth" calls, e.g. Ministra/Stalker):
// records each request exactly as received (raw request target and query, never decoded) and
// answers as the test says - allow, deny, slow, 5xx, hang, drop, garbage, oversized body, or a
// Ministra-like short-lived token check - so the edge's backend client can be tested end to end.

import http from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { destroyAfterFlush, drainOrClose } from './http-send.js';
import { sleep } from './wait.js';

export interface MiddlewareRequestRecord {
  method: string;
  /** The request target exactly as received (`req.url`). */
  rawUrl: string;
  /** `rawUrl` before the first '?', not decoded. */
  path: string;
  /** Everything after the first '?', exactly as received ('' when there is no '?'). */
  rawQuery: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  remoteAddress: string;
  /** Client port of the connection that carried the request: tells connections apart. */
  remotePort: number;
  at: number;
}

type Headers = Record<string, string>;

export type MiddlewareBehavior =
  /** 200 with optional headers such as X-Session-Name, X-AuthDuration, Cache-Control. */
  | { kind: 'allow'; headers?: Headers; body?: string }
  /** 403 by default (401/404/...), optional `X-Location` redirect hint. */
  | { kind: 'deny'; status?: number; location?: string; headers?: Headers; body?: string }
  | { kind: 'delay'; ms: number; then: MiddlewareBehaviorSpec }
  /** 500 by default (502/503/...). */
  | { kind: '5xx'; status?: number; headers?: Headers; body?: string }
  /** Never answer; the socket is destroyed on close(). */
  | { kind: 'hang' }
  /** Destroy the socket without answering. */
  | { kind: 'close' }
  /** Write a malformed HTTP response, then close. */
  | { kind: 'garbage'; data?: string }
  /** 200 with a large body (default 8 MiB); `chunked` omits Content-Length. */
  | { kind: 'bigBody'; bytes?: number; chunked?: boolean }
  /**
   * Live `token` query param issued by issueMinistraToken() -> 200 + Ministra headers, else 403.
   * `ttlHeaders: false`: the 200 carries no header at all (no X-AuthDuration): a middleware issuing
   * one-shot tokens, as met through `--backend-type http` (operator issue, part 3).
   */
  | { kind: 'ministra'; ttlHeaders?: boolean }
  /** Send the status line and headers (Content-Length `bytes`, default 1024), then nothing more. */
  | { kind: 'hangAfterHeaders'; status?: number; bytes?: number }
  /** Send the headers (Content-Length `bytes`, default 4096) and half the body, then reset the connection. */
  | { kind: 'resetMidBody'; status?: number; bytes?: number };

export type MiddlewareHandler = (req: MiddlewareRequestRecord) => MiddlewareBehaviorSpec | Promise<MiddlewareBehaviorSpec>;
/** A behaviour, the name of one that needs no parameters, or a per-request handler. */
export type MiddlewareBehaviorSpec = MiddlewareBehavior | Exclude<MiddlewareBehavior['kind'], 'delay'> | MiddlewareHandler;

export interface TestMiddlewareOptions {
  /** Initial behaviour (default 'allow'). */
  behavior?: MiddlewareBehaviorSpec;
  /** Lifetime of Ministra tokens (default 5000 ms). */
  ministraTtlMs?: number;
  /** Clock for token expiry (default Date.now). */
  now?: () => number;
  /** Listen on this port of 127.0.0.1 (default 0: any free port). Lets a test bring a middleware
   * up where the edge already expects one (down at start-up, flapping). */
  port?: number;
}

export interface TestMiddleware {
  readonly url: string;
  readonly port: number;
  readonly requests: MiddlewareRequestRecord[];
  setBehavior(b: MiddlewareBehaviorSpec): void;
  /** One-shot behaviours used (FIFO) for the next requests before falling back to setBehavior's. */
  queueBehavior(...b: MiddlewareBehaviorSpec[]): void;
  /** 32 lowercase hex chars, accepted by the 'ministra' behaviour until `ttlMs` after issue. */
  issueMinistraToken(opts?: { ttlMs?: number; userId?: number }): string;
  activeConnections(): number;
  /**
   * Requests being worked on: from arrival until the behaviour is done (a `delay` sleeps on even
   * when the client went away, like a PHP middleware) and the response is over or its connection
   * closed.
   */
  inFlight(): number;
  /** The most requests in flight at once since start (or the last reset()). */
  maxInFlight(): number;
  /** Clears the request records (and the max in-flight). */
  reset(): void;
  /** Destroys all sockets (including hanging ones) and stops listening. Idempotent. */
  close(): Promise<void>;
}

const MAX_HANDLER_DEPTH = 16;

export async function startTestMiddleware(opts: TestMiddlewareOptions = {}): Promise<TestMiddleware> {
  const now = opts.now ?? Date.now;
  const ttlDefault = opts.ministraTtlMs ?? 5000;
  let behavior: MiddlewareBehaviorSpec = opts.behavior ?? 'allow';
  const queue: MiddlewareBehaviorSpec[] = [];
  const requests: MiddlewareRequestRecord[] = [];
  const tokens = new Map<string, { expiresAt: number; userId: number }>();
  const sockets = new Set<Socket>();
  let nextUserId = 1;
  let closing = false;
  let inFlight = 0;
  let maxInFlight = 0;

  async function resolveSpec(spec: MiddlewareBehaviorSpec, rec: MiddlewareRequestRecord): Promise<MiddlewareBehavior> {
    let s = spec;
    for (let depth = 0; depth < MAX_HANDLER_DEPTH; depth++) {
      if (typeof s === 'function') s = await s(rec);
      else if (typeof s === 'string') return { kind: s } as MiddlewareBehavior;
      else return s;
    }
    throw new Error('middleware handler returned handlers too deeply');
  }

  function send(res: ServerResponse, status: number, headers: Headers = {}, body = ''): void {
    const buf = Buffer.from(body);
    res.writeHead(status, { 'content-type': 'text/plain', ...headers, 'content-length': String(buf.length) });
    res.end(buf);
  }

  function ministra(rec: MiddlewareRequestRecord, res: ServerResponse, ttlHeaders: boolean): void {
    const token = new URLSearchParams(rec.rawQuery).get('token');
    const entry = token !== null ? tokens.get(token) : undefined;
    if (!entry || now() >= entry.expiresAt) return send(res, 403);
    if (!ttlHeaders) return send(res, 200);
    send(res, 200, { 'X-AuthDuration': '36000', 'X-Unique': 'true', 'X-Max-Sessions': '10', 'X-UserId': String(entry.userId) });
  }

  async function bigBody(res: ServerResponse, bytes: number, chunked: boolean): Promise<void> {
    res.writeHead(200, chunked ? { 'content-type': 'application/octet-stream' } : { 'content-type': 'application/octet-stream', 'content-length': String(bytes) });
    const piece = Buffer.alloc(64 * 1024, 0x61);
    for (let sent = 0; sent < bytes && !res.destroyed && !closing; sent += piece.length) {
      if (!res.write(piece.subarray(0, Math.min(piece.length, bytes - sent)))) await drainOrClose(res, 10_000);
    }
    if (!res.destroyed) res.end();
  }

  async function act(b: MiddlewareBehavior, rec: MiddlewareRequestRecord, req: IncomingMessage, res: ServerResponse): Promise<void> {
    switch (b.kind) {
      case 'allow':
        return send(res, 200, b.headers, b.body);
      case 'deny':
        return send(res, b.status ?? 403, { ...(b.location !== undefined ? { 'X-Location': b.location } : {}), ...b.headers }, b.body);
      case '5xx':
        return send(res, b.status ?? 500, b.headers, b.body ?? 'internal error');
      case 'delay':
        await sleep(b.ms);
        if (closing || res.destroyed) return;
        return act(await resolveSpec(b.then, rec), rec, req, res);
      case 'hang':
        return;
      case 'close':
        return void req.socket.destroy();
      case 'garbage':
        req.socket.write(b.data ?? 'HTTP/1.1 2OO NOT-OK\r\nthis is not a header\r\nContent-Length: banana\r\n\r\n\x00\xff');
        return destroyAfterFlush(res, req.socket);
      case 'bigBody':
        return bigBody(res, b.bytes ?? 8 * 1024 * 1024, b.chunked ?? false);
      case 'ministra':
        return ministra(rec, res, b.ttlHeaders ?? true);
      case 'hangAfterHeaders':
        res.writeHead(b.status ?? 200, { 'content-type': 'text/plain', 'content-length': String(b.bytes ?? 1024) });
        res.flushHeaders();
        return;
      case 'resetMidBody': {
        const bytes = b.bytes ?? 4096;
        res.writeHead(b.status ?? 200, { 'content-type': 'text/plain', 'content-length': String(bytes) });
        res.write(Buffer.alloc(Math.floor(bytes / 2), 0x61));
        return destroyAfterFlush(res, req.socket, true);
      }
    }
  }

  const server = http.createServer((req, res) => {
    const rawUrl = req.url ?? '';
    const q = rawUrl.indexOf('?');
    const rec: MiddlewareRequestRecord = {
      method: req.method ?? '',
      rawUrl,
      path: q < 0 ? rawUrl : rawUrl.slice(0, q),
      rawQuery: q < 0 ? '' : rawUrl.slice(q + 1),
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      remoteAddress: req.socket.remoteAddress ?? '',
      remotePort: req.socket.remotePort ?? 0,
      at: Date.now(),
    };
    requests.push(rec);
    maxInFlight = Math.max(maxInFlight, ++inFlight);
    let acted = false;
    let over = false;
    let counted = true;
    const leave = (): void => {
      if (acted && over && counted) {
        counted = false;
        inFlight--;
      }
    };
    res.once('close', () => {
      over = true;
      leave();
    });
    req.resume(); // discard any request body
    const spec = queue.shift() ?? behavior;
    resolveSpec(spec, rec)
      .then((b) => act(b, rec, req, res))
      .catch((err: unknown) => {
        if (!res.headersSent && !res.destroyed) send(res, 500, {}, `test middleware error: ${String(err)}`);
        else res.destroy();
      })
      .finally(() => {
        acted = true;
        leave();
      });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  let closed: Promise<void> | null = null;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    setBehavior(b) {
      behavior = b;
    },
    queueBehavior(...b) {
      queue.push(...b);
    },
    issueMinistraToken(o = {}) {
      const token = randomBytes(16).toString('hex');
      tokens.set(token, { expiresAt: now() + (o.ttlMs ?? ttlDefault), userId: o.userId ?? nextUserId++ });
      return token;
    },
    activeConnections: () => sockets.size,
    inFlight: () => inFlight,
    maxInFlight: () => maxInFlight,
    reset() {
      requests.splice(0);
      maxInFlight = inFlight;
    },
    close() {
      if (!closed) {
        closing = true;
        closed = new Promise((resolve) => server.close(() => resolve()));
        for (const s of sockets) s.destroy();
      }
      return closed;
    },
  };
}
