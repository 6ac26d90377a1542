// Small response-writing primitives shared by the fake origin and the fake middleware: byte-range
// parsing, chunked writes that respect backpressure, and "send part of the body, then kill the
// socket". Each wait is bounded so a stalled client can never wedge a test server.

import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

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
