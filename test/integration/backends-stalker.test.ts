// The Ministra/Stalker backend against a portal-like middleware (PROTOCOLS §2): the exact check
// request, the grant with its headers, every deny, and "unavailable".
import { describe, expect, it } from 'vitest';
import { StalkerBackend } from '../../src/auth/backends/stalker.js';
import { authRequest, clientOptions, expectUnavailable, refusedUrl, useClosables } from '../helpers/backends.js';
import { startTestMiddleware, type TestMiddleware } from '../helpers/middleware.js';

const CHECK = '/stalker_portal/server/api/chk_flussonic_tmp_link.php';
const track = useClosables();

async function setup(address = '/stalker_portal', clock?: { t: number }): Promise<{ mw: TestMiddleware; backend: StalkerBackend }> {
  const mw = track(await startTestMiddleware({ behavior: 'ministra', ...(clock && { now: () => clock.t }) }));
  const backend = track(new StalkerBackend(clientOptions(`${mw.url}${address}`)));
  return { mw, backend };
}

const check = (backend: StalkerBackend, token: string | undefined) =>
  backend.check(authRequest({ token, query: token === undefined ? 'x=1' : `token=${token}&x=1` }), AbortSignal.timeout(2000));

describe('stalker: the check request', () => {
  it('GETs chk_flussonic_tmp_link.php with only the token and a user-agent', async () => {
    const { mw, backend } = await setup();
    const token = mw.issueMinistraToken({ userId: 42 });
    expect(token).toMatch(/^[0-9a-f]{32}$/);
    await check(backend, token);
    expect(mw.requests).toHaveLength(1);
    const r = mw.requests[0]!;
    expect(r.method).toBe('GET');
    expect(r.rawUrl).toBe(`${CHECK}?token=${token}`);
    expect(r.headers['user-agent']).toBe('astra-auth-edge');
    expect(Object.keys(r.headers).filter((h) => h.startsWith('x-'))).toEqual([]);
  });

  it('sends the decoded token encoded once: $_GET["token"] is exactly the token the edge read', async () => {
    // The edge decodes `?token=a%2Fb%3D%3D+c%20` to `a/b== c ` (as PHP does); whatever it holds
    // (`&`, `#`, `=`) cannot add or cut a parameter of the check.
    const { mw, backend } = await setup();
    const verdict = await check(backend, 'a/b== c ');
    expect(mw.requests[0]!.rawUrl).toBe(`${CHECK}?token=a%2Fb%3D%3D%20c%20`);
    await check(backend, 'x&token=other#frag');
    expect(mw.requests[1]!.rawUrl).toBe(`${CHECK}?token=x%26token%3Dother%23frag`);
    expect(verdict).toEqual({ allow: false, reason: 'backend_403', status: 403 });
  });

  it.each([
    ['/stalker_portal', CHECK],
    ['/stalker_portal/', CHECK],
    ['/stalker_portal//', CHECK],
    ['', '/server/api/chk_flussonic_tmp_link.php'],
    ['/', '/server/api/chk_flussonic_tmp_link.php'],
  ])('address "%s" → %s', async (address, path) => {
    const { mw, backend } = await setup(address);
    const verdict = await check(backend, mw.issueMinistraToken());
    expect(mw.requests[0]!.path).toBe(path);
    expect(verdict.allow).toBe(true);
  });

  it.each([undefined, ''])('no token (%j): denies without asking the portal', async (token) => {
    const { mw, backend } = await setup();
    expect(await check(backend, token)).toEqual({ allow: false, reason: 'no_token' });
    expect(mw.requests).toHaveLength(0);
  });
});

describe('stalker: answers', () => {
  it('200 allows with X-AuthDuration, X-UserId, X-Max-Sessions, X-Unique', async () => {
    const { mw, backend } = await setup();
    const verdict = await check(backend, mw.issueMinistraToken({ userId: 42 }));
    expect(verdict).toEqual({ allow: true, reason: 'backend_200', status: 200, ttlMs: 36_000_000, userId: '42', maxSessions: 10, unique: true });
  });

  it('a token is good for 5 s, re-checks included, then the portal says 403', async () => {
    const clock = { t: 1_000_000 };
    const { mw, backend } = await setup('/stalker_portal', clock);
    const token = mw.issueMinistraToken();
    expect((await check(backend, token)).allow).toBe(true);
    clock.t += 4999;
    expect((await check(backend, token)).allow).toBe(true); // not deleted on check
    clock.t += 1;
    expect(await check(backend, token)).toEqual({ allow: false, reason: 'backend_403', status: 403 });
  });

  it('an unknown token is denied (403, empty body)', async () => {
    const { mw, backend } = await setup();
    mw.issueMinistraToken();
    expect(await check(backend, '0123456789abcdef0123456789abcdef')).toEqual({ allow: false, reason: 'backend_403', status: 403 });
  });

  it.each([401, 404, 429])('%i denies with backend_%i', async (status) => {
    const { mw, backend } = await setup();
    mw.setBehavior({ kind: 'deny', status });
    expect(await check(backend, 'tok')).toEqual({ allow: false, reason: `backend_${status}`, status });
  });

  it('a deny keeps X-Location and X-AuthDuration', async () => {
    const { mw, backend } = await setup();
    mw.setBehavior({ kind: 'deny', status: 403, location: 'http://promo.example/', headers: { 'X-AuthDuration': '5' } });
    expect(await check(backend, 'tok')).toEqual({ allow: false, reason: 'backend_403', status: 403, location: 'http://promo.example/', ttlMs: 5000 });
  });
});

describe('stalker: unavailable', () => {
  it.each([500, 502, 503])('%i rejects with EDGE_ERR_BACKEND_HTTP_5XX', async (status) => {
    const { mw, backend } = await setup();
    mw.setBehavior({ kind: '5xx', status });
    await expectUnavailable(check(backend, 'tok'), 'EDGE_ERR_BACKEND_HTTP_5XX');
  });

  it('connection refused rejects with EDGE_ERR_BACKEND_REFUSED', async () => {
    const backend = track(new StalkerBackend(clientOptions(`${await refusedUrl()}/stalker_portal`)));
    await expectUnavailable(check(backend, 'tok'), 'EDGE_ERR_BACKEND_REFUSED');
  });

  it('a portal that never answers rejects with EDGE_ERR_BACKEND_TIMEOUT when the signal fires', async () => {
    const { mw, backend } = await setup();
    mw.setBehavior('hang');
    await expectUnavailable(backend.check(authRequest(), AbortSignal.timeout(200)), 'EDGE_ERR_BACKEND_TIMEOUT');
  });

  it.each([204, 302])('%i is no answer the portal gives: EDGE_ERR_BACKEND_INVALID', async (status) => {
    const { mw, backend } = await setup();
    mw.setBehavior({ kind: 'deny', status, headers: { Location: '/login' } });
    await expectUnavailable(check(backend, 'tok'), 'EDGE_ERR_BACKEND_INVALID');
  });

  it('a garbled response rejects with EDGE_ERR_BACKEND_INVALID', async () => {
    const { mw, backend } = await setup();
    mw.setBehavior('garbage');
    await expectUnavailable(check(backend, 'tok'), 'EDGE_ERR_BACKEND_INVALID');
  });
});

it('stalker: name defaults to the type and can be configured', async () => {
  expect(track(new StalkerBackend(clientOptions('http://127.0.0.1:1/'))).name).toBe('stalker');
  expect(track(new StalkerBackend({ ...clientOptions('http://127.0.0.1:1/'), name: 'ministra-eu' })).name).toBe('ministra-eu');
});
