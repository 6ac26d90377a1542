// The Flussonic auth-backend dialect (PROTOCOLS §5): the exact query (every value encoded once,
// merged after the URL's own query), 200/302 allow, every other status below 500 denies, the
// answer headers, and "unavailable".
import { describe, expect, it } from 'vitest';
import { FlussonicBackend, flussonicQuery } from '../../src/auth/backends/flussonic.js';
import type { AuthRequest } from '../../src/auth/types.js';
import { authRequest, clientOptions, expectUnavailable, refusedUrl, useClosables } from '../helpers/backends.js';
import { startTestMiddleware, type TestMiddleware } from '../helpers/middleware.js';

const track = useClosables();

async function setup(path = '/auth'): Promise<{ mw: TestMiddleware; backend: FlussonicBackend }> {
  const mw = track(await startTestMiddleware());
  const backend = track(new FlussonicBackend(clientOptions(`${mw.url}${path}`)));
  return { mw, backend };
}

const REQUEST: AuthRequest = authRequest({
  sessionId: 'Zx9_-sessionIdAAAAAAAA',
  channel: 'ch/1 ü',
  clientIp: '2001:db8::7',
  path: '/play/ch%2F1/index.m3u8',
  query: 'token=a%2Fb%3D&x=1&sp=%20+&uni=%E2%9C%93',
  // Decoded, as the edge reads it from the query (proxy/query.ts); encoded once in the check.
  token: 'a/b=',
  userAgent: 'Mozilla/5.0 (X11; Linux) "q" & co',
  host: 'live.example.com:8443',
  kind: 'mpegts',
  requestType: 'update',
  requestNumber: 3,
  streamClients: 12,
  totalClients: 345,
  referer: 'https://site.example/watch?id=1&b=2',
});

const EXPECTED_QUERY = [
  'name=ch%2F1%20%C3%BC',
  'proto=mpegts',
  'ip=2001%3Adb8%3A%3A7',
  'token=a%2Fb%3D',
  'request_type=update_session',
  'request_number=3',
  'session_id=Zx9_-sessionIdAAAAAAAA',
  'stream_clients=12',
  'total_clients=345',
  'qs=token%3Da%252Fb%253D%26x%3D1%26sp%3D%2520%2B%26uni%3D%25E2%259C%2593',
  'user_agent=Mozilla%2F5.0%20(X11%3B%20Linux)%20%22q%22%20%26%20co',
  'referer=https%3A%2F%2Fsite.example%2Fwatch%3Fid%3D1%26b%3D2',
  'host=live.example.com%3A8443',
].join('&');

describe('flussonic: the request', () => {
  it('GETs the URL with the thirteen parameters, every value encoded once', async () => {
    const { mw, backend } = await setup();
    await backend.check(REQUEST, AbortSignal.timeout(2000));
    expect(mw.requests).toHaveLength(1);
    const r = mw.requests[0]!;
    expect(r.method).toBe('GET');
    expect(r.path).toBe('/auth');
    expect(r.rawQuery).toBe(EXPECTED_QUERY);
    expect(r.headers['user-agent']).toBe('astra-auth-edge');
    // qs decodes back to the client's query exactly, token decodes to the client's token value.
    const params = new URLSearchParams(r.rawQuery);
    expect(params.get('qs')).toBe(REQUEST.query);
    expect(params.get('token')).toBe('a/b=');
    expect(params.get('user_agent')).toBe(REQUEST.userAgent);
  });

  it('a first HLS check without a token: new_session, request_number 0, token empty', () => {
    const q = flussonicQuery(authRequest({ token: undefined, query: '', kind: 'hls', requestType: 'new', referer: '' }));
    expect(q).toBe(
      'name=a001&proto=hls&ip=203.0.113.7&token=&request_type=new_session&request_number=0&session_id=S1edgeSessionIdAAAAAAA' +
        '&stream_clients=0&total_clients=0&qs=&user_agent=VLC%2F3.0.20%20LibVLC%2F3.0.20&referer=&host=live.example.com',
    );
  });

  it('merges after the configured URL\'s own query', async () => {
    const { mw, backend } = await setup('/check.php?key=k%201&mode=fl');
    await backend.check(REQUEST, AbortSignal.timeout(2000));
    expect(mw.requests[0]!.rawUrl).toBe(`/check.php?key=k%201&mode=fl&${EXPECTED_QUERY}`);
  });

  it.each([
    ['', '/'],
    ['/', '/'],
    ['/auth/', '/auth/'],
    ['/auth', '/auth'],
    ['/auth?', '/auth'],
  ])('URL path "%s" is kept as configured → %s', async (path, expected) => {
    const { mw, backend } = await setup(path);
    await backend.check(REQUEST, AbortSignal.timeout(2000));
    expect(mw.requests[0]!.path).toBe(expected);
    expect(mw.requests[0]!.rawQuery).toBe(EXPECTED_QUERY);
  });
});

describe('flussonic: answers', () => {
  it('200 allows with X-AuthDuration, X-UserId, X-Max-Sessions, X-Unique', async () => {
    const { mw, backend } = await setup();
    mw.setBehavior({ kind: 'allow', headers: { 'X-AuthDuration': '120', 'X-UserId': 'u7', 'X-Max-Sessions': '2', 'X-Unique': 'true' } });
    expect(await backend.check(REQUEST, AbortSignal.timeout(2000))).toEqual({ allow: true, reason: 'backend_200', status: 200, ttlMs: 120_000, userId: 'u7', maxSessions: 2, unique: true });
  });

  it('200 without headers allows with no TTL of its own (the configured one applies)', async () => {
    const { backend } = await setup();
    expect(await backend.check(REQUEST, AbortSignal.timeout(2000))).toEqual({ allow: true, reason: 'backend_200', status: 200 });
  });

  it('302 allows and is not followed', async () => {
    const { mw, backend } = await setup();
    mw.setBehavior((rec) => (rec.path === '/auth' ? { kind: 'deny', status: 302, headers: { Location: '/elsewhere', 'X-AuthDuration': '30' } } : { kind: 'deny', status: 403 }));
    expect(await backend.check(REQUEST, AbortSignal.timeout(2000))).toEqual({ allow: true, reason: 'backend_302', status: 302, ttlMs: 30_000 });
    expect(mw.requests.map((r) => r.path)).toEqual(['/auth']);
  });

  it('403 denies, keeping X-AuthDuration (denials are cached too) and X-Location', async () => {
    const { mw, backend } = await setup();
    mw.setBehavior({ kind: 'deny', status: 403, location: 'http://promo.example/', headers: { 'X-AuthDuration': '10' } });
    expect(await backend.check(REQUEST, AbortSignal.timeout(2000))).toEqual({ allow: false, reason: 'backend_403', status: 403, ttlMs: 10_000, location: 'http://promo.example/' });
  });

  it.each([201, 204, 301, 303, 307, 400, 401, 404, 429])('%i denies (only 200 and 302 grant)', async (status) => {
    const { mw, backend } = await setup();
    mw.setBehavior({ kind: 'deny', status, headers: { Location: '/x' } });
    expect(await backend.check(REQUEST, AbortSignal.timeout(2000))).toEqual({ allow: false, reason: `backend_${status}`, status });
  });
});

describe('flussonic: unavailable', () => {
  it.each([500, 502, 503])('%i rejects with EDGE_ERR_BACKEND_HTTP_5XX', async (status) => {
    const { mw, backend } = await setup();
    mw.setBehavior({ kind: '5xx', status });
    await expectUnavailable(backend.check(REQUEST, AbortSignal.timeout(2000)), 'EDGE_ERR_BACKEND_HTTP_5XX');
  });

  it('connection refused rejects with EDGE_ERR_BACKEND_REFUSED', async () => {
    const backend = track(new FlussonicBackend(clientOptions(`${await refusedUrl()}/auth`)));
    await expectUnavailable(backend.check(REQUEST, AbortSignal.timeout(2000)), 'EDGE_ERR_BACKEND_REFUSED');
  });

  it('a garbled response rejects with EDGE_ERR_BACKEND_INVALID', async () => {
    const { mw, backend } = await setup();
    mw.setBehavior('garbage');
    await expectUnavailable(backend.check(REQUEST, AbortSignal.timeout(2000)), 'EDGE_ERR_BACKEND_INVALID');
  });
});

it('flussonic: name defaults to the type', () => {
  expect(track(new FlussonicBackend(clientOptions('http://127.0.0.1:1/auth'))).name).toBe('flussonic');
});
