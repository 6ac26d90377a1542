// Sessions an operator can see and control: the table, idle close, MPEG-TS close, the close
// webhook, per-user limits, kick, and the admin API's token.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { httpRequest, openStream, type OpenStream } from '../helpers/client.js';
import { useStack, type Stack } from '../helpers/stack.js';
import { sleep, waitFor } from '../helpers/wait.js';

const TOKEN = 'admin-token-0123456789abcdef';
const start = useStack({ origin: { segmentBytes: 4096 } });
const streams: OpenStream[] = [];
let hook: { server: Server; url: string; received: Record<string, unknown>[] } | undefined;

afterEach(async () => {
  for (const s of streams.splice(0)) s.destroy();
  if (hook !== undefined) {
    hook.server.closeAllConnections();
    await new Promise((r) => hook!.server.close(r));
    hook = undefined;
  }
});

/** A "Sessions Backend" that records the JSON bodies (POST) or query fields (GET) it gets. */
async function startWebhook(): Promise<NonNullable<typeof hook>> {
  const received: Record<string, unknown>[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push(req.method === 'POST' ? (JSON.parse(body) as Record<string, unknown>) : Object.fromEntries(new URL(req.url!, 'http://x').searchParams));
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  hook = { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/closed`, received };
  return hook;
}

async function api(stack: Stack, path: string, method = 'GET', token: string | null = TOKEN): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await httpRequest(`${stack.edge.adminUrl}${path}`, { method, headers: token === null ? {} : { authorization: `Bearer ${token}` } });
  return { status: res.status, body: JSON.parse(res.body.toString()) as Record<string, unknown> };
}

type View = { id: string; channel: string; kind: string; name: string | null; ip: string; userAgent: string; requests: number; bytes: number; state: string; decision: { result: string; source: string } };
const listSessions = async (stack: Stack, query = ''): Promise<View[]> => (await api(stack, `/api/sessions${query}`)).body['sessions'] as View[];
const markerOf = (playlist: Buffer): string => /edge_session=([A-Za-z0-9_-]{22})/.exec(playlist.toString())![1]!;

describe('the session table', () => {
  it('shows an HLS session with its fields; bytes are what the client received', async () => {
    const stack = await start({ admin: { token: TOKEN } });
    stack.mw.setBehavior({ kind: 'allow', headers: { 'X-Session-Name': 'alice' } });
    const ua = 'VLC/3.0.20 LibVLC/3.0.20';
    const pl = await httpRequest(`${stack.edge.url}/play/ch1/v1/index.m3u8?token=t1`, { headers: { 'user-agent': ua } });
    const sid = markerOf(pl.body);
    const seg = await httpRequest(`${stack.edge.url}/play/ch1/v1/seg-3.ts?edge_session=${sid}`, { headers: { 'user-agent': ua } });
    const [s, ...rest] = await listSessions(stack);
    expect(rest).toEqual([]);
    expect(s).toMatchObject({ id: sid, channel: 'ch1', kind: 'hls', name: 'alice', ip: '127.0.0.1', userAgent: ua, requests: 2, state: 'open' });
    expect(s!.bytes).toBe(pl.body.length + seg.body.length);
    expect(s!.decision).toMatchObject({ result: 'allow', source: 'backend' });
    expect((await api(stack, `/api/sessions/${sid}`)).body).toMatchObject({ id: sid, bytes: s!.bytes });
    expect((await api(stack, '/api/sessions?channel=ch1')).body['sessions']).toHaveLength(1);
    expect((await api(stack, '/api/sessions?channel=ch2')).body['sessions']).toHaveLength(0);
    expect((await api(stack, '/api/sessions?name=alice')).body['sessions']).toHaveLength(1);
    expect((await api(stack, '/api/stats')).body).toMatchObject({ sessions: 1, byChannel: { ch1: { hls: 1, mpegts: 0 } } });
  });

  it('shows an MPEG-TS session; it closes with its connection and the webhook hears it once', async () => {
    const wh = await startWebhook();
    const stack = await start({ session: { closeWebhook: wh.url } });
    const stream = await openStream(`${stack.edge.url}/play/ch9?token=ts`, { headers: { 'user-agent': 'ffmpeg' } });
    streams.push(stream);
    await stream.readAtLeast(64 * 1024);
    const [s] = await listSessions(stack);
    expect(s).toMatchObject({ channel: 'ch9', kind: 'mpegts', userAgent: 'ffmpeg', state: 'open' });
    expect(s!.bytes).toBeGreaterThanOrEqual(64 * 1024);
    stream.destroy();
    await waitFor(async () => (await listSessions(stack)).length === 0, { timeoutMs: 2000 });
    await waitFor(() => wh.received.length === 1, { timeoutMs: 3000 });
    await sleep(200);
    expect(wh.received).toHaveLength(1);
    expect(wh.received[0]).toMatchObject({ event: 'close', reason: 'disconnected', id: s!.id, channel: 'ch9', kind: 'mpegts', ip: '127.0.0.1' });
    expect(wh.received[0]!['bytes']).toBeGreaterThanOrEqual(stream.received());
    expect(await stack.edge.metric('edge_sessions_closed_total', { reason: 'disconnected' })).toBe(1);
    expect(stack.edge.logs.filter((l) => l['msg'] === 'session closed')).toHaveLength(1);
  });

  it('closes an idle HLS session after the idle timeout, once, and tells the webhook (GET)', async () => {
    const wh = await startWebhook();
    const stack = await start({ session: { idleTimeout: '1s', closeWebhook: wh.url, closeWebhookMethod: 'GET' } });
    await httpRequest(`${stack.edge.url}/play/ch1/v1/index.m3u8?token=t1`);
    expect(await listSessions(stack)).toHaveLength(1);
    await waitFor(async () => (await listSessions(stack)).length === 0, { timeoutMs: 4000 });
    await waitFor(() => wh.received.length === 1, { timeoutMs: 3000 });
    await sleep(400);
    expect(wh.received).toHaveLength(1);
    expect(wh.received[0]).toMatchObject({ event: 'close', reason: 'idle', channel: 'ch1', kind: 'hls', decision_result: 'allow' });
    const closed = stack.edge.logs.filter((l) => l['msg'] === 'session closed');
    expect(closed).toHaveLength(1);
    expect(closed[0]).toMatchObject({ reason: 'idle', kind: 'hls' });
    expect(typeof closed[0]!['durationMs']).toBe('number');
    expect(typeof closed[0]!['bytes']).toBe('number');
  });
});

describe('per-user limits', () => {
  const user = { kind: 'allow' as const, headers: { 'X-UserId': 'u1', 'X-Max-Sessions': '2' } };

  it('X-Max-Sessions: 2 refuses a third concurrent session; after one closes a new one is allowed', async () => {
    const stack = await start({ admin: { token: TOKEN } });
    stack.mw.setBehavior(user);
    const a = await httpRequest(`${stack.edge.url}/play/ch1/index.m3u8?token=a`);
    await httpRequest(`${stack.edge.url}/play/ch1/index.m3u8?token=b`);
    const third = await httpRequest(`${stack.edge.url}/play/ch1/index.m3u8?token=c`);
    expect(third.status).toBe(403);
    expect(JSON.parse(third.body.toString())).toEqual({ error: 'EDGE_ERR_SESSION_LIMIT', reason: 'max_sessions' });
    expect(await listSessions(stack)).toHaveLength(2);
    expect((await api(stack, `/api/sessions/${markerOf(a.body)}`, 'DELETE')).status).toBe(200);
    const again = await httpRequest(`${stack.edge.url}/play/ch1/index.m3u8?token=c`);
    expect(again.status).toBe(200);
    expect(await listSessions(stack)).toHaveLength(2);
  });

  it('policy close-oldest: the third session plays and the oldest is ended', async () => {
    const stack = await start({ limits: { policy: 'close-oldest' } });
    stack.mw.setBehavior(user);
    const a = await httpRequest(`${stack.edge.url}/play/ch1/v1/index.m3u8?token=a`);
    await sleep(5);
    await httpRequest(`${stack.edge.url}/play/ch1/v1/index.m3u8?token=b`);
    const c = await httpRequest(`${stack.edge.url}/play/ch1/v1/index.m3u8?token=c`);
    expect(c.status).toBe(200);
    const old = await httpRequest(`${stack.edge.url}/play/ch1/v1/seg-1.ts?edge_session=${markerOf(a.body)}`);
    expect(old.status).toBe(403);
    expect(JSON.parse(old.body.toString())).toEqual({ error: 'EDGE_ERR_SESSION_ENDED', reason: 'limit' });
  });

  it('a global per-user default applies when the middleware sends no X-Max-Sessions', async () => {
    const stack = await start({ limits: { maxSessionsPerUser: 1 } });
    stack.mw.setBehavior({ kind: 'allow', headers: { 'X-Session-Name': 'bob' } });
    expect((await httpRequest(`${stack.edge.url}/play/ch1/index.m3u8?token=a`)).status).toBe(200);
    expect((await httpRequest(`${stack.edge.url}/play/ch1/index.m3u8?token=b`)).status).toBe(403);
  });

  it('X-Unique: true ends the user\'s older sessions (HLS 403, MPEG-TS cut)', async () => {
    const stack = await start();
    stack.mw.setBehavior({ kind: 'allow', headers: { 'X-UserId': 'stb7', 'X-Unique': 'true' } });
    const hls = await httpRequest(`${stack.edge.url}/play/ch1/v1/index.m3u8?token=a`);
    const ts = await openStream(`${stack.edge.url}/play/ch2?token=b`);
    streams.push(ts);
    await ts.readAtLeast(1000);
    expect((await httpRequest(`${stack.edge.url}/play/ch1/v1/seg-1.ts?edge_session=${markerOf(hls.body)}`)).status).toBe(403);
    await httpRequest(`${stack.edge.url}/play/ch3/index.m3u8?token=c`);
    await waitFor(() => ts.ended(), { timeoutMs: 1000 });
  });

  it('soft mode lets one user switch channels under a limit of 1 (one session per user per channel)', async () => {
    const stack = await start({ limits: { soft: true } });
    stack.mw.setBehavior({ kind: 'allow', headers: { 'X-UserId': 'u1', 'X-Max-Sessions': '1' } });
    expect((await httpRequest(`${stack.edge.url}/play/ch1/index.m3u8?token=same`)).status).toBe(200);
    expect((await httpRequest(`${stack.edge.url}/play/ch2/index.m3u8?token=same`)).status).toBe(200);
    // A second device of the same user on the same channel is still over the limit.
    expect((await httpRequest(`${stack.edge.url}/play/ch2/index.m3u8?token=other`)).status).toBe(403);
  });

  it('without soft mode the same switch is refused', async () => {
    const stack = await start();
    stack.mw.setBehavior({ kind: 'allow', headers: { 'X-UserId': 'u1', 'X-Max-Sessions': '1' } });
    expect((await httpRequest(`${stack.edge.url}/play/ch1/index.m3u8?token=same`)).status).toBe(200);
    expect((await httpRequest(`${stack.edge.url}/play/ch2/index.m3u8?token=same`)).status).toBe(403);
  });
});

describe('kick', () => {
  it('HLS: the next request gets 403 and the marker stays refused', async () => {
    const stack = await start({ admin: { token: TOKEN } });
    const pl = await httpRequest(`${stack.edge.url}/play/ch1/v1/index.m3u8?token=t`);
    const sid = markerOf(pl.body);
    expect(await api(stack, `/api/sessions/${sid}`, 'DELETE')).toEqual({ status: 200, body: { kicked: sid } });
    for (const path of ['v1/seg-1.ts', 'v1/index.m3u8']) {
      const res = await httpRequest(`${stack.edge.url}/play/ch1/${path}?edge_session=${sid}`);
      expect(res.status).toBe(403);
      expect(JSON.parse(res.body.toString())).toEqual({ error: 'EDGE_ERR_SESSION_ENDED', reason: 'kicked' });
    }
    expect(await listSessions(stack)).toEqual([]);
    expect(stack.mw.requests).toHaveLength(1);
    expect((await api(stack, `/api/sessions/${sid}`, 'DELETE')).status).toBe(404);
  });

  it('MPEG-TS: the open connection is closed within 1 s', async () => {
    // The shared upstream of a channel closes fanout.linger after its last viewer leaves.
    const stack = await start({ admin: { token: TOKEN }, fanout: { linger: '100ms' } });
    const ts = await openStream(`${stack.edge.url}/play/ch1?token=t`);
    streams.push(ts);
    await ts.readAtLeast(1000);
    const sid = String(stack.mw.requests[0]!.headers['x-session-id']);
    const kickedAt = Date.now();
    expect((await api(stack, `/api/sessions/${sid}`, 'DELETE')).status).toBe(200);
    await waitFor(() => ts.ended(), { timeoutMs: 1000 });
    expect(Date.now() - kickedAt).toBeLessThan(1000);
    await waitFor(() => stack.origin.streams[0]?.closedAt !== null, { timeoutMs: 1000 });
  });
});

describe('admin API access and input', () => {
  it('without or with a wrong token → 401; right token → 200; metrics and probes stay open', async () => {
    const stack = await start({ admin: { token: TOKEN } });
    expect((await api(stack, '/api/sessions', 'GET', null)).status).toBe(401);
    expect((await api(stack, '/api/sessions', 'GET', 'wrong-token-0123456789')).status).toBe(401);
    expect((await api(stack, '/api/sessions', 'GET', `${TOKEN}x`)).status).toBe(401);
    expect((await api(stack, '/api/sessions', 'GET', null)).body).toEqual({ error: 'EDGE_ERR_UNAUTHORIZED' });
    expect((await api(stack, '/api/sessions')).status).toBe(200);
    expect((await httpRequest(`${stack.edge.adminUrl}/healthz`)).status).toBe(200);
    expect((await httpRequest(`${stack.edge.adminUrl}/metrics`)).status).toBe(200);
  });

  it('malformed and unknown IDs get clear 4xx JSON errors', async () => {
    const stack = await start({ admin: { token: TOKEN } });
    expect(await api(stack, '/api/sessions/not-an-id')).toMatchObject({ status: 400, body: { error: 'EDGE_ERR_BAD_SESSION_ID' } });
    expect(await api(stack, `/api/sessions/${'A'.repeat(22)}`)).toMatchObject({ status: 404, body: { error: 'EDGE_ERR_SESSION_NOT_FOUND' } });
    expect(await api(stack, `/api/sessions/${'A'.repeat(22)}`, 'DELETE')).toMatchObject({ status: 404 });
    expect(await api(stack, '/api/sessions', 'POST')).toMatchObject({ status: 405, body: { error: 'EDGE_ERR_METHOD_NOT_ALLOWED' } });
    expect(await api(stack, '/api/nothing')).toMatchObject({ status: 404, body: { error: 'EDGE_ERR_NOT_FOUND' } });
  });
});

describe('why a session was allowed or denied (GET /api/sessions/<id>)', () => {
  type Why = { decidedBy: string | null; rule: string | null; backend: string | null; status: number | null; reason: string | null; defaultAction: string | null; failure: string | null; ended: string | null; short: string; text: string };
  const viewOf = async (stack: Stack, sid: string) => (await api(stack, `/api/sessions/${sid}`)).body as { why: Why; nextCheckAt: string | null; decision: { expiresAt: string | null } };

  it('the middleware and its answer, and when it is asked again', async () => {
    const stack = await start({ admin: { token: TOKEN }, auth: { allowTtl: '90s' } });
    const sid = markerOf((await httpRequest(`${stack.edge.url}/play/ch1/v1/index.m3u8?token=t1`)).body);
    const view = await viewOf(stack, sid);
    expect(view.why).toEqual({
      decidedBy: 'backend',
      rule: null,
      backend: 'http',
      status: 200,
      reason: 'backend_200',
      defaultAction: null,
      failure: null,
      ended: null,
      short: 'backend http 200',
      text: 'allowed by the middleware http: it answered 200 (backend_200)',
    });
    expect(view.nextCheckAt).toBe(view.decision.expiresAt);
    const inMs = Date.parse(view.nextCheckAt!) - Date.now();
    expect(inMs).toBeGreaterThan(80_000);
    expect(inMs).toBeLessThanOrEqual(90_000);

    // Kicked: the reason it ended, and no re-check any more.
    await api(stack, `/api/sessions/${sid}`, 'DELETE');
    const ended = await viewOf(stack, sid);
    expect(ended.why).toMatchObject({ decidedBy: 'backend', ended: 'kicked', short: 'ended kicked (backend http 200)' });
    expect(ended.nextCheckAt).toBeNull();
  });

  it('a local rule', async () => {
    const stack = await start({ admin: { token: TOKEN }, rules: { ipAllow: ['127.0.0.1'] } });
    const sid = markerOf((await httpRequest(`${stack.edge.url}/play/ch1/v1/index.m3u8?token=t1`)).body);
    expect((await viewOf(stack, sid)).why).toMatchObject({ decidedBy: 'rule', rule: 'ip_allowed', backend: null, short: 'rule ip_allowed', text: 'allowed by a local rule (ip_allowed)' });
    expect(stack.mw.requests).toHaveLength(0);
  });

  it('the default action, and the failure that made it apply', async () => {
    const stack = await start({ admin: { token: TOKEN }, backend: { timeout: '200ms' }, auth: { unavailableTtl: '7s' } });
    stack.mw.setBehavior('hang');
    const sid = markerOf((await httpRequest(`${stack.edge.url}/play/ch1/v1/index.m3u8?token=t1`)).body);
    const view = await viewOf(stack, sid);
    expect(view.why).toMatchObject({
      decidedBy: 'default',
      backend: null,
      defaultAction: 'allow',
      failure: 'EDGE_ERR_BACKEND_TIMEOUT',
      reason: 'middleware_unavailable',
      short: 'default allow: timeout',
      text: 'allowed by the default action (allow): the middleware was unavailable (EDGE_ERR_BACKEND_TIMEOUT)',
    });
    expect(Date.parse(view.nextCheckAt!) - Date.now()).toBeLessThanOrEqual(7000);
  });
});
