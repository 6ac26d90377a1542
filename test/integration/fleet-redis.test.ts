// A fleet on Redis (fleet issue, part 2): three in-process edges A, B, C on one origin and one
// middleware, sharing a private redis-server (test/helpers/redis.ts). Per-user limits hold across
// edges, the session table is fleet-wide, a kick through one edge cuts a stream on another within
// 1 s, and when Redis dies the edges keep serving, then converge when it is back. Each test has a
// key prefix of its own (store.prefix): nothing is ever flushed.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FleetSessionView } from '../../src/session/fleet.js';
import { httpRequest, openStream, type OpenStream } from '../helpers/client.js';
import { startEdge, type TestEdge } from '../helpers/edge.js';
import { startTestMiddleware, type TestMiddleware } from '../helpers/middleware.js';
import { startTestOrigin, type TestOrigin } from '../helpers/origin.js';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';
import { TOOLS, requireTool } from '../helpers/tools.js';
import { sleep, waitFor } from '../helpers/wait.js';

const redisServer = requireTool(TOOLS.redisServer);

interface Fleet {
  readonly origin: TestOrigin;
  readonly mw: TestMiddleware;
  readonly edges: readonly TestEdge[];
}

const markerOf = (playlist: Buffer): string => /edge_session=([A-Za-z0-9_-]{22})/.exec(playlist.toString())![1]!;
const errorOf = (body: Buffer): unknown => JSON.parse(body.toString());

async function listOn(edge: TestEdge, query = ''): Promise<{ sessions: FleetSessionView[]; total: number; nextCursor: string | null; complete?: boolean }> {
  const res = await httpRequest(`${edge.adminUrl}/api/sessions${query}`);
  expect(res.status).toBe(200);
  return JSON.parse(res.body.toString()) as { sessions: FleetSessionView[]; total: number; nextCursor: string | null; complete?: boolean };
}

describe.skipIf(redisServer.skip)(`a fleet of edges on Redis${redisServer.note}`, () => {
  let redis: TestRedis;
  const cleanups: (() => Promise<void> | void)[] = [];
  const streams: OpenStream[] = [];

  beforeAll(async () => {
    void redisServer.path; // under CI=true a missing redis-server fails here, naming it
    redis = await startTestRedis();
  });
  afterAll(async () => {
    await redis?.close();
  });
  afterEach(async () => {
    for (const s of streams.splice(0)) s.destroy();
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /** `names.length` edges on one origin and middleware, on `store` (default: the file's Redis), with a fresh key prefix. */
  async function startFleet(names: readonly string[], config: Record<string, unknown> = {}, store: TestRedis = redis): Promise<Fleet> {
    const origin = await startTestOrigin({ segmentBytes: 4096 });
    cleanups.push(() => origin.close());
    const mw = await startTestMiddleware();
    cleanups.push(() => mw.close());
    const prefix = `t${randomBytes(4).toString('hex')}:`;
    const edges: TestEdge[] = [];
    for (const name of names) {
      const edge = await startEdge({
        upstream: { url: origin.url },
        backend: { url: `${mw.url}/auth` },
        fanout: { linger: '100ms' },
        ...config,
        store: { url: store.url, prefix },
        node: { name },
      });
      // Closed before the origin and middleware (cleanups run in reverse).
      cleanups.push(() => edge.close());
      edges.push(edge);
    }
    for (const edge of edges) expect(await edge.metric('edge_store_up')).toBe(1);
    return { origin, mw, edges };
  }

  const user = (max: number): { kind: 'allow'; headers: Record<string, string> } => ({ kind: 'allow', headers: { 'X-UserId': 'u1', 'X-Max-Sessions': String(max) } });

  it('X-Max-Sessions: 2 holds across edges: the third concurrent session is refused on any edge', async () => {
    const { mw, edges } = await startFleet(['A', 'B', 'C']);
    const [a, b, c] = edges as [TestEdge, TestEdge, TestEdge];
    mw.setBehavior(user(2));
    expect((await httpRequest(`${a.url}/play/ch1/index.m3u8?token=a`)).status).toBe(200);
    expect((await httpRequest(`${b.url}/play/ch1/index.m3u8?token=b`)).status).toBe(200);
    for (const edge of [c, a, b]) {
      const third = await httpRequest(`${edge.url}/play/ch1/index.m3u8?token=third-${edge.app.config.node.name}`);
      expect(third.status).toBe(403);
      expect(errorOf(third.body)).toEqual({ error: 'EDGE_ERR_SESSION_LIMIT', reason: 'max_sessions' });
    }
    // Requests of a session already in the table never wait on the fleet: the limit is not asked again.
    expect((await httpRequest(`${a.url}/play/ch1/index.m3u8?token=a`)).status).toBe(200);
    expect(await a.metric('edge_store_errors_total')).toBe(0);
  });

  it('close-oldest: a third session on C ends the oldest, held by A (403 there), and the count stays 2', async () => {
    const { mw, edges } = await startFleet(['A', 'B', 'C'], { limits: { policy: 'close-oldest' } });
    const [a, b, c] = edges as [TestEdge, TestEdge, TestEdge];
    mw.setBehavior(user(2));
    const first = await httpRequest(`${a.url}/play/ch1/v1/index.m3u8?token=a`);
    await sleep(5);
    expect((await httpRequest(`${b.url}/play/ch1/v1/index.m3u8?token=b`)).status).toBe(200);
    expect((await httpRequest(`${c.url}/play/ch1/v1/index.m3u8?token=c`)).status).toBe(200);
    const marker = markerOf(first.body);
    const old = await waitFor(async () => {
      const r = await httpRequest(`${a.url}/play/ch1/v1/seg-1.ts?edge_session=${marker}`);
      return r.status === 403 ? r : undefined;
    }, 1000);
    expect(errorOf(old.body)).toEqual({ error: 'EDGE_ERR_SESSION_ENDED', reason: 'limit' });
    await waitFor(async () => (await listOn(b)).total === 2, 1000);
    expect((await listOn(b)).sessions.map((s) => s.edge).sort()).toEqual(['B', 'C']);
  });

  it('the session table is fleet-wide: A lists (and shows) a session opened on C, with C\'s node name; paged and filtered', async () => {
    const { mw, edges } = await startFleet(['A', 'B', 'C']);
    const [a, b, c] = edges as [TestEdge, TestEdge, TestEdge];
    mw.setBehavior({ kind: 'allow', headers: { 'X-Session-Name': 'carol' } });
    const onC = markerOf((await httpRequest(`${c.url}/play/news/v1/index.m3u8?token=c`)).body);
    await sleep(2);
    mw.setBehavior({ kind: 'allow', headers: { 'X-Session-Name': 'bob' } });
    const onB = markerOf((await httpRequest(`${b.url}/play/sport/v1/index.m3u8?token=b`)).body);
    await waitFor(async () => (await listOn(a)).total === 2, 1000);
    const all = await listOn(a);
    expect(all.sessions.map((s) => [s.id, s.edge, s.channel, s.name])).toEqual([
      [onC, 'C', 'news', 'carol'],
      [onB, 'B', 'sport', 'bob'],
    ]);
    expect(all.complete).toBeUndefined();
    // Paging across edges: one a page, oldest first, then the end.
    const page1 = await listOn(a, '?limit=1');
    expect(page1.sessions.map((s) => s.id)).toEqual([onC]);
    const page2 = await listOn(a, `?limit=1&cursor=${page1.nextCursor!}`);
    expect(page2.sessions.map((s) => s.id)).toEqual([onB]);
    expect(page2.nextCursor).toBeNull();
    // Filters run on the fleet's list too.
    expect((await listOn(a, '?name=bob')).sessions.map((s) => s.id)).toEqual([onB]);
    expect((await listOn(a, '?q=NEW')).sessions.map((s) => s.id)).toEqual([onC]);
    expect((await listOn(a, '?channel=sport')).total).toBe(1);
    // One session by ID, from an edge that does not hold it.
    const one = await httpRequest(`${a.adminUrl}/api/sessions/${onC}`);
    expect(one.status).toBe(200);
    expect(JSON.parse(one.body.toString())).toMatchObject({ id: onC, edge: 'C', channel: 'news', state: 'open' });
    // findMarker (the handler's "Redis second" hook): by join key and by ID, from another edge.
    const session = c.app.sessions.table.get(onC)!;
    const found = await a.app.sessions.fleet.findMarker({ joinKey: session.joinKey });
    expect(found).toMatchObject({ marker: onC, session: { id: onC, edge: 'C' } });
    expect(await b.app.sessions.fleet.findMarker({ sessionId: onC })).toMatchObject({ marker: onC });
    expect(await b.app.sessions.fleet.findMarker({ joinKey: session.joinKey + 1 })).toBeUndefined();
    // A session that closes leaves the fleet's table.
    expect((await httpRequest(`${a.adminUrl}/api/sessions/${onB}`, { method: 'DELETE' })).status).toBe(200);
    await waitFor(async () => (await listOn(c)).total === 1, 1000);
  });

  it('a kick through A cuts an MPEG-TS stream on C within 1 s; a kicked HLS marker gets 403 on every edge', async () => {
    const { mw, edges } = await startFleet(['A', 'B', 'C']);
    const [a, b, c] = edges as [TestEdge, TestEdge, TestEdge];
    const ts = await openStream(`${c.url}/play/ch1?token=t`);
    streams.push(ts);
    await ts.readAtLeast(1000);
    const streamId = String(mw.requests[0]!.headers['x-session-id']);
    // Published within a few ms (one batched write): an operator sees it listed before kicking it.
    await waitFor(async () => (await listOn(a)).total === 1, 1000);
    const kickedAt = Date.now();
    const kick = await httpRequest(`${a.adminUrl}/api/sessions/${streamId}`, { method: 'DELETE' });
    expect(kick.status).toBe(200);
    expect(JSON.parse(kick.body.toString())).toEqual({ kicked: streamId });
    await waitFor(() => ts.ended(), { timeoutMs: 1000 });
    expect(Date.now() - kickedAt).toBeLessThan(1000);
    expect(c.logs.some((l) => l['msg'] === 'session closed' && l['reason'] === 'kicked')).toBe(true);

    const hls = markerOf((await httpRequest(`${c.url}/play/ch2/v1/index.m3u8?token=h`)).body);
    await waitFor(async () => (await listOn(b)).total === 1, 1000);
    expect((await httpRequest(`${b.adminUrl}/api/sessions/${hls}`, { method: 'DELETE' })).status).toBe(200);
    // Every edge hears of it within 1 s and keeps a tombstone, A which never held it included.
    await waitFor(() => [a, b, c].every((e) => e.app.sessions.store.get(hls)?.endReason === 'kicked'), 1000);
    for (const edge of [a, b, c]) {
      const refused = await httpRequest(`${edge.url}/play/ch2/v1/seg-1.ts?edge_session=${hls}`);
      expect(refused.status).toBe(403);
      expect(errorOf(refused.body)).toEqual({ error: 'EDGE_ERR_SESSION_ENDED', reason: 'kicked' });
    }
    // An edge that never held it knows it ended (the tombstone), and a second kick finds nothing to kick.
    expect(await a.app.sessions.fleet.findMarker({ sessionId: hls })).toMatchObject({ ended: { sessionId: hls, reason: 'kicked' } });
    expect((await httpRequest(`${a.adminUrl}/api/sessions/${hls}`, { method: 'DELETE' })).status).toBe(404);
    // The middleware was asked once per session: nothing was re-decided on another edge.
    expect(mw.requests.map((r) => r.rawQuery)).toEqual(['token=t', 'token=h']);
  });

  it('Redis down: players keep playing, new sessions work (limits per edge), one log line and edge_store_up 0; back: converged', async () => {
    const own = await startTestRedis();
    cleanups.push(() => own.close());
    const { mw, edges } = await startFleet(['A', 'B'], {}, own);
    const [a, b] = edges as [TestEdge, TestEdge];
    mw.setBehavior(user(5));
    const hls = markerOf((await httpRequest(`${a.url}/play/ch1/v1/index.m3u8?token=a`)).body);
    const ts = await openStream(`${b.url}/play/ch2?token=b`);
    streams.push(ts);
    await ts.readAtLeast(1000);
    await waitFor(async () => (await listOn(a)).total === 2, 1000);

    await own.kill();
    await waitFor(async () => (await a.metric('edge_store_up')) === 0 && (await b.metric('edge_store_up')) === 0, 2000);
    // Playing on: the HLS session from A's own table, the stream on B untouched.
    for (let i = 1; i <= 3; i++) expect((await httpRequest(`${a.url}/play/ch1/v1/seg-${i}.ts?edge_session=${hls}`)).status).toBe(200);
    const before = ts.received();
    await ts.readAtLeast(before + 1000);
    // A new session, with a per-user limit, is decided locally at once.
    const during = await httpRequest(`${a.url}/play/ch3/v1/index.m3u8?token=during`);
    expect(during.status).toBe(200);
    const duringId = markerOf(during.body);
    // The list falls back to this edge's sessions, and says so.
    const partial = await listOn(a);
    expect(partial.complete).toBe(false);
    expect(partial.sessions.map((s) => s.edge)).toEqual(['A', 'A']);
    // Reconnect attempts go on (backoff); the episode is one line however many errors.
    await sleep(600);
    const episode = a.logs.filter((l) => String(l['msg']).startsWith('fleet store unreachable'));
    expect(episode).toHaveLength(1);
    // The URL as redact.ts shows URLs (credentials, had it any, as `redacted`).
    expect(episode[0]).toMatchObject({ level: 40, store: own.url });
    expect(await a.metric('edge_store_errors_total', { op: 'connect' })).toBeGreaterThanOrEqual(1);

    await own.restart();
    await waitFor(async () => (await a.metric('edge_store_up')) === 1 && (await b.metric('edge_store_up')) === 1, 8000);
    // Redis lost everything (a restart without persistence): each edge published its sessions again.
    const converged = await waitFor(async () => {
      const page = await listOn(b);
      return page.total === 3 ? page : undefined;
    }, 3000);
    expect(converged.sessions.map((s) => [s.id, s.edge]).sort()).toEqual([[hls, 'A'], [duringId, 'A'], [converged.sessions.find((s) => s.edge === 'B')!.id, 'B']].sort());
    const back = a.logs.find((l) => l['msg'] === 'fleet store back: this edge\'s sessions published again');
    expect(back).toMatchObject({ republished: 2 });
    expect(back!['downMs']).toBeGreaterThan(0);
    expect(back!['errors']).toBeGreaterThanOrEqual(1);
    // A new session on A shows on B, and limits are the fleet's again.
    const after = markerOf((await httpRequest(`${a.url}/play/ch4/v1/index.m3u8?token=after`)).body);
    await waitFor(async () => (await listOn(b)).sessions.some((s) => s.id === after), 1000);
    expect(ts.ended()).toBe(false);
  });

  it('Redis slow: a new session waits at most the store timeout, then is decided locally; the episode ends when Redis answers', async () => {
    const { mw, edges } = await startFleet(['A']);
    const [a] = edges as [TestEdge];
    mw.setBehavior(user(5));
    expect((await httpRequest(`${a.url}/play/ch1/index.m3u8?token=before`)).status).toBe(200);
    // A script that keeps Redis busy for 800 ms (Redis runs one script at a time, nothing else meanwhile).
    const blocker = new Redis(redis.url, { protocol: 2 });
    cleanups.push(() => void blocker.disconnect());
    const busy = blocker.eval("local s = redis.call('TIME') local t0 = s[1] * 1000000 + s[2] repeat local t = redis.call('TIME') until t[1] * 1000000 + t[2] - t0 > 800000 return 1", 0);
    await sleep(50);
    const during = await httpRequest(`${a.url}/play/ch1/index.m3u8?token=during`);
    expect(during.status).toBe(200);
    expect(await a.metric('edge_store_errors_total', { op: 'admit' })).toBe(1);
    expect(await a.metric('edge_store_up')).toBe(0);
    expect(a.logs.find((l) => String(l['msg']).startsWith('fleet store unreachable'))).toMatchObject({ op: 'admit', error: 'no answer within 250 ms' });
    await busy;
    await waitFor(async () => (await a.metric('edge_store_up')) === 1, 3000);
    await waitFor(() => a.logs.some((l) => l['msg'] === 'fleet store back: this edge\'s sessions published again'), 1000);
    await waitFor(async () => (await listOn(a)).total === 2, 1000);
  });

  it('an idle timeout releases the limit entries of an edge that crashed (never said its sessions left)', async () => {
    const { mw, edges } = await startFleet(['A', 'B'], { session: { idleTimeout: '1s' } });
    const [a, b] = edges as [TestEdge, TestEdge];
    mw.setBehavior(user(1));
    expect((await httpRequest(`${a.url}/play/ch1/index.m3u8?token=a`)).status).toBe(200);
    expect((await httpRequest(`${b.url}/play/ch1/index.m3u8?token=b`)).status).toBe(403);
    // A crashes: its timers stop and its connections drop without a word (app.close would unpublish).
    const fleet = a.app.sessions.fleet as unknown as { ticker: NodeJS.Timeout; connection: { disconnect(): void }; sub: { disconnect(): void } };
    clearTimeout(fleet.ticker);
    fleet.connection.disconnect();
    fleet.sub.disconnect();
    // Nobody refreshes A's entry: after the idle timeout it no longer counts.
    const admitted = await waitFor(async () => {
      const r = await httpRequest(`${b.url}/play/ch1/index.m3u8?token=b2`);
      return r.status === 200 ? r : undefined;
    }, { timeoutMs: 5000, intervalMs: 200 });
    expect(admitted.status).toBe(200);
    await waitFor(async () => (await listOn(b)).sessions.every((s) => s.edge === 'B'), 3000);
  });
});
