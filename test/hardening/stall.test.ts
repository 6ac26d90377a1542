// Hardening item 3: stalled readers exhausted the upstream pool. An MPEG-TS viewer that stops
// reading pauses its upstream socket; undici's body timeout does not run while paused, so the
// connection was held forever: with --upstream-connections 4, four stalled viewers (one valid
// token) blocked every HLS request of every viewer. Now: streams have a pool of their own
// (upstream.streamConnections, full → 503 at once), a client that accepts no bytes for
// proxy.clientStallTimeout is dropped and its upstream released, and a session holds at most
// session.maxStreams streams.
import { afterEach, describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config/load.js';
import { httpRequest, openStalledReader, openStream, type OpenStream, type StalledReader } from '../helpers/client.js';
import { backToBaseline, snapshot } from '../helpers/resources.js';
import { useStack } from '../helpers/stack.js';
import { sleep, waitFor } from '../helpers/wait.js';

const MiB = 1024 * 1024;
/** The shortest stall timeout the config accepts. */
const STALL = '1s';
/** Stall timeout + the kernel buffers filling + a sweep interval + a slow shared machine. */
const DROP_WITHIN_MS = 5000;
/** TS packets per origin write (~64 KiB): the stalled viewers' socket buffers fill in a blink. */
const FAST_CHUNK_PACKETS = 348;

const clients: { destroy(): void }[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.destroy();
});
const stack = useStack();
/**
 * These tests are about the per-viewer forward path (one upstream exchange per client): the edge
 * cache and the MPEG-TS fan-out, which decouple viewers from upstream connections, are off here
 * and have stall tests of their own (test/integration/media-cache.test.ts, fanout.test.ts).
 */
const start: typeof stack = (edgeConfig = {}, options) => stack({ cache: { size: 0 }, fanout: { enabled: false }, ...edgeConfig }, options);

async function stalled(target: string, userAgent: string): Promise<StalledReader> {
  const reader = await openStalledReader(target, { headers: { 'user-agent': userAgent } });
  clients.push(reader);
  return reader;
}

async function reading(target: string, userAgent = 'player'): Promise<OpenStream> {
  const stream = await openStream(target, { headers: { 'user-agent': userAgent } });
  clients.push(stream);
  return stream;
}

describe('stalled readers', () => {
  it('four MPEG-TS viewers that stop reading (--upstream-connections 4, one token) block no HLS request, and are dropped after the stall timeout', async () => {
    // The origin writes as fast as the edge takes: the stalled viewers' buffers fill at once.
    const { edge, origin, mw } = await start({ upstream: { connections: 4, streamConnections: 4 }, proxy: { clientStallTimeout: STALL } }, { origin: { tsBytesPerSecond: 0, tsChunkPackets: FAST_CHUNK_PACKETS } });
    // Warm-up (first session allocates the decision store; keep-alive connections to the middleware).
    expect((await httpRequest(`${edge.url}/play/warm/index.m3u8?token=w`)).status).toBe(200);
    const baseline = await snapshot();

    const viewers: StalledReader[] = [];
    for (let i = 0; i < 4; i++) viewers.push(await stalled(`${edge.url}/play/ch1?token=t`, `box-${i}`));
    expect(viewers.map((v) => v.status)).toEqual([200, 200, 200, 200]);
    await waitFor(() => origin.streams.length === 4, { timeoutMs: 2000, message: 'origin streams' });
    // One token: four sessions (four boxes), one middleware call each.
    expect(new Set(mw.requests.map((r) => r.rawQuery))).toEqual(new Set(['token=w', 'token=t']));

    // Another viewer's HLS requests are served while the four are still stalled (not dropped yet):
    // they do not share a pool with the streams.
    const hls = async (): Promise<number[]> => {
      const statuses: number[] = [];
      for (const path of ['/play/news/index.m3u8', '/play/news/v1/index.m3u8', '/play/news/v1/seg-1.ts', '/play/news/v1/seg-2.ts']) {
        statuses.push((await httpRequest(`${edge.url}${path}?token=v`, { timeoutMs: 2000 })).status);
      }
      return statuses;
    };
    expect(await hls()).toEqual([200, 200, 200, 200]);
    expect(await edge.metric('edge_client_stalls_total')).toBe(0);
    expect(origin.streams.every((s) => s.closedAt === null)).toBe(true);

    // The stream pool is full: a fifth stream is refused at once, not queued.
    const fifth = await httpRequest(`${edge.url}/play/ch2?token=t`, { timeoutMs: 2000, headers: { 'user-agent': 'box-5' } });
    expect(fifth.status).toBe(503);
    expect(fifth.headers['retry-after']).toBe('5');
    expect(JSON.parse(fifth.body.toString())).toEqual({ error: 'EDGE_ERR_STREAM_CAPACITY' });
    expect(origin.streams).toHaveLength(4);
    expect(await edge.metric('edge_streams_limited_total', { limit: 'pool' })).toBe(1);
    expect(await edge.metric('edge_upstream_streams')).toBe(4);

    // HLS keeps working throughout, while the stalled viewers are dropped and their upstreams closed.
    for (let round = 0; round < 50 && !origin.streams.every((s) => s.closedByClient); round++) {
      expect(await hls()).toEqual([200, 200, 200, 200]);
      await sleep(100);
    }
    await waitFor(() => origin.streams.every((s) => s.closedByClient), { timeoutMs: DROP_WITHIN_MS, message: 'origin streams of stalled viewers still open' });
    expect(await edge.metric('edge_client_stalls_total', { kind: 'stream' })).toBe(4);
    expect(await edge.metric('edge_upstream_requests_total', { outcome: 'aborted' })).toBe(4);
    await waitFor(async () => (await edge.metric('edge_upstream_streams')) === 0, { timeoutMs: 1000, message: 'stream slots not released' });
    await waitFor(() => edge.app.sessions.table.countByKind().mpegts === 0, { timeoutMs: 1000, message: 'stream sessions still open' });
    // The viewers were reset: reading again ends at once.
    for (const v of viewers) await v.readSome(64 * MiB, 2000);
    expect(viewers.every((v) => v.closed())).toBe(true);

    // The slots are free again: a reading viewer gets its stream.
    const next = await reading(`${edge.url}/play/ch1?token=t`, 'box-0');
    expect(next.status).toBe(200);
    await next.readAtLeast(188 * 1000);
    next.destroy();
    await waitFor(() => origin.streams.at(-1)!.closedByClient, { timeoutMs: 1000 });

    for (const v of viewers) v.destroy();
    await backToBaseline(baseline, { fds: 8, sockets: 8 });
  });

  it('a stalled reader of a large segment is dropped and its upstream connection released', async () => {
    // Larger than the loopback socket buffers on both sides (several MiB each), so the exchange
    // really waits on the reader; a single upstream connection for playlists and segments.
    const { edge, origin } = await start({ upstream: { connections: 1 }, proxy: { clientStallTimeout: STALL } }, { origin: { segmentBytes: 48 * MiB } });
    const reader = await stalled(`${edge.url}/play/ch1/v1/seg-7.ts?token=t`, 'loris');
    expect(reader.status).toBe(200);
    const record = origin.requests.find((r) => r.path === '/play/ch1/v1/seg-7.ts')!;
    await waitFor(() => record.connectionClosedAt !== null, { timeoutMs: DROP_WITHIN_MS, message: 'upstream connection of the stalled segment still open' });
    expect(record.finished).toBe(false);
    expect(await edge.metric('edge_client_stalls_total', { kind: 'segment' })).toBe(1);
    expect(await edge.metric('edge_client_stalls_total', { kind: 'stream' })).toBe(0);
    // The one upstream connection serves the next request.
    const playlist = await httpRequest(`${edge.url}/play/ch1/v1/index.m3u8?token=t`, { timeoutMs: 2000 });
    expect(playlist.status).toBe(200);
    await reader.readSome(64 * MiB, 2000);
    expect(reader.closed()).toBe(true);
  });

  it('a slow reader that stops for less than the stall timeout, then takes a burst, is not dropped', async () => {
    const { edge, origin } = await start({ proxy: { clientStallTimeout: STALL } }, { origin: { tsBytesPerSecond: 0, tsChunkPackets: FAST_CHUNK_PACKETS } });
    const reader = await stalled(`${edge.url}/play/ch1?token=t`, 'slow');
    expect(reader.status).toBe(200);
    // Idle 500 ms, then 2 MiB (the kernel reports room in a send buffer only once about a third
    // of it is free: up to ~1.3 MiB on loopback), for three stall timeouts. The origin is faster:
    // the edge is paused on this reader all along.
    const until = Date.now() + 3000;
    for (let i = 0; i < 20 && Date.now() < until; i++) {
      await sleep(500);
      expect(await reader.readSome(2 * MiB, 1000)).toBeGreaterThanOrEqual(2 * MiB);
    }
    expect(reader.closed()).toBe(false);
    expect(origin.streams[0]!.closedAt).toBeNull();
    expect(origin.streams[0]!.drainWaits).toBeGreaterThan(0);
    expect(await edge.metric('edge_client_stalls_total')).toBe(0);
  });
});

describe('streams per session', () => {
  it('a third stream of one session (same token, IP, User-Agent) closes its oldest; two stay', async () => {
    const { edge, origin, mw } = await start({ session: { maxStreams: 2 } });
    const target = `${edge.url}/play/ch1?token=t`;
    const first = await reading(target);
    await first.readAtLeast(188 * 100);
    const second = await reading(target);
    await second.readAtLeast(188 * 100);
    const third = await reading(target);
    expect([first.status, second.status, third.status]).toEqual([200, 200, 200]);
    await waitFor(() => first.ended(), { timeoutMs: 1000, message: 'oldest stream still open' });
    await waitFor(() => origin.streams[0]!.closedByClient, { timeoutMs: 1000, message: 'origin stream of the oldest still open' });
    const before = [second.received(), third.received()];
    await waitFor(() => second.received() > before[0]! && third.received() > before[1]!, { timeoutMs: 2000, message: 'the two newest stopped' });
    expect(second.ended() || third.ended()).toBe(false);
    expect(mw.requests).toHaveLength(1);
    const session = edge.app.sessions.store.get(String(mw.requests[0]!.headers['x-session-id']))!;
    expect(session.streams.size).toBe(2);
    expect(session.endReason).toBeUndefined();
    expect(await edge.metric('edge_streams_limited_total', { limit: 'session' })).toBe(1);
    expect(await edge.metric('edge_sessions_opened_total')).toBe(1);
  });
});

describe('settings', () => {
  it('proxy.clientStallTimeout: 0 turns it off; below 1s is refused, naming the setting', () => {
    expect(buildConfig({ file: { proxy: { clientStallTimeout: 0 } } }).proxy.clientStallTimeoutMs).toBe(0);
    expect(buildConfig({}).proxy.clientStallTimeoutMs).toBe(30_000);
    expect(() => buildConfig({ flags: { 'proxy.clientStallTimeout': '500ms' } })).toThrow(/--client-stall-timeout: "500ms": must be 0 \(never\) or at least 1s/);
    const defaults = buildConfig({});
    expect(defaults.upstream.streamConnections).toBe(1024);
    expect(defaults.session.maxStreams).toBe(2);
  });
});
