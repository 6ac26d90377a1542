// HTTP MPEG-TS (`GET /play/<ch>`): one long response per viewer. The edge must pass the bytes
// through untouched, let backpressure reach the origin, give the stream back to the origin when
// the viewer leaves, let a reconnect join its session, and cut the stream when a re-check denies.
import type { ServerResponse } from 'node:http';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { checkSyntheticTs } from '../helpers/bytes.js';
import { httpRequest, openStream, type OpenStream } from '../helpers/client.js';
import type { TestMiddlewareOptions } from '../helpers/middleware.js';
import type { TestOriginOptions } from '../helpers/origin.js';
import { useStack, type Stack } from '../helpers/stack.js';
import { sleep, waitFor } from '../helpers/wait.js';

const MiB = 1024 * 1024;

const streams: OpenStream[] = [];

afterEach(() => {
  for (const s of streams.splice(0)) s.destroy();
});
const stack = useStack();
/** One upstream connection per viewer (pass-through): the fan-out (its own tests: fanout.test.ts) is off here. */
const start: typeof stack = (edgeConfig = {}, options) => stack({ fanout: { enabled: false }, ...edgeConfig }, options);
const setup = (file: Record<string, unknown> = {}, originOptions: TestOriginOptions = {}, mwOptions: TestMiddlewareOptions = {}): Promise<Stack> =>
  start(file, { origin: originOptions, middleware: mwOptions });

async function open(target: string, headers?: Record<string, string>): Promise<OpenStream> {
  const s = await openStream(target, { headers });
  streams.push(s);
  return s;
}

/** A full garbage collection, so heap figures compare live objects rather than garbage. */
function exposeGc(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

/** Resolves with the time the client saw its connection close (bounded by `timeoutMs`). */
function closedAt(stream: OpenStream, timeoutMs: number): Promise<number> {
  return waitFor(() => (stream.ended() ? Date.now() : 0), { timeoutMs, intervalMs: 5, message: 'stream still open' });
}

describe('pass-through', () => {
  it('the bytes through the edge are the origin’s valid TS, and the session is an mpegts one', async () => {
    const { edge, mw, origin } = await setup();
    const stream = await open(`${edge.url}/play/ch1?token=t`);
    expect(stream.status).toBe(200);
    expect(stream.headers['content-type']).toBe('video/mp2t');
    const data = await stream.readAtLeast(188 * 500);
    const check = checkSyntheticTs(data);
    expect(check.packets).toBeGreaterThanOrEqual(500);
    expect(check.firstBadPacket).toBe(-1);
    // The first packet is the origin's first packet: nothing was dropped or inserted in front.
    expect(data[3]! & 0x0f).toBe(0);
    expect(mw.requests).toHaveLength(1);
    const sid = String(mw.requests[0]!.headers['x-session-id']);
    const session = edge.app.sessions.store.get(sid);
    expect(session?.kind).toBe('mpegts');
    expect(session?.streams.size).toBe(1);
    expect(session!.bytes).toBeGreaterThanOrEqual(data.length);
    expect(origin.streams).toHaveLength(1);
    expect(origin.requests[0]!.url).toBe('/play/ch1'); // the token stays at the edge (upstream.forwardToken off)
  });

  it('a viewer leaving mid-stream closes the origin stream within 1 s', async () => {
    const { edge, origin, mw } = await setup();
    const stream = await open(`${edge.url}/play/ch1?token=t`);
    await stream.readAtLeast(64 * 1024);
    const rec = origin.streams[0]!;
    expect(rec.closedAt).toBeNull();
    stream.destroy();
    const left = Date.now();
    await waitFor(() => rec.closedByClient, { timeoutMs: 1000, message: 'origin stream not closed by the edge' });
    expect(rec.closedAt! - left).toBeLessThan(1000);
    expect(rec.endReason).toBe('client');
    expect(await edge.metric('edge_upstream_requests_total', { outcome: 'aborted' })).toBe(1);
    // The stream no longer belongs to the session.
    const session = edge.app.sessions.store.get(String(mw.requests[0]!.headers['x-session-id']));
    await waitFor(() => session?.streams.size === 0, { timeoutMs: 1000 });
  });

  it('a slow reader: backpressure reaches the origin, and the edge buffers nothing beyond socket buffers', async () => {
    // A paused reader is not a silent origin: the 2 s pause outlasts upstream.bodyTimeout and must not cut the stream.
    const { edge, origin, mw } = await setup({ upstream: { bodyTimeout: '1s' } }, { tsBytesPerSecond: 0 });
    // Warm-up on another channel: the first session makes the decision store allocate its TTL
    // tables (a fixed ~32 MB with the default auth.maxEntries), and the stream code gets compiled.
    const warm = await open(`${edge.url}/play/warmup?token=w`);
    await warm.readAtLeast(64 * 1024);
    warm.destroy();
    await waitFor(() => origin.streams[0]?.closedByClient === true, { timeoutMs: 1000 });
    const gc = exposeGc();
    gc();
    const before = process.memoryUsage();

    const stream = await open(`${edge.url}/play/ch1?token=t`);
    await stream.readAtLeast(256 * 1024);
    stream.pause();
    const rec = origin.streams[1]!;
    await sleep(2000);
    const written = rec.bytesWritten;
    const received = stream.received();
    // The origin was told to wait, and is waiting: it writes (almost) nothing more while the reader sleeps.
    expect(rec.drainWaits).toBeGreaterThan(0);
    await sleep(300);
    expect(rec.bytesWritten - written).toBeLessThan(MiB);
    // What the origin wrote and the player did not read sits in the kernel's socket buffers (four
    // of them on loopback: ~8 MiB measured), while the edge's own buffer for this viewer stays at
    // its high-water mark.
    expect(written - received).toBeLessThan(16 * MiB);
    const session = edge.app.sessions.store.get(String(mw.requests.at(-1)!.headers['x-session-id']))!;
    const [res] = [...session.streams] as unknown as ServerResponse[];
    expect(res!.writableLength).toBeLessThan(MiB);
    // Upstream half: what the origin wrote and the edge has not forwarded is in the origin→edge sockets.
    expect(written - session.bytes).toBeLessThan(8 * MiB);
    gc();
    const after = process.memoryUsage();
    expect(after.rss - before.rss).toBeLessThan(64 * MiB);
    expect(after.heapUsed - before.heapUsed).toBeLessThan(16 * MiB);

    // Reading again resumes the stream, still valid TS from the first byte.
    stream.resume();
    await stream.readAtLeast(received + MiB);
    expect(stream.ended()).toBe(false);
    stream.destroy();
    expect(checkSyntheticTs(stream.data()).firstBadPacket).toBe(-1);
  });
});

describe('session of a stream', () => {
  it('a reconnect with the same token, IP, UA and channel joins the session, even after the Ministra token expired', async () => {
    // The portal's clock stands still until the first connect was allowed, so a stall of the test
    // machine cannot expire the 500 ms token before the first middleware call; then it runs again.
    let frozenAt: number | undefined = Date.now();
    const { edge, mw } = await setup({}, {}, { behavior: 'ministra', ministraTtlMs: 500, now: () => frozenAt ?? Date.now() });
    const token = mw.issueMinistraToken();
    const issuedAt = frozenAt;
    const headers = { 'user-agent': 'VLC/3.0.20 LibVLC/3.0.20' };
    const first = await open(`${edge.url}/play/ch1?token=${token}`, headers);
    frozenAt = undefined;
    expect(first.status).toBe(200);
    await first.readAtLeast(188 * 100);
    first.destroy();
    await sleep(issuedAt + 700 - Date.now());
    // The portal has forgotten the token …
    expect((await httpRequest(`${mw.url}/check?token=${token}`)).status).toBe(403);
    // … the reconnect plays on from the edge's session.
    const second = await open(`${edge.url}/play/ch1?token=${token}`, headers);
    expect(second.status, `reconnect; middleware calls: ${mw.requests.map((r) => r.rawUrl).join(', ')}`).toBe(200);
    const data = await second.readAtLeast(188 * 100);
    expect(checkSyntheticTs(data).firstBadPacket).toBe(-1);
    const auth = mw.requests.filter((r) => r.path === '/auth');
    expect(auth).toHaveLength(1);
    expect(edge.app.sessions.store.size).toBe(1);
    const session = edge.app.sessions.store.get(String(auth[0]!.headers['x-session-id']))!;
    expect(session.kind).toBe('mpegts');
    expect(session.requests).toBe(2);
    expect(await edge.metric('edge_auth_decisions_total', { result: 'allow', source: 'cache' })).toBe(1);
  });

  it('a re-check that denies closes the open stream, and a reconnect gets 403', async () => {
    const { edge, mw, origin } = await setup({ auth: { allowTtl: '1s', denyTtl: '1s' } });
    const stream = await open(`${edge.url}/play/ch1?token=t`);
    expect(stream.status).toBe(200);
    const allowedAt = mw.requests[0]!.at;
    mw.setBehavior({ kind: 'deny', status: 403 });
    const closed = await closedAt(stream, 4000);
    expect(closed - allowedAt).toBeLessThan(2500);
    expect(stream.received()).toBeGreaterThan(0);
    expect(mw.requests).toHaveLength(2);
    expect(mw.requests[1]!.headers['x-session-id']).toBe(mw.requests[0]!.headers['x-session-id']);
    // The edge gave the origin stream back too.
    await waitFor(() => origin.streams[0]!.closedByClient, { timeoutMs: 1000 });
    const again = await httpRequest(`${edge.url}/play/ch1?token=t`);
    expect(again.status).toBe(403);
    expect(['EDGE_ERR_SESSION_ENDED', 'EDGE_ERR_AUTH_DENIED']).toContain((JSON.parse(again.body.toString()) as { error: string }).error);
    expect(origin.streams).toHaveLength(1);
  });
});
