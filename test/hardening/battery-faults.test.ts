// The hardening battery, faults behind the edge: a middleware that is slow, hangs after its
// headers, sends 100 MB, resets mid-answer, flaps or is down at start-up; an origin that is down,
// slow to answer, resets mid-body or lies about its Content-Length. For each: the exact answer
// the player gets, what the middleware and the origin saw, and that nothing is left hanging.
import { afterEach, describe, expect, it } from 'vitest';
import { HttpClientError, httpRequest, type HttpResult } from '../helpers/client.js';
import { startTestMiddleware, type MiddlewareRequestRecord, type TestMiddleware } from '../helpers/middleware.js';
import { unusedPort } from '../helpers/ports.js';
import { collectGarbage, snapshot } from '../helpers/resources.js';
import { useStack, type Stack, type StackOptions } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

const startStack = useStack({ origin: { segmentBytes: 4096 } });
// A small decision store: the default (1,000,000 entries) costs ~0.5 s of lru-cache allocation per edge.
const start = (file: Record<string, unknown> = {}, options: StackOptions = {}): Promise<Stack> =>
  startStack({ ...file, auth: { maxEntries: 10_000, ...(file['auth'] as object | undefined) } }, options);

/** Middlewares a test starts itself (on a fixed port); closed after each test. */
const ownMiddlewares: TestMiddleware[] = [];
afterEach(async () => {
  for (const mw of ownMiddlewares.splice(0)) await mw.close();
});

/** backend.timeout in these tests: short, so "beyond the timeout" costs little. */
const BACKEND_TIMEOUT = '300ms';
const MiB = 1024 * 1024;

function json(res: HttpResult): unknown {
  return JSON.parse(res.body.toString('utf8'));
}

/** The middleware allows tokens starting with `good` only. */
const goodTokensOnly = (rec: MiddlewareRequestRecord): 'allow' | 'deny' => ((new URLSearchParams(rec.rawQuery).get('token') ?? '').startsWith('good') ? 'allow' : 'deny');

const segmentUrl = (stack: Stack, token: string, n = 1): string => `${stack.edge.url}/play/ch1/v1/seg-${n}.ts?token=${token}`;

describe('battery: middleware faults', () => {
  it.each([
    ['allow', 200, undefined],
    ['deny', 403, { error: 'EDGE_ERR_AUTH_UNAVAILABLE', reason: 'middleware_unavailable' }],
    ['keep-granted', 403, { error: 'EDGE_ERR_AUTH_UNAVAILABLE', reason: 'middleware_unavailable' }],
  ])('slower than backend.timeout, default action %s → %i for a new session', async (defaultAction, status, body) => {
    const stack = await start({ backend: { timeout: BACKEND_TIMEOUT }, auth: { defaultAction } }, { middleware: { behavior: { kind: 'delay', ms: 2000, then: 'allow' } } });
    const res = await httpRequest(segmentUrl(stack, 'good'));
    expect(res.status).toBe(status);
    if (body !== undefined) expect(json(res)).toEqual(body);
    else expect(res.body.equals(stack.origin.expectedBytes('/play/ch1/v1/seg-1.ts'))).toBe(true);
    expect(stack.mw.requests).toHaveLength(1);
    expect(stack.origin.requests).toHaveLength(status === 200 ? 1 : 0);
    expect(await stack.edge.metric('edge_auth_backend_requests_total', { outcome: 'timeout' })).toBe(1);
    expect(await stack.edge.metric('edge_auth_decisions_total', { source: 'default' })).toBe(1);
    expect(await stack.edge.metric('edge_auth_failure_mode_allowed_total')).toBe(status === 200 ? 1 : 0);
  });

  /** The next new session's call gets a clean answer on another connection: the broken one was not reused. */
  async function expectNextCallClean(stack: Stack): Promise<void> {
    stack.mw.setBehavior('allow');
    const before = stack.mw.requests.length;
    expect((await httpRequest(segmentUrl(stack, 'next', 2))).status).toBe(200);
    expect(stack.mw.requests).toHaveLength(before + 1);
    expect(stack.mw.requests[before]!.remotePort).not.toBe(stack.mw.requests[before - 1]!.remotePort);
  }

  it.each([[200], [403]])('a status line %i then silence is no answer: at backend.timeout the middleware is unavailable (the default action, deny → 403); that connection is not reused', async (mwStatus) => {
    const stack = await start({ backend: { timeout: BACKEND_TIMEOUT }, auth: { defaultAction: 'deny' } }, { middleware: { behavior: { kind: 'hangAfterHeaders', status: mwStatus } } });
    const res = await httpRequest(segmentUrl(stack, 'good'));
    expect(res.status).toBe(403);
    expect(json(res)).toEqual({ error: 'EDGE_ERR_AUTH_UNAVAILABLE', reason: 'middleware_unavailable' });
    expect(stack.mw.requests).toHaveLength(1);
    expect(await stack.edge.metric('edge_auth_backend_requests_total', { outcome: 'timeout' })).toBe(1);
    await expectNextCallClean(stack);
  });

  it.each([
    ['with Content-Length', false],
    ['chunked', true],
  ])('a 100 MB answer (%s): decided by its status, the read is capped (backend.maxBodyBytes), memory stays bounded, the connection is dropped', async (_name, chunked) => {
    const stack = await start({ backend: { timeout: '2s' } }, { middleware: { behavior: { kind: 'bigBody', bytes: 100 * MiB, chunked } } });
    collectGarbage();
    const before = await snapshot();
    const res = await httpRequest(segmentUrl(stack, 'good'));
    expect(res.status).toBe(200);
    expect(await stack.edge.metric('edge_auth_backend_requests_total', { outcome: 'allow' })).toBe(1);
    collectGarbage();
    const after = await snapshot();
    expect(after.heapUsedBytes - before.heapUsedBytes, 'heap growth after a 100 MB middleware answer').toBeLessThan(16 * MiB);
    await expectNextCallClean(stack);
  });

  it.each([
    ['after the headers and half the body', { kind: 'resetMidBody', status: 200 } as const, 200],
    ['before any answer (connection reset)', 'close' as const, 403],
    ['with a malformed response', 'garbage' as const, 403],
    ['with a 5xx', '5xx' as const, 403],
  ])('reset or broken %s → a defined answer (default action deny where there is no status)', async (_name, behavior, status) => {
    const stack = await start({ backend: { timeout: BACKEND_TIMEOUT }, auth: { defaultAction: 'deny' } }, { middleware: { behavior } });
    const res = await httpRequest(segmentUrl(stack, 'good'));
    expect(res.status).toBe(status);
    if (status === 403) expect(json(res)).toEqual({ error: 'EDGE_ERR_AUTH_UNAVAILABLE', reason: 'middleware_unavailable' });
    expect(stack.mw.requests).toHaveLength(1);
    expect(stack.origin.requests).toHaveLength(status === 200 ? 1 : 0);
  });

  it('flapping (up, down, up, down…): every new session gets a defined answer: the middleware\'s while it is up, the default action while it is down', async () => {
    const port = await unusedPort();
    const stack = await start({ backend: { url: `http://127.0.0.1:${port}/auth`, timeout: BACKEND_TIMEOUT }, auth: { defaultAction: 'deny' } });
    let asked = 0;
    let n = 0;
    for (let cycle = 0; cycle < 3; cycle++) {
      const mw = await startTestMiddleware({ port, behavior: goodTokensOnly });
      ownMiddlewares.push(mw);
      for (const token of ['good', 'bad', 'good']) {
        const res = await httpRequest(segmentUrl(stack, `${token}-${n++}`));
        if (token === 'good') expect(res.status, `up, ${token}`).toBe(200);
        else expect(json(res), `up, ${token}`).toEqual({ error: 'EDGE_ERR_AUTH_DENIED', reason: 'backend_403' });
      }
      asked += mw.requests.length;
      await mw.close();
      for (const token of ['good', 'bad']) {
        const res = await httpRequest(segmentUrl(stack, `${token}-${n++}`));
        expect(res.status, `down, ${token}`).toBe(403);
        expect(json(res), `down, ${token}`).toEqual({ error: 'EDGE_ERR_AUTH_UNAVAILABLE', reason: 'middleware_unavailable' });
      }
    }
    expect(asked).toBe(9);
    expect(await stack.edge.metric('edge_auth_backend_requests_total', { outcome: 'refused' })).toBe(6);
    // Six allowed requests for one segment: one origin fetch (the edge cache), the rest hits.
    expect(stack.origin.requests).toHaveLength(1);
    expect(await stack.edge.metric('edge_cache_requests_total', { kind: 'segment' })).toBe(6);
  });

  it('down at start-up: the edge starts and warns, the default action applies; once it comes up, new sessions get real decisions', async () => {
    const port = await unusedPort();
    const stack = await start({ backend: { url: `http://127.0.0.1:${port}/auth`, timeout: BACKEND_TIMEOUT } });
    await waitFor(() => stack.edge.logs.find((l) => l['level'] === 40 && String(l['msg']).startsWith('middleware URL unreachable (ECONNREFUSED)')), { message: 'start-up warning' });
    const meanwhile = await httpRequest(segmentUrl(stack, 'bad-0'));
    expect(meanwhile.status).toBe(200); // --default-action allow (the default, as Astra)
    expect(await stack.edge.metric('edge_auth_decisions_total', { result: 'allow', source: 'default' })).toBe(1);
    expect(await stack.edge.metric('edge_auth_failure_mode_allowed_total')).toBe(1);

    const mw = await startTestMiddleware({ port, behavior: goodTokensOnly });
    ownMiddlewares.push(mw);
    const denied = await httpRequest(segmentUrl(stack, 'bad-1'));
    expect(denied.status).toBe(403);
    expect(json(denied)).toEqual({ error: 'EDGE_ERR_AUTH_DENIED', reason: 'backend_403' });
    expect((await httpRequest(segmentUrl(stack, 'good-1'))).status).toBe(200);
    expect(mw.requests.map((r) => new URLSearchParams(r.rawQuery).get('token'))).toEqual(['bad-1', 'good-1']);
    expect(await stack.edge.metric('edge_auth_decisions_total', { source: 'backend' })).toBe(2);
  });
});

describe('battery: origin faults', () => {
  it('origin down → 502 EDGE_ERR_UPSTREAM_REFUSED (after the middleware allowed)', async () => {
    const port = await unusedPort();
    const stack = await start({ upstream: { url: `http://127.0.0.1:${port}` } });
    const res = await httpRequest(segmentUrl(stack, 'good'));
    expect(res.status).toBe(502);
    expect(json(res)).toEqual({ error: 'EDGE_ERR_UPSTREAM_REFUSED' });
    expect(stack.mw.requests).toHaveLength(1);
    expect(await stack.edge.metric('edge_upstream_requests_total', { outcome: 'refused' })).toBe(1);
  });

  it('response headers later than upstream.headersTimeout → 504 EDGE_ERR_UPSTREAM_TIMEOUT, and the origin connection is closed', async () => {
    const stack = await start({ upstream: { headersTimeout: '300ms' } });
    stack.origin.setFault('/play/ch1/v1/seg-1.ts', { delayHeadersMs: 3000 });
    const res = await httpRequest(segmentUrl(stack, 'good'));
    expect(res.status).toBe(504);
    expect(json(res)).toEqual({ error: 'EDGE_ERR_UPSTREAM_TIMEOUT' });
    expect(stack.origin.requests).toHaveLength(1);
    await waitFor(() => stack.origin.requests[0]!.connectionClosedAt !== null, { message: 'origin connection closed' });
    expect(await stack.edge.metric('edge_upstream_requests_total', { outcome: 'timeout' })).toBe(1);
  });

  /** GETs `url` and expects the connection to be cut after the headers: never a clean short body. */
  async function expectCutAfterHeaders(url: string, fullLength: number): Promise<HttpClientError> {
    const err = await httpRequest(url).then(
      (res) => new Error(`expected a cut connection, got a complete ${res.status} with ${res.body.length} bytes`),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(HttpClientError);
    const cut = err as HttpClientError;
    expect(cut.status).toBe(200);
    expect(cut.received.length).toBeLessThan(fullLength);
    return cut;
  }

  it.each([
    ['a FIN', false],
    ['an RST', true],
  ])('the origin closes mid-body with %s → the client connection is destroyed, not ended cleanly', async (_name, rst) => {
    const stack = await start({}, { origin: { segmentBytes: 256 * 1024 } });
    stack.origin.setFault('/play/ch1/v1/seg-1.ts', { resetMidBody: true, rst });
    const full = stack.origin.expectedBytes('/play/ch1/v1/seg-1.ts');
    const cut = await expectCutAfterHeaders(segmentUrl(stack, 'good'), full.length);
    expect(full.subarray(0, cut.received.length).equals(cut.received)).toBe(true);
    expect(await stack.edge.metric('edge_upstream_requests_total', { outcome: 'reset' })).toBe(1);
  });

  it('Content-Length longer than the body (the origin then closes) → the client connection is destroyed', async () => {
    const stack = await start();
    const full = stack.origin.expectedBytes('/play/ch1/v1/seg-1.ts');
    stack.origin.setFault('/play/ch1/v1/seg-1.ts', { declaredLength: full.length + 1000 });
    const cut = await expectCutAfterHeaders(segmentUrl(stack, 'good'), full.length + 1000);
    expect(cut.received.length).toBeLessThanOrEqual(full.length);
  });

  it('Content-Length shorter than the body → exactly the declared bytes; the extra bytes never reach the next response on that connection', async () => {
    // One upstream connection: the next request would reuse it if it were kept.
    const stack = await start({ upstream: { connections: 1 } });
    const full = stack.origin.expectedBytes('/play/ch1/v1/seg-1.ts');
    stack.origin.setFault('/play/ch1/v1/seg-1.ts', { declaredLength: full.length - 1000, times: 1 });
    const short = await httpRequest(segmentUrl(stack, 'good'));
    expect(short.status).toBe(200);
    expect(short.body.equals(full.subarray(0, full.length - 1000))).toBe(true);
    for (const n of [2, 3]) {
      const next = await httpRequest(segmentUrl(stack, 'good', n));
      expect(next.status).toBe(200);
      expect(next.body.equals(stack.origin.expectedBytes(`/play/ch1/v1/seg-${n}.ts`))).toBe(true);
    }
    expect(stack.origin.requests.map((r) => r.path)).toEqual(['/play/ch1/v1/seg-1.ts', '/play/ch1/v1/seg-2.ts', '/play/ch1/v1/seg-3.ts']);
  });
});
