// MPEG-TS fan-out against a real origin: one upstream connection per channel shared by every
// viewer, each viewer starting on a packet boundary (on a keyframe with real media), a stalled
// viewer dropped while the others keep their rate, a kicked one cut while the others play, and
// the upstream closed a linger after the last viewer leaves.
import { describe, expect, inject, it } from 'vitest';
import { openStalledReader, openStream, type OpenStream, type StalledReader } from '../helpers/client.js';
import { useStack } from '../helpers/stack.js';
import { sleep, waitFor } from '../helpers/wait.js';

const start = useStack();
const TS = 188;

async function viewers(url: string, n: number): Promise<OpenStream[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => openStream(`${url}/play/ch1?token=v${i}`)));
}

function closeAll(streams: readonly (OpenStream | StalledReader)[]): void {
  for (const s of streams) s.destroy();
}

describe('MPEG-TS fan-out', () => {
  it('3 viewers of one channel: 1 origin connection, each gets TS from a packet boundary, each its own session', async () => {
    const { edge, origin, mw } = await start({}, { origin: { tsBytesPerSecond: 512 * 1024 } });
    const streams = await viewers(edge.url, 3);
    try {
      for (const s of streams) {
        expect(s.status).toBe(200);
        const data = await s.readAtLeast(50 * TS);
        expect(data[0]).toBe(0x47);
        expect(data[TS]).toBe(0x47);
        expect(data[2 * TS]).toBe(0x47);
      }
      expect(origin.streams).toHaveLength(1);
      expect(mw.requests).toHaveLength(3);
      expect(await edge.metric('edge_fanout_channels')).toBe(1);
      expect(await edge.metric('edge_fanout_viewers')).toBe(3);
      expect(edge.app.sessions.table.countByKind().mpegts).toBe(3);
      // The edge received the channel once, and sent it three times.
      const up = await edge.metric('edge_upstream_bytes_total', { kind: 'stream' });
      const sent = await edge.metric('edge_bytes_sent_total', { kind: 'stream' });
      expect(sent).toBeGreaterThan(2 * up);
    } finally {
      closeAll(streams);
    }
  });

  it('a viewer joining a running channel starts with PAT and PMT and the latest keyframe (real media)', async () => {
    const { edge, origin } = await start({}, { origin: { mediaDir: inject('mediaDir'), tsBytesPerSecond: 1024 * 1024 } });
    const first = await openStream(`${edge.url}/play/ch1?token=a`);
    const second: OpenStream[] = [];
    try {
      await first.readAtLeast(400 * 1024, 10_000);
      second.push(await openStream(`${edge.url}/play/ch1?token=b`));
      const data = await second[0]!.readAtLeast(10 * TS);
      const pid = (p: number): number => ((data[p * TS + 1]! & 0x1f) << 8) | data[p * TS + 2]!;
      expect(data[0]).toBe(0x47);
      expect(pid(0)).toBe(0); // PAT first
      // Then the PMT, then a packet with random_access_indicator (a keyframe).
      const third = data.subarray(2 * TS, 3 * TS);
      expect((third[3]! >> 4) & 0x2).toBe(0x2);
      expect(third[5]! & 0x40).toBe(0x40);
      expect(origin.streams).toHaveLength(1);
    } finally {
      closeAll([first, ...second]);
    }
  });

  it('a stalled viewer is dropped while the others keep receiving at the channel rate', async () => {
    const rate = 2 * 1024 * 1024;
    const { edge, origin } = await start({ proxy: { clientStallTimeout: '1s' }, fanout: { maxQueue: '1MiB' } }, { origin: { tsBytesPerSecond: rate, tsChunkPackets: 87 } });
    const streams = await viewers(edge.url, 2);
    const stalled = await openStalledReader(`${edge.url}/play/ch1?token=stalled`);
    try {
      await waitFor(async () => (await edge.metric('edge_fanout_drops_total')) === 1, { timeoutMs: 10_000, message: 'stalled viewer dropped' });
      // The others kept going: in the next second each gets about the channel rate.
      const before = streams.map((s) => s.received());
      await sleep(1000);
      for (let i = 0; i < streams.length; i++) expect(streams[i]!.received() - before[i]!).toBeGreaterThan(rate / 2);
      expect(origin.streams).toHaveLength(1);
      expect(await edge.metric('edge_fanout_viewers')).toBe(2);
    } finally {
      closeAll([...streams, stalled]);
    }
  });

  it('a kicked viewer is cut while the others play', async () => {
    const { edge, origin, mw } = await start({}, { origin: { tsBytesPerSecond: 512 * 1024 } });
    const streams = await viewers(edge.url, 3);
    try {
      for (const s of streams) await s.readAtLeast(10 * TS);
      const kicked = String(mw.requests[1]!.headers['x-session-id']);
      expect(edge.app.sessions.kick(kicked)).toBe(true);
      await waitFor(() => streams[1]!.ended(), { timeoutMs: 1000, message: 'kicked viewer cut' });
      const before = [streams[0]!.received(), streams[2]!.received()];
      await sleep(500);
      expect(streams[0]!.received()).toBeGreaterThan(before[0]!);
      expect(streams[2]!.received()).toBeGreaterThan(before[1]!);
      expect(streams[0]!.ended() || streams[2]!.ended()).toBe(false);
      expect(origin.streams).toHaveLength(1);
      expect(origin.streams[0]!.closedAt).toBeNull();
    } finally {
      closeAll(streams);
    }
  });

  it('the last viewer leaving closes the upstream after fanout.linger; a viewer within the linger reuses it', async () => {
    const { edge, origin } = await start({ fanout: { linger: '400ms' } }, { origin: { tsBytesPerSecond: 256 * 1024 } });
    const a = await openStream(`${edge.url}/play/ch1?token=a`);
    await a.readAtLeast(10 * TS);
    a.destroy();
    await sleep(150);
    const b = await openStream(`${edge.url}/play/ch1?token=b`);
    try {
      await b.readAtLeast(10 * TS);
      expect(origin.streams).toHaveLength(1); // reused within the linger
    } finally {
      b.destroy();
    }
    await waitFor(() => origin.streams[0]!.closedAt !== null, { timeoutMs: 2000, message: 'upstream closed after the linger' });
    expect(await edge.metric('edge_fanout_channels')).toBe(0);
  });

  it('two channels are two upstream connections; --fanout false is one per viewer', async () => {
    const { edge, origin } = await start({}, { origin: { tsBytesPerSecond: 256 * 1024 } });
    const s = [await openStream(`${edge.url}/play/ch1?token=a`), await openStream(`${edge.url}/play/ch2?token=b`), await openStream(`${edge.url}/play/ch1?token=c`)];
    try {
      for (const x of s) await x.readAtLeast(10 * TS);
      expect(origin.streams).toHaveLength(2);
    } finally {
      closeAll(s);
    }
    const off = await start({ fanout: { enabled: false } }, { origin: { tsBytesPerSecond: 256 * 1024 } });
    const t = await viewers(off.edge.url, 2);
    try {
      for (const x of t) await x.readAtLeast(10 * TS);
      expect(off.origin.streams).toHaveLength(2);
    } finally {
      closeAll(t);
    }
  });
});
