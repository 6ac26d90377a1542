// Minimal HTTP client for tests, built on node:http with `agent: false` so every request uses its
// own connection (no pooling hiding connection counts) and the request target is sent exactly as
// given (no URL normalisation), which matters when testing raw query forwarding.

import http from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import net, { connect, type Socket } from 'node:net';
import { waitFor } from './wait.js';

export interface HttpResult {
  status: number;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
}

export interface HttpRequestOptions {
  method?: string;
  headers?: Record<string, string>;
  /** Whole-exchange deadline (default 5000 ms). */
  timeoutMs?: number;
}

/** Rejection of httpRequest: carries what arrived before the failure. */
export class HttpClientError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
    readonly status: number | undefined,
    readonly received: Buffer,
  ) {
    super(message);
    this.name = 'HttpClientError';
  }
}

/** `target` is either an absolute URL or `origin` + raw path/query, e.g. `http://127.0.0.1:1/a?b=%20`. */
export function httpRequest(target: string, opts: HttpRequestOptions = {}): Promise<HttpResult> {
  const u = new URL(target);
  const rawPath = target.slice(u.origin.length) || '/';
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let status: number | undefined;
    const fail = (err: NodeJS.ErrnoException): void => {
      clearTimeout(timer);
      reject(new HttpClientError(err.message, err.code, status, Buffer.concat(chunks)));
    };
    const req = http.request({ host: u.hostname, port: u.port, path: rawPath, method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      status = res.statusCode;
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', fail);
      res.on('aborted', () => fail(Object.assign(new Error('response aborted'), { code: 'ECONNRESET' })));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) });
      });
    });
    const timer = setTimeout(() => req.destroy(Object.assign(new Error('test client timeout'), { code: 'ETIMEDOUT' })), opts.timeoutMs ?? 5000);
    req.on('error', fail);
    req.end();
  });
}

export interface OpenStream {
  status: number;
  headers: IncomingHttpHeaders;
  res: IncomingMessage;
  /** Bytes received so far. */
  received(): number;
  /** Everything received so far, concatenated. */
  data(): Buffer;
  /** Resolves once at least `n` bytes arrived (bounded by `timeoutMs`, default 5000). */
  readAtLeast(n: number, timeoutMs?: number): Promise<Buffer>;
  /** Stop reading (the server then sees backpressure) / start again. */
  pause(): void;
  resume(): void;
  /** Abort the connection from the client side. */
  destroy(): void;
  /** True once the response ended or the connection closed. */
  ended(): boolean;
}

/** Opens a long-lived GET (e.g. a continuous MPEG-TS stream) and keeps reading in the background. */
export function openStream(target: string, opts: { headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<OpenStream> {
  const u = new URL(target);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: target.slice(u.origin.length) || '/', headers: opts.headers, agent: false }, (res) => {
      clearTimeout(timer);
      const chunks: Buffer[] = [];
      let total = 0;
      let done = false;
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        total += c.length;
      });
      res.on('error', () => undefined);
      res.on('close', () => (done = true));
      const data = (): Buffer => Buffer.concat(chunks);
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        res,
        received: () => total,
        data,
        async readAtLeast(n, timeoutMs = 5000) {
          await waitFor(() => total >= n, { timeoutMs, intervalMs: 5, message: `readAtLeast(${n}) got ${total}` });
          return data();
        },
        pause: () => void res.pause(),
        resume: () => void res.resume(),
        destroy: () => void req.destroy(),
        ended: () => done,
      });
    });
    const timer = setTimeout(() => req.destroy(new Error('openStream: no response headers in time')), opts.timeoutMs ?? 5000);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end();
  });
}

/** A raw HTTP/1.1 client that read the response head and then stopped reading (it never reads again unless told). */
export interface StalledReader {
  readonly socket: Socket;
  /** Status code of the response head. */
  readonly status: number;
  /** Response head and any body bytes that arrived with it. */
  readonly head: string;
  /** Body (and head) bytes received so far. */
  received(): number;
  /** Reads about `bytes` more, then stops again; resolves with what arrived, when the connection closes, or after `timeoutMs` (default 2000). */
  readSome(bytes: number, timeoutMs?: number): Promise<number>;
  /** True once the server reset or closed the connection (noticed only while reading). */
  closed(): boolean;
  destroy(): void;
}

/**
 * Opens `GET target` on a raw socket, waits for the first bytes of the answer, then pauses the
 * socket: the server sees a client that connected and stopped reading (its kernel buffers fill,
 * then its writes stop completing). Node cannot shrink SO_RCVBUF, so on loopback the kernel
 * takes a few MiB before the server notices.
 */
export function openStalledReader(target: string, opts: { headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<StalledReader> {
  const u = new URL(target);
  const path = target.slice(u.origin.length) || '/';
  const extra = Object.entries(opts.headers ?? {})
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  return new Promise((resolve, reject) => {
    const socket = connect({ host: u.hostname, port: Number(u.port) });
    let total = 0;
    let closed = false;
    let onData: ((n: number) => void) | undefined;
    let onClose: (() => void) | undefined;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('openStalledReader: no answer in time'));
    }, opts.timeoutMs ?? 5000);
    socket.on('error', () => (closed = true));
    socket.on('close', () => {
      closed = true;
      onClose?.();
    });
    socket.write(`GET ${path} HTTP/1.1\r\nHost: ${u.host}\r\n${extra}\r\n`);
    socket.once('data', (first: Buffer) => {
      clearTimeout(timer);
      socket.pause();
      total += first.length;
      socket.on('data', (c: Buffer) => {
        total += c.length;
        onData?.(c.length);
      });
      const head = first.toString('latin1');
      resolve({
        socket,
        status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0),
        head,
        received: () => total,
        readSome(bytes, timeoutMs = 2000) {
          return new Promise((done) => {
            let got = 0;
            const stop = (): void => {
              clearTimeout(t);
              onData = undefined;
              onClose = undefined;
              socket.pause();
              done(got);
            };
            const t = setTimeout(stop, timeoutMs);
            if (closed) return stop();
            onClose = stop;
            onData = (n) => {
              got += n;
              if (got >= bytes) stop();
            };
            socket.resume();
          });
        },
        closed: () => closed,
        destroy: () => void socket.destroy(),
      });
    });
  });
}

export interface RawResult {
  /** Status of the first response on the connection (0 when none arrived). */
  status: number;
  /** Everything the server sent, as latin1 text. */
  text: string;
  /** The first response's body (after the blank line), as text. */
  body: string;
}

/**
 * Sends `head` (request line and headers, `\r\n`-separated, WITHOUT the final blank line) as raw
 * bytes on a fresh connection, with `Connection: close` added, and reads until the server closes.
 * For what node:http refuses to send: two Host headers, a `#` in the target.
 */
export function sendRaw(baseUrl: string, head: string, timeoutMs = 5000): Promise<RawResult> {
  const u = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect(Number(u.port), u.hostname, () => socket.write(`${head}\r\nConnection: close\r\n\r\n`, 'latin1'));
    const timer = setTimeout(() => socket.destroy(new Error('sendRaw: no close in time')), timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      const split = text.indexOf('\r\n\r\n');
      resolve({ status: m === null ? 0 : Number(m[1]), text, body: split === -1 ? '' : text.slice(split + 4) });
    });
  });
}
