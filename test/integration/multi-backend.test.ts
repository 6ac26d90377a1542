// Middleware types through the whole edge: Ministra's 5-second tokens, several backends asked in
// parallel, and the concurrency cap under a flood of new sessions.
import { joinKeyOf } from '../../src/session/session.js';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { httpRequest } from '../helpers/client.js';
import { startTestMiddleware, type TestMiddleware } from '../helpers/middleware.js';
import { playHls } from '../helpers/player.js';
import { useStack } from '../helpers/stack.js';
import { sleep } from '../helpers/wait.js';
import { refusedUrl } from '../helpers/backends.js';

const start = useStack({ origin: { segmentBytes: 2048 } });
const extras: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const e of extras.splice(0)) await e.close();
});

async function middleware(behavior: Parameters<typeof startTestMiddleware>[0]): Promise<TestMiddleware> {
  const mw = await startTestMiddleware(behavior);
  extras.push(mw);
  return mw;
}

describe('stalker (Ministra) through the edge', () => {
  it('a session keeps playing long after the 5 s token died, with exactly one portal call', async () => {
    const portal = await middleware({ behavior: 'ministra', ministraTtlMs: 800 });
    const { edge } = await start({ backend: { type: 'stalker', url: `${portal.url}/stalker_portal/` } });
    const token = portal.issueMinistraToken({ userId: 42 });
    const first = await playHls(`${edge.url}/play/ch1/v1/index.m3u8?token=${token}`, 6);
    expect(first.every((s) => s.status === 200)).toBe(true);
    expect(portal.requests.map((r) => r.rawUrl)).toEqual([`/stalker_portal/server/api/chk_flussonic_tmp_link.php?token=${token}`]);
    await sleep(1000); // the portal has forgotten the token
    expect((await httpRequest(`${portal.url}/stalker_portal/server/api/chk_flussonic_tmp_link.php?token=${token}`)).status).toBe(403);
    portal.reset();
    const later = await playHls(first[1]!.url.replace(/seg-\d+\.ts/, 'index.m3u8'), 10);
    expect(later.every((s) => s.status === 200)).toBe(true);
    expect(portal.requests).toHaveLength(0);
    // The portal's X-AuthDuration (36000 s) holds the decision; X-UserId names the session.
    const [session] = [...edge.app.sessions.table.values()];
    expect(session!.expiresAt - session!.decision!.decidedAt).toBe(36_000_000);
    expect(session!.decision!.userId).toBe('42');
  });
});

describe('several backends in parallel', () => {
  it('one slow allow + one fast deny → allowed (the first allow wins, the deny waits for it)', async () => {
    const slow = await middleware({ behavior: { kind: 'delay', ms: 300, then: 'allow' } });
    const fast = await middleware({ behavior: { kind: 'deny', status: 403 } });
    const { edge } = await start({ backends: [{ name: 'slow', url: slow.url }, { name: 'fast', url: fast.url }] });
    expect((await httpRequest(`${edge.url}/play/ch1/v1/seg-1.ts?token=t`)).status).toBe(200);
    expect(await edge.metric('edge_auth_backend_requests_total', { backend: 'slow', outcome: 'allow' })).toBe(1);
    expect(await edge.metric('edge_auth_backend_requests_total', { backend: 'fast', outcome: 'deny' })).toBe(1);
  });

  it('a fast allow cancels the slow call', async () => {
    const slow = await middleware({ behavior: { kind: 'delay', ms: 3000, then: 'deny' } });
    const fast = await middleware({ behavior: 'allow' });
    const { edge } = await start({ backends: [{ name: 'slow', url: slow.url, timeout: '5s' }, { name: 'fast', url: fast.url }] });
    const t0 = Date.now();
    expect((await httpRequest(`${edge.url}/play/ch1/v1/seg-1.ts?token=t`)).status).toBe(200);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(await edge.metric('edge_auth_backend_requests_total', { backend: 'slow' })).toBe(0);
  });

  it('all deny → the first deny; one down + one allow → allowed; all down → the default action', async () => {
    const d1 = await middleware({ behavior: { kind: 'deny', status: 401 } });
    const d2 = await middleware({ behavior: { kind: 'delay', ms: 100, then: { kind: 'deny', status: 404 } } });
    const denied = await start({ backends: [{ url: d1.url }, { url: d2.url }] });
    const res = await httpRequest(`${denied.edge.url}/play/ch1/v1/seg-1.ts?token=t`);
    expect(JSON.parse(res.body.toString())).toEqual({ error: 'EDGE_ERR_AUTH_DENIED', reason: 'backend_401' });

    const up = await middleware({ behavior: 'allow' });
    const oneDown = await start({ backends: [{ name: 'down', url: await refusedUrl() }, { name: 'up', url: up.url }] });
    expect((await httpRequest(`${oneDown.edge.url}/play/ch1/v1/seg-1.ts?token=t`)).status).toBe(200);
    expect(await oneDown.edge.metric('edge_auth_backend_requests_total', { backend: 'down', outcome: 'refused' })).toBe(1);

    const allDown = await start({ backends: [{ url: await refusedUrl() }, { url: await refusedUrl(), type: 'flussonic' }], auth: { defaultAction: 'deny' } });
    const r = await httpRequest(`${allDown.edge.url}/play/ch1/v1/seg-1.ts?token=t`);
    expect(JSON.parse(r.body.toString())).toEqual({ error: 'EDGE_ERR_AUTH_UNAVAILABLE', reason: 'middleware_unavailable' });
  });
});

describe('several backends: which one decided is kept on the session', () => {
  it('the allow that won names its middleware and status; a deny names the first deny', async () => {
    const no = await middleware({ behavior: { kind: 'deny', status: 401 } });
    const yes = await middleware({ behavior: { kind: 'delay', ms: 50, then: 'allow' } });
    const { edge } = await start({ backends: [{ name: 'no', url: no.url }, { name: 'yes', url: yes.url }] });
    const pl = await httpRequest(`${edge.url}/play/ch1/v1/index.m3u8?token=t`);
    const sid = /edge_session=([A-Za-z0-9_-]{22})/.exec(pl.body.toString())![1]!;
    expect(edge.app.sessions.store.get(sid)!.decision).toMatchObject({ allow: true, source: 'backend', backend: 'yes', status: 200 });
    const denied = await start({ backends: [{ name: 'no', url: no.url }, { name: 'down', url: await refusedUrl() }] });
    expect((await httpRequest(`${denied.edge.url}/play/ch1/v1/index.m3u8?token=t`, { headers: { 'user-agent': 'UA' } })).status).toBe(403);
    const session = denied.edge.app.sessions.store.getByJoinKey(joinKeyOf({ channel: 'ch1', kind: 'hls', clientIp: '127.0.0.1', userAgent: 'UA', host: '', path: '', query: 'token=t', token: 't', referer: '' }));
    expect(session!.decision).toMatchObject({ allow: false, source: 'backend', backend: 'no', status: 401, reason: 'backend_401' });
  });
});

describe('concurrency cap', () => {
  it('500 new sessions at once: never more than backend.concurrency calls at the middleware, all answered', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    let calls = 0;
    const server: Server = createServer((_req, res) => {
      calls++;
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      setTimeout(() => {
        inFlight--;
        res.end();
      }, 10);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    extras.push({ close: () => new Promise((r) => server.close(() => r())) });
    const { edge } = await start({ backend: { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/auth`, concurrency: 8, connections: 64, timeout: '10s' } });
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => httpRequest(`${edge.url}/play/ch${i % 7}/v1/seg-1.ts?token=viewer${i}`, { timeoutMs: 20_000 })));
    expect(results.filter((r) => r.status !== 200)).toHaveLength(0);
    expect(calls).toBe(500);
    expect(maxInFlight).toBeLessThanOrEqual(8);
    expect(maxInFlight).toBeGreaterThan(1);
  });

  it('a call sent and not answered in time is unavailable (default action); calls that got no slot in time are shed (503)', async () => {
    const slow = await middleware({ behavior: { kind: 'delay', ms: 600, then: 'allow' } });
    const { edge } = await start({ backend: { url: slow.url, concurrency: 1, timeout: '400ms' }, auth: { defaultAction: 'deny' } });
    const results = await Promise.all(Array.from({ length: 5 }, (_, i) => httpRequest(`${edge.url}/play/ch1/v1/seg-1.ts?token=q${i}`)));
    expect(results.map((r) => r.status).sort()).toEqual([403, 503, 503, 503, 503]);
    expect(await edge.metric('edge_auth_backend_requests_total', { outcome: 'timeout' })).toBe(1);
    expect(await edge.metric('edge_auth_backend_shed_total')).toBe(4);
    // Calls whose time ran out in the queue never reached the middleware (and the timed-out one kept the slot).
    expect(slow.requests).toHaveLength(1);
  });
});
