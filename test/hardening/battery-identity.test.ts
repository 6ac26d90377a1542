// The hardening battery, identity: who the client says it is (X-Forwarded-For, X-Real-IP),
// which session it says it has (forged, altered, truncated, foreign and replayed markers), and
// who may use the admin API. For each: the exact answer, and whether the middleware was asked.
import { describe, expect, it } from 'vitest';
import { httpRequest, type HttpResult } from '../helpers/client.js';
import type { MiddlewareRequestRecord } from '../helpers/middleware.js';
import { useStack, type Stack } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

const startStack = useStack({ origin: { segmentBytes: 4096 } });
// A small decision store: the default (1,000,000 entries) costs ~0.5 s of lru-cache allocation per edge.
const start = (file: Record<string, unknown> = {}): Promise<Stack> => startStack({ ...file, auth: { maxEntries: 10_000, ...(file['auth'] as object | undefined) } });

/** The middleware allows `token=good` only. */
const goodTokenOnly = (rec: MiddlewareRequestRecord): 'allow' | 'deny' => (new URLSearchParams(rec.rawQuery).get('token') === 'good' ? 'allow' : 'deny');

function json(res: HttpResult): unknown {
  return JSON.parse(res.body.toString('utf8'));
}

/** Opens a session the way a player does and returns its marker (from the rewritten playlist). */
async function openSession(edgeUrl: string, channel = 'ch1'): Promise<string> {
  const res = await httpRequest(`${edgeUrl}/play/${channel}/v1/index.m3u8?token=good`);
  expect(res.status).toBe(200);
  const marker = /edge_session=([A-Za-z0-9_-]{22})/.exec(res.body.toString('utf8'))?.[1];
  expect(marker, 'a marker in the rewritten playlist').toBeDefined();
  return marker!;
}

describe('battery: spoofed X-Forwarded-For / X-Real-IP from an untrusted client', () => {
  const spoofed = { 'x-forwarded-for': '203.0.113.9, 198.51.100.1', 'x-real-ip': '198.51.100.7', forwarded: 'for=192.0.2.60' };

  it.each([
    ['no trusted proxy configured', {}],
    ['trusted proxies that do not include the peer', { proxy: { trustedProxies: ['10.0.0.0/8', '192.0.2.0/24'] } }],
  ])('%s: the middleware\'s X-Real-IP, the origin\'s X-Forwarded-For / X-Real-IP and the session are the socket address', async (_name, file) => {
    const stack = await start(file);
    const res = await httpRequest(`${stack.edge.url}/play/ch1/v1/seg-1.ts?token=good`, { headers: spoofed });
    expect(res.status).toBe(200);
    expect(stack.mw.requests).toHaveLength(1);
    expect(stack.mw.requests[0]!.headers['x-real-ip']).toBe('127.0.0.1');
    expect(stack.origin.requests).toHaveLength(1);
    const seen = stack.origin.requests[0]!;
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['x-real-ip']).toBe('127.0.0.1');
    const sessions = json(await httpRequest(`${stack.edge.adminUrl}/api/sessions`)) as { sessions: { ip: string }[] };
    expect(sessions.sessions.map((s) => s.ip)).toEqual(['127.0.0.1']);
  });

  it('a spoofed address does not get past rules.ipDeny (the peer 127.0.0.1 is denied whatever the headers say)', async () => {
    const stack = await start({ rules: { ipDeny: ['127.0.0.1/32'] } });
    const res = await httpRequest(`${stack.edge.url}/play/ch1/v1/seg-1.ts?token=good`, { headers: { 'x-forwarded-for': '8.8.8.8', 'x-real-ip': '8.8.8.8' } });
    expect(res.status).toBe(403);
    expect(json(res)).toEqual({ error: 'EDGE_ERR_AUTH_DENIED', reason: 'ip_denied' });
    expect(stack.mw.requests).toEqual([]);
    expect(stack.origin.requests).toEqual([]);
  });

  it('control: from a trusted proxy the forwarded client is believed and the chain is extended', async () => {
    const stack = await start({ proxy: { trustedProxies: ['127.0.0.1/32'] } });
    const res = await httpRequest(`${stack.edge.url}/play/ch1/v1/seg-1.ts?token=good`, { headers: { 'x-forwarded-for': '203.0.113.9' } });
    expect(res.status).toBe(200);
    expect(stack.mw.requests[0]!.headers['x-real-ip']).toBe('203.0.113.9');
    expect(stack.origin.requests[0]!.headers['x-forwarded-for']).toBe('203.0.113.9, 127.0.0.1');
    expect(stack.origin.requests[0]!.headers['x-real-ip']).toBe('203.0.113.9');
  });
});

describe('battery: forged, altered and replayed session markers', () => {
  const segment = (edgeUrl: string, channel: string, marker: string): Promise<HttpResult> => httpRequest(`${edgeUrl}/play/${channel}/v1/seg-1.ts?edge_session=${marker}`);

  /** An unknown marker is no session: a new one, decided by the middleware (which denies: no token). */
  async function expectTreatedAsNewSession(stack: Stack, res: HttpResult, forged: string): Promise<void> {
    expect(res.status).toBe(403);
    expect(json(res)).toEqual({ error: 'EDGE_ERR_AUTH_DENIED', reason: 'backend_403' });
    expect(stack.mw.requests).toHaveLength(1);
    const asked = stack.mw.requests[0]!;
    expect(asked.rawQuery).toBe(''); // the marker is ours: never passed on
    expect(asked.headers['x-session-id']).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(asked.headers['x-session-id']).not.toBe(forged);
    expect(stack.origin.requests).toEqual([]);
  }

  it('a well-formed (22 characters) but unknown marker → the middleware is asked for a new session → 403 EDGE_ERR_AUTH_DENIED', async () => {
    const stack = await start();
    stack.mw.setBehavior(goodTokenOnly);
    const forged = 'AAAAAAAAAAAAAAAAAAAAAA';
    await expectTreatedAsNewSession(stack, await segment(stack.edge.url, 'ch1', forged), forged);
  });

  it('a live marker with one character changed → a new session → 403; the live one is untouched', async () => {
    const stack = await start();
    stack.mw.setBehavior(goodTokenOnly);
    const live = await openSession(stack.edge.url);
    stack.mw.reset();
    stack.origin.reset();
    const altered = `${live.slice(0, 10)}${live[10] === 'A' ? 'B' : 'A'}${live.slice(11)}`;
    await expectTreatedAsNewSession(stack, await segment(stack.edge.url, 'ch1', altered), altered);
    expect((await segment(stack.edge.url, 'ch1', live)).status).toBe(200);
    expect(stack.mw.requests).toHaveLength(1);
  });

  it.each([
    ['truncated to 21 characters', (m: string) => m.slice(0, 21)],
    ['with a 23rd character', (m: string) => `${m}A`],
    ['with a character outside base64url', (m: string) => `${m.slice(0, 21)}.`],
  ])('a live marker %s → a new session → 403', async (_name, mangle) => {
    const stack = await start();
    stack.mw.setBehavior(goodTokenOnly);
    const live = await openSession(stack.edge.url);
    stack.mw.reset();
    stack.origin.reset();
    const bad = mangle(live);
    await expectTreatedAsNewSession(stack, await segment(stack.edge.url, 'ch1', encodeURIComponent(bad)), bad);
  });

  it("another channel's live marker → a new session on this channel → 403; it still works on its own channel", async () => {
    const stack = await start();
    stack.mw.setBehavior(goodTokenOnly);
    const live = await openSession(stack.edge.url, 'ch1');
    stack.mw.reset();
    stack.origin.reset();
    await expectTreatedAsNewSession(stack, await segment(stack.edge.url, 'ch2', live), live);
    expect((await segment(stack.edge.url, 'ch1', live)).status).toBe(200);
  });

  it('a forged marker next to a valid token: the marker is ignored, the token joins its live session (no new middleware call)', async () => {
    const stack = await start();
    stack.mw.setBehavior(goodTokenOnly);
    await openSession(stack.edge.url);
    const res = await httpRequest(`${stack.edge.url}/play/ch1/v1/index.m3u8?token=good&edge_session=AAAAAAAAAAAAAAAAAAAAAA`);
    expect(res.status).toBe(200);
    expect(stack.mw.requests).toHaveLength(1);
    expect(res.body.toString('utf8')).not.toContain('AAAAAAAAAAAAAAAAAAAAAA');
  });

  it('the replayed marker of a kicked session → 403 EDGE_ERR_SESSION_ENDED "kicked", without asking the middleware or the origin', async () => {
    const stack = await start();
    stack.mw.setBehavior(goodTokenOnly);
    const live = await openSession(stack.edge.url);
    expect((await httpRequest(`${stack.edge.adminUrl}/api/sessions/${live}`, { method: 'DELETE' })).status).toBe(200);
    stack.mw.reset();
    stack.origin.reset();
    for (let i = 0; i < 3; i++) {
      const res = await segment(stack.edge.url, 'ch1', live);
      expect(res.status).toBe(403);
      expect(json(res)).toEqual({ error: 'EDGE_ERR_SESSION_ENDED', reason: 'kicked' });
    }
    expect(stack.mw.requests).toEqual([]);
    expect(stack.origin.requests).toEqual([]);
  });

  it('the replayed marker of a session a re-check denied → 403 EDGE_ERR_SESSION_ENDED with the middleware\'s reason, no further middleware call', async () => {
    const stack = await start({ auth: { staleGrace: '30s' } });
    // Allowed for 1 s, then the re-check is denied.
    stack.mw.setBehavior({ kind: 'allow', headers: { 'X-AuthDuration': '1' } });
    const live = await openSession(stack.edge.url);
    stack.mw.setBehavior('deny');
    await new Promise((resolve) => setTimeout(resolve, 1100));
    // Served while the re-check runs (serve-while-revalidate), then ended by its deny.
    expect((await segment(stack.edge.url, 'ch1', live)).status).toBe(200);
    await waitFor(() => stack.mw.requests.length === 2, { message: 'the re-check' });
    const ended = await waitFor(async () => {
      const res = await segment(stack.edge.url, 'ch1', live);
      return res.status === 403 ? res : undefined;
    });
    expect(json(ended)).toEqual({ error: 'EDGE_ERR_SESSION_ENDED', reason: 'backend_403' });
    const calls = stack.mw.requests.length;
    expect((await segment(stack.edge.url, 'ch1', live)).status).toBe(403);
    expect(stack.mw.requests).toHaveLength(calls);
  });
});

describe('battery: admin token on the admin listener', () => {
  const TOKEN = 'battery-admin-token-0123456789';
  const api = (stack: Stack, headers: Record<string, string> = {}, path = '/api/sessions'): Promise<HttpResult> => httpRequest(`${stack.edge.adminUrl}${path}`, { headers });

  function expectUnauthorized(res: HttpResult): void {
    expect(res.status).toBe(401);
    expect(json(res)).toEqual({ error: 'EDGE_ERR_UNAUTHORIZED' });
    expect(res.headers['www-authenticate']).toBe('Bearer realm="astra-auth-edge"');
  }

  it.each([
    ['no Authorization header', {}],
    ['a wrong token', { authorization: 'Bearer wrong-token-wrong-token' }],
    ['the token with one character changed', { authorization: `Bearer ${TOKEN.slice(0, -1)}X` }],
    ['a prefix of the token', { authorization: `Bearer ${TOKEN.slice(0, 16)}` }],
    ['the token with a suffix', { authorization: `Bearer ${TOKEN}x` }],
    ['the token as Basic credentials', { authorization: `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}` }],
    ['the token without a scheme', { authorization: TOKEN }],
    ['the token split by a space', { authorization: `Bearer ${TOKEN.slice(0, 10)} ${TOKEN.slice(10)}` }],
    ['a forged cookie', { cookie: 'edge_admin=forged-cookie-value-0123' }],
    ['the token in a cookie of another name', { cookie: `admin=${TOKEN}; token=${TOKEN}` }],
  ])('%s → 401 EDGE_ERR_UNAUTHORIZED', async (_name, headers) => {
    const stack = await start({ admin: { token: TOKEN } });
    expectUnauthorized(await api(stack, headers));
  });

  it('the token in the query of /api/* is not accepted (it would end up in logs and histories) → 401', async () => {
    const stack = await start({ admin: { token: TOKEN } });
    expectUnauthorized(await api(stack, {}, `/api/sessions?token=${TOKEN}`));
    expectUnauthorized(await api(stack, {}, `/api/stats?access_token=${TOKEN}`));
  });

  it.each([
    ['Bearer', `Bearer ${TOKEN}`],
    ['a lower-case scheme (schemes are case-insensitive, RFC 9110 §11.1)', `bearer ${TOKEN}`],
    ['extra spaces between scheme and token and after it', `Bearer    ${TOKEN}   `],
  ])('%s → 200', async (_name, authorization) => {
    const stack = await start({ admin: { token: TOKEN } });
    const res = await api(stack, { authorization });
    expect(res.status).toBe(200);
    expect(json(res)).toEqual({ sessions: [], total: 0, nextCursor: null });
  });

  it('the right token in the edge_admin cookie → 200; a kick without the token → 401 and the session lives on', async () => {
    const stack = await start({ admin: { token: TOKEN } });
    const marker = await openSession(stack.edge.url);
    expect((await api(stack, { cookie: `other=1; edge_admin=${encodeURIComponent(TOKEN)}` })).status).toBe(200);
    const kick = await httpRequest(`${stack.edge.adminUrl}/api/sessions/${marker}`, { method: 'DELETE', headers: { authorization: 'Bearer nope-nope-nope-nope' } });
    expectUnauthorized(kick);
    expect((await httpRequest(`${stack.edge.url}/play/ch1/v1/seg-1.ts?edge_session=${marker}`)).status).toBe(200);
  });

  it('/metrics, /healthz and /readyz stay open without the token; the status page asks for it', async () => {
    const stack = await start({ admin: { token: TOKEN } });
    const metrics = await api(stack, {}, '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.body.toString('utf8')).toContain('edge_requests_total');
    expect((await api(stack, {}, '/healthz')).status).toBe(200);
    expect((await api(stack, {}, '/readyz')).status).toBe(200);
    expect((await api(stack, {}, '/')).status).toBe(401);
    expect((await api(stack, {}, '/?token=wrong')).status).toBe(401);
    const login = await api(stack, {}, `/?token=${TOKEN}`);
    expect(login.status).toBe(303);
    expect(login.headers['set-cookie']?.[0]).toMatch(/^edge_admin=.*; HttpOnly; SameSite=Strict; Path=\/$/);
  });
});
