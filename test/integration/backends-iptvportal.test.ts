// The IPTVportal arescrypt backend (PROTOCOLS §4): the client's query passed through byte for
// byte, the hourly default TTL, denies, "unavailable", and (for every backend type, since they
// share the client) HTTPS with a private CA.
import { describe, expect, it } from 'vitest';
import { IPTVPORTAL_DEFAULT_TTL_MS, IptvportalBackend } from '../../src/auth/backends/iptvportal.js';
import { authRequest, clientOptions, expectUnavailable, refusedUrl, useClosables } from '../helpers/backends.js';
import { startTestMiddleware, type TestMiddleware } from '../helpers/middleware.js';
import { startSelfSignedServer } from '../helpers/tls.js';

const track = useClosables();

async function setup(address = ''): Promise<{ mw: TestMiddleware; backend: IptvportalBackend }> {
  const mw = track(await startTestMiddleware());
  const backend = track(new IptvportalBackend(clientOptions(`${mw.url}${address}`)));
  return { mw, backend };
}

const check = (backend: IptvportalBackend, query = 'token=abc') => backend.check(authRequest({ query }), AbortSignal.timeout(2000));

describe('iptvportal: the check request', () => {
  it('GETs /auth/arescrypt/ with the client query byte for byte and a user-agent only', async () => {
    const { mw, backend } = await setup();
    const query = 'token=a%2Fb%3D%3D&x=1&x=2&sp=%20+&empty=&flag&uni=%E2%9C%93';
    await check(backend, query);
    expect(mw.requests).toHaveLength(1);
    const r = mw.requests[0]!;
    expect(r.method).toBe('GET');
    expect(r.rawUrl).toBe(`/auth/arescrypt/?${query}`);
    expect(r.headers['user-agent']).toBe('astra-auth-edge');
    expect(Object.keys(r.headers).filter((h) => h.startsWith('x-'))).toEqual([]);
  });

  it('an empty query leaves the bare endpoint', async () => {
    const { mw, backend } = await setup();
    await check(backend, '');
    expect(mw.requests[0]!.rawUrl).toBe('/auth/arescrypt/');
  });

  it.each([
    ['', '/auth/arescrypt/'],
    ['/', '/auth/arescrypt/'],
    ['/portal', '/portal/auth/arescrypt/'],
    ['/portal/', '/portal/auth/arescrypt/'],
  ])('address "%s" → %s', async (address, path) => {
    const { mw, backend } = await setup(address);
    await check(backend);
    expect(mw.requests[0]!.path).toBe(path);
  });
});

describe('iptvportal: answers', () => {
  it('200 allows for an hour when the portal sends no TTL', async () => {
    const { backend } = await setup();
    expect(IPTVPORTAL_DEFAULT_TTL_MS).toBe(3_600_000);
    expect(await check(backend)).toEqual({ allow: true, reason: 'backend_200', status: 200, ttlMs: IPTVPORTAL_DEFAULT_TTL_MS });
  });

  it.each([
    [{ 'X-AuthDuration': '60' }, 60_000],
    [{ 'Cache-Control': 'max-age=120' }, 120_000],
  ])('200 with %j holds for %i ms', async (headers, ttlMs) => {
    const { mw, backend } = await setup();
    mw.setBehavior({ kind: 'allow', headers: { ...headers, 'X-Session-Name': 'sub-7' } });
    expect(await check(backend)).toEqual({ allow: true, reason: 'backend_200', status: 200, ttlMs, sessionName: 'sub-7' });
  });

  it.each([400, 401, 403, 404, 410])('%i denies with backend_%i', async (status) => {
    const { mw, backend } = await setup();
    mw.setBehavior({ kind: 'deny', status });
    expect(await check(backend)).toEqual({ allow: false, reason: `backend_${status}`, status });
  });

  it.each([204, 302])('%i is neither a grant nor a deny: EDGE_ERR_BACKEND_INVALID', async (status) => {
    const { mw, backend } = await setup();
    mw.setBehavior({ kind: 'deny', status, headers: { Location: '/' } });
    await expectUnavailable(check(backend), 'EDGE_ERR_BACKEND_INVALID');
  });
});

describe('iptvportal: unavailable', () => {
  it.each([500, 502, 504])('%i rejects with EDGE_ERR_BACKEND_HTTP_5XX', async (status) => {
    const { mw, backend } = await setup();
    mw.setBehavior({ kind: '5xx', status });
    await expectUnavailable(check(backend), 'EDGE_ERR_BACKEND_HTTP_5XX');
  });

  it('connection refused rejects with EDGE_ERR_BACKEND_REFUSED', async () => {
    const backend = track(new IptvportalBackend(clientOptions(await refusedUrl())));
    await expectUnavailable(check(backend), 'EDGE_ERR_BACKEND_REFUSED');
  });
});

it('iptvportal: name defaults to the type', () => {
  expect(track(new IptvportalBackend(clientOptions('https://go.iptvportal.cloud'))).name).toBe('iptvportal');
});

describe('HTTPS middleware', () => {
  it('iptvportal over https with caFile pointing at a self-signed certificate', async (ctx) => {
    const seen: string[] = [];
    const tls = await startSelfSignedServer((req, res) => {
      seen.push(req.url ?? '');
      res.writeHead(req.url?.includes('token=good') === true ? 200 : 403, { 'content-length': '0' });
      res.end();
    });
    if ('skip' in tls) return ctx.skip(tls.skip);
    track(tls);

    const backend = track(new IptvportalBackend(clientOptions(tls.url, { caFile: tls.certFile })));
    expect(await check(backend, 'token=good&x=%2F')).toEqual({ allow: true, reason: 'backend_200', status: 200, ttlMs: IPTVPORTAL_DEFAULT_TTL_MS });
    expect(await check(backend, 'token=bad')).toEqual({ allow: false, reason: 'backend_403', status: 403 });
    expect(seen).toEqual(['/auth/arescrypt/?token=good&x=%2F', '/auth/arescrypt/?token=bad']);

    // Without the CA the certificate is not trusted: no answer, so "unavailable", never a grant.
    const untrusting = track(new IptvportalBackend(clientOptions(tls.url)));
    const err: unknown = await check(untrusting, 'token=good').catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'EdgeError', code: expect.stringMatching(/^EDGE_ERR_BACKEND_/) });
    expect(seen).toHaveLength(2);
  });
});
