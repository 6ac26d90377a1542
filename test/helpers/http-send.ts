// Small response-writing primitives shared by the fake origin and the fake middleware: byte-range
// parsing, chunked writes that respect backpressure, and "send part of the body, then kill the
// socket". Each wait is bounded so a stalled client can never wedge a test server.
// And `rawRequest`: bytes on a socket exactly as given, for request heads no HTTP client would send
// (absolute-form targets, no Host, bad percent-encoding).

import type { ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';

export interface ByteRange {
  start: number;
  /** Inclusive. */
  end: number;
}

/**
 * Parses a single-range `Range: bytes=a-b` / `bytes=a-` / `bytes=-n` header against a body of
 * `size` bytes. Returns null when there is no usable single range (serve the whole body, as RFC 9110
 * allows), or 'unsatisfiable' (answer 416).
 */
export function parseRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | null {
  if (header === undefined) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return null;
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return null;
  if (a === '') {
    const suffix = Number(b);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(a);
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return { start, end };
}

/** Resolves on 'drain', on 'close', or after `timeoutMs`, whichever comes first. */
export function drainOrClose(res: ServerResponse, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, timeoutMs));
    res.once('drain', done);
    res.once('close', done);
  });
}

/** Yields to the event loop so consecutive writes leave as separate socket writes. */
export function nextTick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Writes `body` as `pieces` separate writes (waiting for drain when needed). Returns false if the
 * response was destroyed before everything was handed over. Does not end the response.
 */
export async function writeInPieces(res: ServerResponse, body: Buffer, pieces: number, drainTimeoutMs = 10_000): Promise<boolean> {
  const n = Math.max(1, Math.min(pieces, body.length || 1));
  const step = Math.ceil(body.length / n);
  for (let off = 0; off < body.length; off += step) {
    if (res.destroyed) return false;
    if (!res.write(body.subarray(off, off + step))) await drainOrClose(res, drainTimeoutMs);
    await nextTick();
  }
  return !res.destroyed;
}

/**
 * Destroys the socket once everything written so far has left the process (socket write buffer
 * empty, polled) or after `maxWaitMs`. With `rst` the socket is reset (TCP RST) instead of closed;
 * the peer may then lose bytes it has not read yet.
 */
export async function destroyAfterFlush(res: ServerResponse, socket: Socket, rst = false, maxWaitMs = 500): Promise<void> {
  const deadline = Date.now() + maxWaitMs;
  while (!socket.destroyed && Date.now() < deadline && (res.writableLength > 0 || socket.writableLength > 0)) {
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  if (socket.destroyed) return;
  if (rst) socket.resetAndDestroy();
  else socket.destroy();
}

export interface RawResponse {
  /** 0 when the server closed without answering. */
  status: number;
  /** Lower-case names; the last value of a repeated header. */
  headers: Record<string, string>;
  /** Decoded body (chunked transfer coding undone). */
  body: string;
  /** The server closed the connection after (or instead of) the response. */
  closed: boolean;
}

function parseHead(head: string): { status: number; headers: Record<string, string> } {
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0), headers };
}

/** The body once complete, or undefined while more is due. */
function completeBody(headers: Record<string, string>, data: Buffer, closed: boolean): string | undefined {
  const length = headers['content-length'];
  if (length !== undefined) return data.length >= Number(length) ? data.subarray(0, Number(length)).toString('utf8') : undefined;
  if (headers['transfer-encoding']?.toLowerCase() !== 'chunked') return closed ? data.toString('utf8') : undefined;
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = data.indexOf('\r\n', at);
    if (eol < 0) return undefined;
    const size = parseInt(data.subarray(at, eol).toString('latin1'), 16);
    if (size === 0) return Buffer.concat(parts).toString('utf8');
    if (data.length < eol + 2 + size + 2) return undefined;
    parts.push(data.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

/**
 * Sends `head` (a request head, CRLF line ends, ending with an empty line; add a body if you
 * like) on a new connection to `port` on 127.0.0.1, reads one response and closes. Resolves with
 * status 0 when the server closes without answering; rejects after `timeoutMs` (default 5000).
 */
export function rawRequest(port: number, head: string, timeoutMs = 5000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = Buffer.alloc(0);
    let settled = false;
    const finish = (closed: boolean): void => {
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) {
        if (closed) done({ status: 0, headers: {}, body: received.toString('utf8'), closed });
        return;
      }
      const { status, headers } = parseHead(received.subarray(0, end).toString('latin1'));
      const body = completeBody(headers, received.subarray(end + 4), closed);
      if (body !== undefined) done({ status, headers, body, closed: closed || headers['connection']?.toLowerCase() === 'close' });
      else if (closed) done({ status, headers, body: received.subarray(end + 4).toString('utf8'), closed });
    };
    const done = (r: RawResponse): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      socket.destroy();
      reject(new Error(`rawRequest: no complete response within ${timeoutMs} ms (got ${received.length} bytes)`));
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      finish(false);
    });
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
    socket.write(head);
  });
}
