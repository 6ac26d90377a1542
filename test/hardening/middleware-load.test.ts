// Hardening issue, items 4 and 5: the middleware call path under load, against real servers.
// - The edge's own queue is not a middleware outage: a call that never got a slot is shed
//   (503 + Retry-After), never turned into the default action's allow.
// - backend.concurrency bounds what the middleware sees: a slot is held until the middleware's
//   exchange is over, not until the edge stops waiting for it.
import { afterEach, describe, expect, it } from 'vitest';
import { httpRequest, type HttpResult } from '../helpers/client.js';
import { startTestMiddleware, type TestMiddleware } from '../helpers/middleware.js';
import { backToBaseline, snapshot } from '../helpers/resources.js';
import { useStack } from '../helpers/stack.js';
import { sleep, waitFor } from '../helpers/wait.js';

const start = useStack({ origin: { segmentBytes: 2048 } });
const extras: TestMiddleware[] = [];
afterEach(async () => {
  for (const m of extras.splice(0)) await m.close();
});
async function extra(started: Promise<TestMiddleware>): Promise<TestMiddleware> {
  const mw = await started;
  extras.push(mw);
  return mw;
}

/** `sessions` new viewers (distinct tokens), `concurrency` at a time, each one request. */
async function newSessions(edgeUrl: string, sessions: number, concurrency: number): Promise<HttpResult[]> {
  const results: HttpResult[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < sessions) {
        const i = next++;
        results.push(await httpRequest(`${edgeUrl}/play/ch${i % 7}/index.m3u8?token=viewer${i}`, { timeoutMs: 10_000 }));
      }
    }),
  );
  return results;
}

const statuses = (results: readonly HttpResult[]): Record<number, number> => {
  const out: Record<number, number> = {};
  for (const r of results) out[r.status] = (out[r.status] ?? 0) + 1;
  return out;
};

describe('middleware under load', () => {
  it('load alone never turns a deny into an allow: calls that got no slot in time are shed with 503 + Retry-After', async () => {
    // The scenario scaled down: a healthy middleware that denies in 300 ms, far more new sessions than it can take.
    const { edge, mw, origin } = await start({ backend: { concurrency: 4, timeout: '1s' } }, { middleware: { behavior: { kind: 'delay', ms: 300, then: { kind: 'deny', status: 403 } } } });
    const results = await newSessions(edge.url, 200, 50);
    const count = statuses(results);

    expect(count[200]).toBeUndefined();
    expect(Object.keys(count).sort()).toEqual(['403', '503']);
    expect(origin.requests).toHaveLength(0);
    for (const r of results) {
      if (r.status === 403) expect(JSON.parse(r.body.toString())).toEqual({ error: 'EDGE_ERR_AUTH_DENIED', reason: 'backend_403' });
      else {
        expect(JSON.parse(r.body.toString())).toEqual({ error: 'EDGE_ERR_OVERLOADED' });
        expect(r.headers['retry-after']).toBe('1');
        expect(r.headers['cache-control']).toBe('no-store');
      }
    }
    // Every 403 is the middleware's own answer; every 503 a call it never saw.
    expect(mw.requests).toHaveLength(count[403]!);
    expect(mw.maxInFlight()).toBeLessThanOrEqual(4);
    expect(await edge.metric('edge_auth_shed_total', { check: 'new' })).toBe(count[503]);
    expect(await edge.metric('edge_auth_backend_shed_total', { backend: 'http' })).toBe(count[503]);
    expect(await edge.metric('edge_auth_backend_requests_total', { outcome: 'deny' })).toBe(count[403]);
    expect(await edge.metric('edge_auth_backend_requests_total', { outcome: 'timeout' })).toBe(0);
    expect(await edge.metric('edge_auth_failure_mode_allowed_total')).toBe(0);
    expect(await edge.metric('edge_auth_decisions_total', { source: 'default' })).toBe(0);
    // A shed session leaves no decision behind: only the denied ones are in the store.
    expect(edge.app.sessions.store.size).toBe(count[403]);
    // Logged once for the episode, and not as an outage.
    expect(edge.logs.filter((l) => String(l['msg']).startsWith('middleware queue full'))).toHaveLength(1);
    expect(edge.logs.some((l) => String(l['msg']).startsWith('middleware unavailable'))).toBe(false);
    // A shed viewer that comes back is asked for again.
    mw.setBehavior('deny');
    const again = await httpRequest(`${edge.url}/play/ch1/index.m3u8?token=viewer${results.findIndex((r) => r.status === 503)}`);
    expect(again.status).toBe(403);
  });

  it('a slow middleware never sees more than backend.concurrency calls: a timed-out call keeps its slot until the middleware answers', async () => {
    // Connection: close, so the middleware's connections are gone once its answers are (the socket check below).
    const slowDeny = { kind: 'delay', ms: 3000, then: { kind: 'deny', status: 403, headers: { connection: 'close' } } } as const;
    const { edge, mw } = await start({ backend: { concurrency: 4, timeout: '500ms' } }, { middleware: { behavior: slowDeny } });
    const baseline = await snapshot();
    const t0 = Date.now();
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => httpRequest(`${edge.url}/play/ch${i % 7}/index.m3u8?token=viewer${i}`, { timeoutMs: 10_000 })));
    const count = statuses(results);

    // The four that were asked and got no answer in time: the default action (allow). The others were never asked: 503.
    expect(count).toEqual({ 200: 4, 503: 36 });
    expect(Date.now() - t0).toBeLessThan(2500); // nobody waited for the 3 s middleware
    expect(await edge.metric('edge_auth_backend_requests_total', { outcome: 'timeout' })).toBe(4);
    expect(await edge.metric('edge_auth_failure_mode_allowed_total')).toBe(4);
    expect(await edge.metric('edge_auth_shed_total', { check: 'new' })).toBe(36);
    // The timed-out calls still hold their slots: nothing else reaches the middleware meanwhile.
    expect(await edge.metric('edge_auth_backend_in_flight', { backend: 'http' })).toBe(4);
    const late = await httpRequest(`${edge.url}/play/ch1/index.m3u8?token=latecomer`, { timeoutMs: 10_000 });
    expect(late.status).toBe(503);
    expect(mw.requests).toHaveLength(4);

    // The middleware answers after 3 s: the answers are counted late and dropped, the slots come back.
    await waitFor(async () => (await edge.metric('edge_auth_backend_in_flight', { backend: 'http' })) === 0, { timeoutMs: 5000 });
    expect(await edge.metric('edge_auth_backend_late_total', { end: 'answered' })).toBe(4);
    expect(await edge.metric('edge_auth_backend_late_total', { end: 'abandoned' })).toBe(0);
    expect(mw.maxInFlight()).toBe(4);
    expect(mw.inFlight()).toBe(0);
    expect(await edge.metric('edge_auth_backend_queued', { backend: 'http' })).toBe(0);
    await backToBaseline(baseline);
  });

  it('a call that never ends holds its slot up to the hard limit, then its connection is closed and the slot freed', async () => {
    // backend.timeout 200 ms: abandoned at 10 × 200 ms.
    const { edge, mw } = await start({ backend: { concurrency: 2, timeout: '200ms' } }, { middleware: { behavior: 'hang' } });
    const first = await Promise.all([0, 1, 2].map((i) => httpRequest(`${edge.url}/play/ch1/index.m3u8?token=hang${i}`)));
    expect(first.map((r) => r.status).sort()).toEqual([200, 200, 503]);
    expect(mw.inFlight()).toBe(2);
    await sleep(1000);
    expect(await edge.metric('edge_auth_backend_in_flight', { backend: 'http' })).toBe(2);
    await waitFor(async () => (await edge.metric('edge_auth_backend_late_total', { end: 'abandoned' })) === 2, { timeoutMs: 3000 });
    expect(await edge.metric('edge_auth_backend_in_flight', { backend: 'http' })).toBe(0);
    // The middleware saw both connections close (a hung handler's half-open socket is its own business).
    await waitFor(() => mw.inFlight() === 0, { timeoutMs: 1000 });
    expect(mw.maxInFlight()).toBe(2);
    expect(mw.requests).toHaveLength(2);
  });

  it('shutdown does not wait for late calls: it closes their connections at once', async () => {
    const { edge, mw } = await start({ backend: { concurrency: 4, timeout: '300ms' } }, { middleware: { behavior: { kind: 'delay', ms: 5000, then: 'allow' } } });
    const results = await Promise.all([0, 1, 2, 3].map((i) => httpRequest(`${edge.url}/play/ch1/index.m3u8?token=s${i}`)));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(await edge.metric('edge_auth_backend_in_flight', { backend: 'http' })).toBe(4);
    const t0 = Date.now();
    await edge.close(0);
    // The middleware pool's close() waits for its requests: without the cancel this took the middleware's 5 s.
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(await edge.metric('edge_auth_backend_in_flight', { backend: 'http' })).toBe(0);
    expect(await edge.metric('edge_auth_backend_late_total')).toBe(0); // cancelled, not late
    expect(mw.requests).toHaveLength(4);
  });

  it('a shed re-check keeps a granted session playing on its decision and asks again at a later request', async () => {
    const { edge, mw } = await start({ backend: { concurrency: 1, timeout: '500ms' }, auth: { allowTtl: '1s', staleGrace: '30s' } });
    const master = await httpRequest(`${edge.url}/play/ch1/v1/index.m3u8?token=granted`);
    expect(master.status).toBe(200);
    const sid = /edge_session=([A-Za-z0-9_-]{22})/.exec(master.body.toString())![1]!;
    const session = edge.app.sessions.store.get(sid)!;
    const granted = session.decision!;

    // Another viewer's call takes the only slot for 2.5 s (it times out for its viewer at 500 ms, but keeps the slot).
    mw.setBehavior({ kind: 'delay', ms: 2500, then: 'allow' });
    const other = await httpRequest(`${edge.url}/play/ch2/index.m3u8?token=other`);
    expect(other.status).toBe(200); // asked, no answer in time: the default action
    await sleep(1100 - (Date.now() - granted.decidedAt)); // the allow expires
    mw.setBehavior('allow');

    // The expired allow is served while the re-check waits for a slot, and is shed.
    const seg = await httpRequest(`${edge.url}/play/ch1/v1/seg-1.ts?edge_session=${sid}`);
    expect(seg.status).toBe(200);
    await waitFor(async () => (await edge.metric('edge_auth_shed_total', { check: 'recheck' })) === 1, { timeoutMs: 2000 });
    expect(session.endReason).toBeUndefined();
    expect(session.pending).toBeUndefined();
    expect(session.decision).toBe(granted); // not the default action's decision
    expect(edge.app.sessions.store.get(sid)).toBe(session);
    expect(await edge.metric('edge_auth_failure_mode_allowed_total')).toBe(1); // the other viewer's only
    expect(mw.requests).toHaveLength(2);

    // Still playing; once the slot is free, a later request's re-check reaches the middleware.
    await waitFor(async () => (await edge.metric('edge_auth_backend_in_flight', { backend: 'http' })) === 0, { timeoutMs: 3000 });
    expect((await httpRequest(`${edge.url}/play/ch1/v1/seg-2.ts?edge_session=${sid}`)).status).toBe(200);
    await waitFor(() => session.decision !== granted, { timeoutMs: 2000 });
    expect(session.decision).toMatchObject({ allow: true, source: 'backend' });
    expect(mw.requests.map((r) => r.rawQuery)).toEqual(['token=granted', 'token=other', 'token=granted']);
  });

  it('several middlewares: shed only when none could be asked; a real answer or a real timeout of any wins', async () => {
    // x takes two calls at once, y one; both answer too late for a 300 ms timeout.
    const x = await extra(startTestMiddleware({ behavior: { kind: 'delay', ms: 1500, then: 'allow' } }));
    const y = await extra(startTestMiddleware({ behavior: { kind: 'delay', ms: 1500, then: 'allow' } }));
    const { edge } = await start({ backends: [{ name: 'x', url: x.url, concurrency: 2, timeout: '300ms' }, { name: 'y', url: y.url, concurrency: 1, timeout: '300ms' }] });
    const results = await Promise.all([0, 1, 2].map((i) => httpRequest(`${edge.url}/play/ch1/index.m3u8?token=p${i}`)));
    // Both asked, or x asked and y shed: unavailable, so the default action (allow). Neither could be asked: 503.
    expect(statuses(results)).toEqual({ 200: 2, 503: 1 });
    expect(await edge.metric('edge_auth_backend_shed_total', { backend: 'x' })).toBe(1);
    expect(await edge.metric('edge_auth_backend_shed_total', { backend: 'y' })).toBe(2);
    expect(await edge.metric('edge_auth_shed_total', { check: 'new' })).toBe(1);
    expect(await edge.metric('edge_auth_failure_mode_allowed_total')).toBe(2);

    // A deny from one that could be asked wins over the other being shed.
    const denies = await extra(startTestMiddleware({ behavior: { kind: 'delay', ms: 100, then: 'deny' } }));
    const slow = await extra(startTestMiddleware({ behavior: { kind: 'delay', ms: 1500, then: 'allow' } }));
    const { edge: edge2 } = await start({ backends: [{ name: 'denies', url: denies.url, concurrency: 1, timeout: '1s' }, { name: 'slow', url: slow.url, concurrency: 1, timeout: '300ms' }] });
    const both = await Promise.all([0, 1].map((i) => httpRequest(`${edge2.url}/play/ch1/index.m3u8?token=d${i}`)));
    expect(both.map((r) => JSON.parse(r.body.toString()))).toEqual([
      { error: 'EDGE_ERR_AUTH_DENIED', reason: 'backend_403' },
      { error: 'EDGE_ERR_AUTH_DENIED', reason: 'backend_403' },
    ]);
    expect(await edge2.metric('edge_auth_backend_shed_total', { backend: 'slow' })).toBe(1);
    expect(await edge2.metric('edge_auth_shed_total')).toBe(0);
    expect(slow.requests).toHaveLength(1);
  });
});
