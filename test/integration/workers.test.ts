// --workers 2: one port served by two worker processes (the cluster hands connections out in turn),
// one primary with the admin listener. The same player scenario as the balancer fleet (a player
// following rewritten playlists for 20 s with a 5-second Ministra token) through that one port
// never fails and makes exactly one middleware call; so do a player reloading its token URL and an
// MPEG-TS viewer reconnecting, whichever worker each connection lands on; /metrics sums the workers;
// /api/sessions and a kick reach every worker; kill -9 of a worker: restarted, its viewers go on;
// SIGHUP reaches every worker; SIGTERM drains and exits 0. Spawns the bin: `npm run build` first.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpRequest, openStream, type OpenStream } from '../helpers/client.js';
import { startEdgeProcess, type EdgeProcess } from '../helpers/fleet.js';
import { startTestMiddleware, type TestMiddleware } from '../helpers/middleware.js';
import { playHlsFor, playlistUris, type PlayerStep } from '../helpers/player.js';
import { startTestOrigin, type TestOrigin } from '../helpers/origin.js';
import { startTestRedis } from '../helpers/redis.js';
import { requireTool, TOOLS } from '../helpers/tools.js';
import { sleep, waitFor } from '../helpers/wait.js';

const redisServer = requireTool(TOOLS.redisServer);

let origin: TestOrigin;
let mw: TestMiddleware;
let edge: EdgeProcess;
const streams: OpenStream[] = [];

beforeAll(async () => {
  origin = await startTestOrigin({ targetDurationS: 1, tsBytesPerSecond: 64 * 1024 });
  // Ministra: a token dies 5 s after it was issued.
  mw = await startTestMiddleware({ behavior: 'ministra', ministraTtlMs: 5000 });
  // No --session-secret: the primary makes one and hands it to both workers.
  edge = await startEdgeProcess('workers', ['--workers', '2', '--upstream', origin.url, '--backend-type', 'stalker', '--backend', `${mw.url}/stalker_portal/`, '--log-level', 'info', '--drain-timeout', '2s']);
});

afterAll(async () => {
  for (const s of streams) s.destroy();
  await edge?.close();
  await mw?.close();
  await origin?.close();
});

const lines = (msg: string): Record<string, unknown>[] => edge.logs.filter((l) => l['msg'] === msg);
const admin = (path: string, method = 'GET'): Promise<{ status: number; body: Record<string, unknown> }> =>
  httpRequest(`${edge.adminUrl}${path}`, { method }).then((r) => ({ status: r.status, body: JSON.parse(r.body.toString()) as Record<string, unknown> }));
const sessionsListed = async (): Promise<Record<string, unknown>[]> => (await admin('/api/sessions')).body['sessions'] as Record<string, unknown>[];
/** The last media playlist URL the player had (with its marker): what a player reloads. */
const lastPlaylist = (steps: readonly PlayerStep[]): string => [...steps].reverse().find((s) => s.url.includes('.m3u8') && s.url.includes('edge_session='))!.url;

describe('--workers 2', () => {
  it('starts a primary and two workers on one port; the workers share a secret nobody logged', () => {
    expect(lines('worker listening').map((l) => l['worker']).sort()).toEqual([1, 2]);
    const listening = lines('astra-auth-edge listening').filter((l) => l['worker'] !== undefined);
    expect(new Set(listening.map((l) => l['url']))).toEqual(new Set([edge.url]));
    expect(JSON.stringify(edge.logs)).not.toMatch(/"secret":"(?!<redacted>)/);
  });

  it('a player following rewritten playlists for 20 s with a 5-second Ministra token, through one port: both workers serve it, never a failure, one middleware call, metrics summed', async () => {
    const requestsBefore = await edge.metric('edge_requests_total');
    const token = mw.issueMinistraToken({ userId: 1 });
    const steps = await playHlsFor(`${edge.url}/play/ch1/index.m3u8?token=${token}`, 20_000, { pauseMs: 60 });
    expect(steps.length).toBeGreaterThan(100);
    expect(steps.filter((s) => s.status !== 200)).toEqual([]);
    expect(mw.requests).toHaveLength(1);
    // /metrics on the admin listener: the workers' counters summed = what the player asked.
    await waitFor(async () => (await edge.metric('edge_requests_total')) - requestsBefore === steps.length, { timeoutMs: 5000, message: 'summed request counter' });
    for (const worker of ['1', '2']) expect(await edge.metric('edge_worker_requests_total', { worker }), `worker ${worker}`).toBeGreaterThan(20);
    // The worker that did not open the session served it from its signed marker alone.
    expect(await edge.metric('edge_sessions_adopted_total')).toBe(1);
    // One session, listed once although both workers hold it; counted once in edge_sessions_active.
    await waitFor(async () => (await sessionsListed()).length === 1, { timeoutMs: 5000, message: 'the session listed' });
    expect((await sessionsListed())[0]).toMatchObject({ channel: 'ch1', kind: 'hls', userId: '1' });
    expect(await edge.metric('edge_sessions_active', { kind: 'hls' })).toBe(1);
  }, 40_000);

  it('a player reloading its original media playlist URL (the token in it) through either worker: one middleware call, also after the token died', async () => {
    const token = mw.issueMinistraToken({ userId: 4 });
    const calls = mw.requests.length;
    const adopted = await edge.metric('edge_sessions_adopted_total');
    const url = `${edge.url}/play/ch4/v1/index.m3u8?token=${token}`;
    // The first reload lands on the other worker before any request with a marker did (connections
    // alternate): it finds the session by its join key through the primary.
    const statuses = [(await httpRequest(url)).status];
    await sleep(1000);
    // As hls.js plays a media playlist: reload it every target duration (1 s), fetch its newest segments.
    // Three connections a round: the playlist reloads alternate between the two workers.
    const deadline = Date.now() + 5500;
    while (Date.now() < deadline) {
      const playlist = await httpRequest(url);
      statuses.push(playlist.status);
      if (playlist.status === 200) for (const segment of playlistUris(playlist.body.toString(), url).slice(-2)) statuses.push((await httpRequest(segment)).status);
      await sleep(1000);
    }
    expect(statuses.length).toBeGreaterThanOrEqual(10);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(mw.requests).toHaveLength(calls + 1);
    // The worker that did not open it found it by its join key through the primary, and adopted its marker.
    expect(await edge.metric('edge_sessions_adopted_total')).toBe(adopted + 1);
  }, 15_000);

  it('MPEG-TS: reconnects land on either worker and stay one session (no middleware call); a kick through the admin API cuts the stream', async () => {
    const token = mw.issueMinistraToken({ userId: 2 });
    const calls = mw.requests.length;
    const url = `${edge.url}/play/ch2?token=${token}`;
    let ts = await openStream(url);
    streams.push(ts);
    expect(ts.status).toBe(200);
    await ts.readAtLeast(10_000);
    const listed = await waitFor(async () => (await sessionsListed()).find((s) => s['channel'] === 'ch2'), { timeoutMs: 5000, message: 'the MPEG-TS session listed' });
    expect(listed).toMatchObject({ kind: 'mpegts', userId: '2' });
    for (let i = 0; i < 3; i++) {
      ts.destroy();
      ts = await openStream(url);
      streams.push(ts);
      expect(ts.status, `reconnect ${i + 1}`).toBe(200);
      await ts.readAtLeast(10_000);
    }
    expect(mw.requests).toHaveLength(calls + 1);
    await waitFor(async () => (await sessionsListed()).some((s) => s['id'] === listed['id']), { timeoutMs: 5000, message: 'the session listed again' });
    expect((await admin(`/api/sessions/${String(listed['id'])}`)).body).toMatchObject({ id: listed['id'], kind: 'mpegts', channel: 'ch2' });
    expect(await admin(`/api/sessions/${String(listed['id'])}`, 'DELETE')).toEqual({ status: 200, body: { kicked: listed['id'] } });
    await waitFor(() => ts.ended(), { timeoutMs: 3000, message: 'the stream cut' });
    await waitFor(async () => (await sessionsListed()).every((s) => s['id'] !== listed['id']), { timeoutMs: 5000, message: 'the kicked session unlisted' });
    expect((await admin(`/api/sessions/${String(listed['id'])}`, 'DELETE')).status).toBe(404);
    // Its marker is refused on every worker now: a reconnect with the token is a new session (the middleware decides).
    const again = await httpRequest(url, { timeoutMs: 2000 }).catch(() => undefined);
    expect(again?.status ?? 403).not.toBe(200);
  }, 20_000);

  it('per-user limits hold across workers: a new session with X-Unique on one worker ends the user\'s stream on the other', async () => {
    // The Ministra-like middleware answers X-UserId, X-Unique: true, X-Max-Sessions: 10.
    const first = await openStream(`${edge.url}/play/ch7?token=${mw.issueMinistraToken({ userId: 7 })}`);
    streams.push(first);
    await first.readAtLeast(10_000);
    // The very next connection goes to the other worker (round-robin; the admin port is the primary's).
    const second = await openStream(`${edge.url}/play/ch8?token=${mw.issueMinistraToken({ userId: 7 })}`);
    streams.push(second);
    expect(second.status).toBe(200);
    await waitFor(() => first.ended(), { timeoutMs: 3000, message: 'the first stream ended by X-Unique' });
    await second.readAtLeast(10_000);
    const opened = (channel: string): unknown => lines('session opened').find((l) => l['channel'] === channel)?.['worker'];
    expect(opened('ch7')).not.toBe(opened('ch8'));
  });

  it('kill -9 of a worker: it is restarted; its MPEG-TS viewer reconnects and an HLS player goes on, both without a middleware call', async () => {
    const tsToken = mw.issueMinistraToken({ userId: 5 });
    const hlsToken = mw.issueMinistraToken({ userId: 6 });
    const ts = await openStream(`${edge.url}/play/ch5?token=${tsToken}`);
    streams.push(ts);
    await ts.readAtLeast(10_000);
    const before = await playHlsFor(`${edge.url}/play/ch6/index.m3u8?token=${hlsToken}`, 3000, { pauseMs: 30 });
    expect(before.filter((s) => s.status !== 200)).toEqual([]);
    const calls = mw.requests.length;
    // The worker holding the stream, by its log; listed (published) before it dies.
    const holder = Number(lines('session opened').find((l) => l['channel'] === 'ch5')!['worker']);
    await waitFor(async () => (await sessionsListed()).some((s) => s['channel'] === 'ch5'), { timeoutMs: 5000 });
    const pid = Number([...lines('worker listening'), ...lines('worker restarted and listening')].filter((l) => l['worker'] === holder).at(-1)!['pid']);
    process.kill(pid, 'SIGKILL');
    await waitFor(() => ts.ended(), { timeoutMs: 3000, message: 'the stream of the dead worker cut' });
    await waitFor(() => lines('worker exited unexpectedly: restarting it; its HLS viewers continue on the other workers, its MPEG-TS viewers reconnect').length === 1, { timeoutMs: 5000 });
    const after = await playHlsFor(lastPlaylist(before), 4000, { pauseMs: 30 });
    expect(after.length).toBeGreaterThan(20);
    expect(after.filter((s) => s.status !== 200)).toEqual([]);
    const reconnected = await openStream(`${edge.url}/play/ch5?token=${tsToken}`);
    streams.push(reconnected);
    expect(reconnected.status).toBe(200);
    await reconnected.readAtLeast(10_000);
    expect(mw.requests).toHaveLength(calls);
    await waitFor(() => lines('worker restarted and listening').length === 1, { timeoutMs: 10_000 });
    expect(await edge.metric('edge_worker_restarts_total')).toBe(1);
    expect(await edge.metric('edge_workers', { state: 'ready' })).toBe(2);
    expect((await httpRequest(`${edge.adminUrl}/readyz`)).status).toBe(200);
  }, 30_000);

  it('SIGHUP reaches every worker', async () => {
    edge.child.kill('SIGHUP');
    await waitFor(() => lines('configuration reloaded').length >= 2, { timeoutMs: 5000 });
    expect(new Set(lines('configuration reloaded').map((l) => l['worker']))).toEqual(new Set([1, 2]));
    await waitFor(() => lines('configuration sent to every worker').length === 1, { timeoutMs: 5000 });
  });

  it('SIGTERM: every worker drains, then the primary exits 0', async () => {
    const exit = new Promise<number | null>((resolve) => edge.child.once('exit', (code) => resolve(code)));
    edge.child.kill('SIGTERM');
    expect(await exit).toBe(0);
    expect(lines('worker stopped').map((l) => l['worker']).sort()).toEqual([1, 2]);
    expect(lines('astra-auth-edge stopped').length).toBe(3);
  });
});

describe.skipIf(redisServer.skip)(`--workers 2 --store redis://: the workers share Redis like any edges${redisServer.note}`, () => {
  it('a player through one port: one middleware call; the primary lists its session (from Redis, through a worker) and kicks an MPEG-TS stream', async () => {
    const redis = await startTestRedis();
    const fleetEdge = await startEdgeProcess('workers-redis', ['--workers', '2', '--store', redis.url, '--session-secret', 'workers-redis-0123456789abcdef', '--upstream', origin.url, '--backend-type', 'stalker', '--backend', `${mw.url}/stalker_portal/`]);
    try {
      const calls = mw.requests.length;
      const steps = await playHlsFor(`${fleetEdge.url}/play/ch9/index.m3u8?token=${mw.issueMinistraToken({ userId: 9 })}`, 3000, { pauseMs: 30 });
      expect(steps.filter((s) => s.status !== 200)).toEqual([]);
      expect(mw.requests).toHaveLength(calls + 1);
      const ts = await openStream(`${fleetEdge.url}/play/ch10?token=${mw.issueMinistraToken({ userId: 10 })}`);
      streams.push(ts);
      await ts.readAtLeast(10_000);
      const list = async (): Promise<Record<string, unknown>[]> => (JSON.parse((await httpRequest(`${fleetEdge.adminUrl}/api/sessions`)).body.toString()) as { sessions: Record<string, unknown>[] }).sessions;
      const held = await waitFor(async () => (await list()).find((s) => s['channel'] === 'ch10'), { timeoutMs: 5000, message: 'the stream listed' });
      expect(String(held['edge'])).toMatch(/\/w[12]$/);
      expect((await list()).some((s) => s['channel'] === 'ch9')).toBe(true);
      expect((await httpRequest(`${fleetEdge.adminUrl}/api/sessions/${String(held['id'])}`, { method: 'DELETE' })).status).toBe(200);
      await waitFor(() => ts.ended(), { timeoutMs: 3000, message: 'the kicked stream cut' });
    } finally {
      await fleetEdge.close();
      await redis.close();
    }
  }, 20_000);
});
