import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { JoinPointTracker, TS_PACKET_BYTES } from '../../src/proxy/ts-join.js';
import { requireMedia } from '../helpers/tools.js';

const MEDIA = requireMedia(inject('mediaDir'));

async function segment(): Promise<Buffer> {
  return readFile(path.join(MEDIA.path, 'seg-001.m2t'));
}

function pidOf(packet: Buffer): number {
  return ((packet[1]! & 0x1f) << 8) | packet[2]!;
}

/** Feeds `bytes` in pseudo-random chunk sizes (deterministic), including chunks smaller than a packet. */
function feedChunked(tracker: JoinPointTracker, bytes: Buffer, seed: number): void {
  let x = seed;
  for (let off = 0; off < bytes.length; ) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    const size = 1 + (x % 5000);
    tracker.feed(bytes.subarray(off, off + size));
    off += size;
  }
}

describe.skipIf(MEDIA.skip)(`JoinPointTracker on a real ffmpeg MPEG-TS segment${MEDIA.note}`, () => {
  it('offers PAT, PMT and the GOP from the latest video keyframe', async () => {
    const bytes = await segment();
    const tracker = new JoinPointTracker(16 * 1024 * 1024);
    tracker.feed(bytes);
    const prefix = tracker.joinPrefix();
    expect(prefix.length).toBeGreaterThanOrEqual(3);
    expect(pidOf(prefix[0]!)).toBe(0); // PAT
    expect(prefix[0]!.length).toBe(TS_PACKET_BYTES);
    const gop = Buffer.concat(prefix.slice(2));
    expect(gop.length % TS_PACKET_BYTES).toBe(0);
    // The GOP starts with a packet carrying random_access_indicator.
    expect(gop[0]).toBe(0x47);
    expect((gop[3]! >> 4) & 0x2).toBe(0x2);
    expect(gop[5]! & 0x40).toBe(0x40);
    // It is the tail of the segment: the last keyframe onwards.
    expect(bytes.subarray(bytes.length - gop.length).equals(gop)).toBe(true);
  });

  it('finds the same join point whatever the chunking, and never a cut packet', async () => {
    const bytes = await segment();
    const whole = new JoinPointTracker(16 * 1024 * 1024);
    whole.feed(bytes);
    const want = Buffer.concat(whole.joinPrefix());
    for (const seed of [1, 7, 42, 1234]) {
      const t = new JoinPointTracker(16 * 1024 * 1024);
      feedChunked(t, bytes, seed);
      const got = Buffer.concat(t.joinPrefix());
      // A keyframe packet that straddles two chunks is skipped: the join point may be an earlier one (then longer).
      expect(got.length).toBeGreaterThanOrEqual(want.length);
      expect(got.length % TS_PACKET_BYTES).toBe(0);
      expect(got.subarray(got.length - want.length + 2 * TS_PACKET_BYTES).equals(want.subarray(2 * TS_PACKET_BYTES))).toBe(true);
    }
  });

  it('alignmentOf points at the next packet start across odd chunks', async () => {
    const bytes = await segment();
    const t = new JoinPointTracker(1024 * 1024);
    let off = 0;
    for (const size of [100, 50, 38, 1000, 188, 187, 1, 500]) {
      const chunk = bytes.subarray(off, off + size);
      const a = t.alignmentOf(chunk);
      if (a < chunk.length) expect((off + a) % TS_PACKET_BYTES).toBe(0);
      t.feed(chunk);
      off += size;
    }
  });

  it('drops a GOP larger than its bound, and gives up on a stream that is not TS', async () => {
    const bytes = await segment();
    const small = new JoinPointTracker(1000);
    small.feed(bytes);
    expect(small.joinPrefix()).toEqual([]);
    const junk = new JoinPointTracker(1024 * 1024);
    junk.feed(Buffer.from('HTTP/1.1 200 OK\r\n\r\nnot a transport stream at all, no sync byte'.repeat(10)));
    junk.feed(bytes);
    expect(junk.joinPrefix()).toEqual([]);
  });
});
