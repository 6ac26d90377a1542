// Deterministic payloads for the fake origin. A test that proxies a segment through the edge can
// recompute the exact bytes it should have received (`expectedBytes`) and compare hashes, without
// the origin and the test having to share state. Also the synthetic MPEG-TS packet generator.

import { createHash } from 'node:crypto';

export const DEFAULT_SEGMENT_BYTES = 64 * 1024;
export const TS_PACKET_BYTES = 188;
export const TS_SYNC_BYTE = 0x47;
/** PID used for every synthetic TS packet. */
export const SYNTHETIC_TS_PID = 0x100;

/**
 * The body the test origin serves for `path` (the URL path without the query string, exactly as
 * sent on the wire) when the file is `size` bytes long. xorshift128 seeded with sha256(path):
 * different paths give unrelated bytes, the same path always gives the same bytes.
 */
export function expectedBytes(path: string, size: number = DEFAULT_SEGMENT_BYTES): Buffer {
  if (!Number.isInteger(size) || size < 0) throw new RangeError(`expectedBytes: bad size ${size}`);
  const seed = createHash('sha256').update(path).digest();
  let x = seed.readUInt32LE(0) | 1;
  let y = seed.readUInt32LE(4);
  let z = seed.readUInt32LE(8);
  let w = seed.readUInt32LE(12);
  const words = Math.ceil(size / 4);
  const out = Buffer.alloc(words * 4);
  for (let i = 0; i < words; i++) {
    const t = x ^ (x << 11);
    x = y;
    y = z;
    z = w;
    w = (w ^ (w >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
    out.writeUInt32LE(w, i * 4);
  }
  return out.subarray(0, size);
}

/**
 * `count` synthetic TS packets starting at absolute packet index `first`: sync byte 0x47,
 * PID 0x100, payload-only, continuity counter = index mod 16, payload filled with (index mod 256).
 * Consecutive calls with consecutive indexes form one continuous, checkable stream.
 */
export function syntheticTsPackets(first: number, count: number): Buffer {
  const out = Buffer.alloc(count * TS_PACKET_BYTES);
  for (let p = 0; p < count; p++) {
    const index = first + p;
    const off = p * TS_PACKET_BYTES;
    out[off] = TS_SYNC_BYTE;
    out[off + 1] = (SYNTHETIC_TS_PID >> 8) & 0x1f;
    out[off + 2] = SYNTHETIC_TS_PID & 0xff;
    out[off + 3] = 0x10 | (index & 0x0f);
    out.fill(index & 0xff, off + 4, off + TS_PACKET_BYTES);
  }
  return out;
}

export interface TsCheck {
  packets: number;
  /** Index of the first packet whose sync byte or continuity counter is wrong, or -1. */
  firstBadPacket: number;
}

/**
 * Verifies a received byte stream against the synthetic generator: every 188-byte packet starts
 * with 0x47 and continuity counters increase by one (mod 16) with no gap. Trailing partial packet
 * bytes are ignored.
 */
export function checkSyntheticTs(data: Buffer): TsCheck {
  const packets = Math.floor(data.length / TS_PACKET_BYTES);
  for (let p = 0; p < packets; p++) {
    const off = p * TS_PACKET_BYTES;
    const cc = (data[off + 3] ?? 0) & 0x0f;
    const firstCc = (data[3] ?? 0) & 0x0f;
    if (data[off] !== TS_SYNC_BYTE || cc !== ((firstCc + p) & 0x0f)) return { packets, firstBadPacket: p };
  }
  return { packets, firstBadPacket: -1 };
}
