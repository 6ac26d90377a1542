// The endless MPEG-TS response of the fake origin (`GET /play/<ch>`), like Astra's HTTP Play
// stream: paced writes of whole 188-byte packets that honour backpressure, run until the client
// leaves (or a bounded maximum), and leave a live record of what happened for assertions.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { TS_PACKET_BYTES } from './bytes.js';
import { destroyAfterFlush, drainOrClose, nextTick } from './http-send.js';
import { sleep } from './wait.js';

/** One continuous MPEG-TS response; mutated live while the stream runs. */
export interface TsStreamRecord {
  id: number;
  channel: string;
  url: string;
  startedAt: number;
  /** Bytes handed to `res.write` so far. */
  bytesWritten: number;
  /** Times `res.write` returned false and the origin waited for 'drain'. */
  drainWaits: number;
  closedAt: number | null;
  /** True when the client went away (not the origin ending / faulting / shutting down). */
  closedByClient: boolean;
  endReason: 'client' | 'max-duration' | 'fault' | 'shutdown' | null;
}

export interface TsStreamOptions {
  record: TsStreamRecord;
  /** Bytes of `packets` TS packets starting at absolute packet index `first`. */
  packets: (first: number, packets: number) => Buffer;
  packetsPerWrite: number;
  /** 0 = unthrottled. */
  bytesPerSecond: number;
  maxDurationMs: number;
  /** Destroy the socket after this many body bytes (fault injection); Infinity = never. */
  resetAfterBytes: number;
  rst: boolean;
  isShuttingDown: () => boolean;
}

/** Writes the body of an already-started (headers written) TS response until it ends. */
export async function pumpTsStream(req: IncomingMessage, res: ServerResponse, o: TsStreamOptions): Promise<void> {
  const rec = o.record;
  res.on('close', () => {
    rec.closedAt = Date.now();
    if (rec.endReason === null) {
      rec.endReason = o.isShuttingDown() ? 'shutdown' : 'client';
      rec.closedByClient = rec.endReason === 'client';
    }
  });
  const start = Date.now();
  let packet = 0;
  while (!res.destroyed && !o.isShuttingDown()) {
    const elapsed = Date.now() - start;
    if (elapsed >= o.maxDurationMs) {
      rec.endReason = 'max-duration';
      res.end();
      return;
    }
    let chunk = o.packets(packet, o.packetsPerWrite);
    packet += o.packetsPerWrite;
    if (rec.bytesWritten + chunk.length > o.resetAfterBytes) chunk = chunk.subarray(0, o.resetAfterBytes - rec.bytesWritten);
    rec.bytesWritten += chunk.length;
    if (!res.write(chunk)) {
      rec.drainWaits++;
      await drainOrClose(res, o.maxDurationMs - elapsed);
    }
    if (rec.bytesWritten >= o.resetAfterBytes) {
      rec.endReason = 'fault';
      await destroyAfterFlush(res, req.socket, o.rst);
      return;
    }
    const wait = o.bytesPerSecond > 0 ? start + (rec.bytesWritten / o.bytesPerSecond) * 1000 - Date.now() : 0;
    await (wait > 0 ? sleep(wait) : nextTick());
  }
}

/** Packet source looping over real TS bytes (length a multiple of 188). */
export function loopingPackets(loop: Buffer): (first: number, packets: number) => Buffer {
  return (first, packets) => {
    const want = packets * TS_PACKET_BYTES;
    const off = (first * TS_PACKET_BYTES) % loop.length;
    const head = loop.subarray(off, off + want);
    return head.length === want ? head : Buffer.concat([head, loop.subarray(0, want - head.length)]);
  };
}
