// The Microimpulse Smarty backend against a Smarty-like token service (PROTOCOLS §3): the exact
// check request, each `error` code as the deny reason, with the invalid answers sent both as
// 200 + JSON and as 4xx + JSON, the inferred rules for bodies that are not JSON, and "unavailable".
import { describe, expect, it } from 'vitest';
import { SmartyBackend, smartyErrorCode, type SmartyOptions } from '../../src/auth/backends/smarty.js';
import type { AuthRequest } from '../../src/auth/types.js';
import { authRequest, clientOptions, expectUnavailable, refusedUrl, useClosables } from '../helpers/backends.js';
import { startTestMiddleware, type TestMiddleware } from '../helpers/middleware.js';
import { createSmartyService, SMARTY_PATH, type SmartyService, type SmartyServiceOptions } from '../helpers/smarty.js';

const track = useClosables();

interface Setup {
  mw: TestMiddleware;
  smarty: SmartyService;
  backend: SmartyBackend;
}

async function setup(opts: { address?: string; smarty?: SmartyOptions; service?: SmartyServiceOptions } = {}): Promise<Setup> {
  const smarty = createSmartyService(opts.service);
  const mw = track(await startTestMiddleware({ behavior: smarty.handler }));
  const backend = track(new SmartyBackend(clientOptions(`${mw.url}${opts.address ?? ''}`), opts.smarty));
  return { mw, smarty, backend };
}

/** A viewer at 203.0.113.7 asking for channel a001 with `?token=<token>`. */
const viewer = (token: string | undefined, over: Partial<AuthRequest> = {}): AuthRequest =>
  authRequest({ token, query: token === undefined ? '' : `token=${token}`, ...over });

describe('smarty: the check request', () => {
  it('GETs token/check/ with the token (decoded by the edge), the channel as name and the client IP, each encoded once', async () => {
    const { mw, smarty, backend } = await setup();
    smarty.issue('a/b=', { content: 'ch/1 ü', ip: '2001:db8::1' });
    const verdict = await backend.check(viewer('a/b=', { channel: 'ch/1 ü', clientIp: '2001:db8::1' }), AbortSignal.timeout(2000));
    expect(mw.requests).toHaveLength(1);
    const r = mw.requests[0]!;
    expect(r.method).toBe('GET');
    expect(r.path).toBe(SMARTY_PATH);
    expect(r.rawQuery).toBe('token=a%2Fb%3D&name=ch%2F1%20%C3%BC&ip=2001%3Adb8%3A%3A1');
    expect(r.headers['user-agent']).toBe('astra-auth-edge');
    expect(Object.keys(r.headers).filter((h) => h.startsWith('x-'))).toEqual([]);
    expect(verdict).toEqual({ allow: true, reason: 'backend_200', status: 200 });
  });

  it.each([
    [{ sendName: false }, 'token=t1&ip=203.0.113.7'],
    [{ sendIp: false }, 'token=t1&name=a001'],
    [{ sendName: false, sendIp: false }, 'token=t1'],
    [{}, 'token=t1&name=a001&ip=203.0.113.7'],
  ])('options %j → ?%s', async (smartyOptions, query) => {
    const { mw, smarty, backend } = await setup({ smarty: smartyOptions });
    smarty.issue('t1', { content: 'a001', ip: '203.0.113.7' });
    expect((await backend.check(viewer('t1'), AbortSignal.timeout(2000))).allow).toBe(true);
    expect(mw.requests[0]!.rawQuery).toBe(query);
  });

  it('without name, Smarty cannot tell the content: a token for another channel passes', async () => {
    const { smarty, backend } = await setup({ smarty: { sendName: false } });
    smarty.issue('t1', { content: 'other' });
    expect((await backend.check(viewer('t1'), AbortSignal.timeout(2000))).allow).toBe(true);
  });

  it.each(['', '/', '//'])('address "%s" → the check path at the root', async (address) => {
    const { mw, smarty, backend } = await setup({ address });
    smarty.issue('t1', { content: 'a001' });
    expect((await backend.check(viewer('t1'), AbortSignal.timeout(2000))).allow).toBe(true);
    expect(mw.requests[0]!.path).toBe(SMARTY_PATH);
  });

  it.each(['/mw', '/mw/'])('an address with a path prefix "%s" keeps it', async (address) => {
    const { mw, backend } = await setup({ address });
    await backend.check(viewer('t1'), AbortSignal.timeout(2000));
    expect(mw.requests[0]!.path).toBe(`/mw${SMARTY_PATH}`); // the fake answers 404 there: a deny
  });

  it.each([undefined, ''])('no token (%j): denies without asking', async (token) => {
    const { mw, backend } = await setup();
    expect(await backend.check(viewer(token), AbortSignal.timeout(2000))).toEqual({ allow: false, reason: 'no_token' });
    expect(mw.requests).toHaveLength(0);
  });
});

describe.each([200, 403])('smarty: invalid tokens answered with status %i', (invalidStatus) => {
  it('error 1 (expired, or unknown) → reason "expired"', async () => {
    const clock = { t: 1_000_000 };
    const { smarty, backend } = await setup({ service: { invalidStatus, now: () => clock.t } });
    smarty.issue('t1', { content: 'a001', ttlMs: 1000 });
    expect(await backend.check(viewer('t1'), AbortSignal.timeout(2000))).toEqual({ allow: true, reason: 'backend_200', status: 200 });
    clock.t += 1000;
    expect(await backend.check(viewer('t1'), AbortSignal.timeout(2000))).toEqual({ allow: false, reason: 'expired', status: invalidStatus });
    expect(await backend.check(viewer('never-issued'), AbortSignal.timeout(2000))).toEqual({ allow: false, reason: 'expired', status: invalidStatus });
  });

  it('error 2 (other content) → reason "other_content"', async () => {
    const { smarty, backend } = await setup({ service: { invalidStatus } });
    smarty.issue('t1', { content: 'a002' });
    expect(await backend.check(viewer('t1'), AbortSignal.timeout(2000))).toEqual({ allow: false, reason: 'other_content', status: invalidStatus });
  });

  it('error 3 (other IP) → reason "other_ip"', async () => {
    const { smarty, backend } = await setup({ service: { invalidStatus } });
    smarty.issue('t1', { content: 'a001', ip: '198.51.100.1' });
    expect(await backend.check(viewer('t1'), AbortSignal.timeout(2000))).toEqual({ allow: false, reason: 'other_ip', status: invalidStatus });
  });

  it.each([
    ['{"error":7,"message":"blocked"}', 'error_7'],
    ['{"error":"1"}', 'expired'],
    ['{"error":-1}', 'error_-1'],
    ['{"error":"nope"}', 'error_malformed'],
    ['{"error":true}', 'error_malformed'],
  ])('body %s → reason %s', async (body, reason) => {
    const { mw, backend } = await setup();
    mw.setBehavior({ kind: 'deny', status: invalidStatus, headers: { 'content-type': 'application/json' }, body });
    expect(await backend.check(viewer('t1'), AbortSignal.timeout(2000))).toEqual({ allow: false, reason, status: invalidStatus });
  });
});

describe('smarty: what the status decides (inference)', () => {
  it.each([
    ['OK', 'a non-JSON body'],
    ['', 'an empty body'],
    ['{"status":"ok"}', 'JSON without error'],
    ['{"error":null}', 'error: null'],
    ['[1,2]', 'a JSON array'],
    ['{"error":0}', 'error 0'],
    ['{"error":"0"}', 'error "0"'],
  ])('200 with %j (%s) allows', async (body) => {
    const { mw, backend } = await setup();
    mw.setBehavior({ kind: 'allow', body });
    expect(await backend.check(viewer('t1'), AbortSignal.timeout(2000))).toEqual({ allow: true, reason: 'backend_200', status: 200 });
  });

  it('an allow honours X-AuthDuration and the user headers', async () => {
    const { mw, backend } = await setup();
    mw.setBehavior({ kind: 'allow', headers: { 'X-AuthDuration': '600', 'X-UserId': '9' }, body: '{"error":0}' });
    expect(await backend.check(viewer('t1'), AbortSignal.timeout(2000))).toEqual({ allow: true, reason: 'backend_200', status: 200, ttlMs: 600_000, userId: '9' });
  });

  it.each([
    [403, '', 'backend_403'],
    [404, 'not found', 'backend_404'],
    [401, '{"detail":"x"}', 'backend_401'],
    [403, '{"error":0}', 'backend_403'], // a 4xx never allows, whatever the body says
  ])('%i with %j denies with %s', async (status, body, reason) => {
    const { mw, backend } = await setup();
    mw.setBehavior({ kind: 'deny', status, body });
    expect(await backend.check(viewer('t1'), AbortSignal.timeout(2000))).toEqual({ allow: false, reason, status });
  });

  it('a 200 whose body is over maxBodyBytes is no grant: EDGE_ERR_BACKEND_INVALID', async () => {
    const { mw, backend } = await setup();
    mw.setBehavior({ kind: 'bigBody', bytes: 256 * 1024 });
    await expectUnavailable(backend.check(viewer('t1'), AbortSignal.timeout(2000)), 'EDGE_ERR_BACKEND_INVALID');
  });

  it.each([204, 302])('%i is neither 200 nor a deny: EDGE_ERR_BACKEND_INVALID', async (status) => {
    const { mw, backend } = await setup();
    mw.setBehavior({ kind: 'deny', status, headers: { Location: '/' } });
    await expectUnavailable(backend.check(viewer('t1'), AbortSignal.timeout(2000)), 'EDGE_ERR_BACKEND_INVALID');
  });
});

describe('smarty: unavailable', () => {
  it.each([500, 503])('%i rejects with EDGE_ERR_BACKEND_HTTP_5XX, even with an error 0 body', async (status) => {
    const { mw, backend } = await setup();
    mw.setBehavior({ kind: '5xx', status, body: '{"error":0}' });
    await expectUnavailable(backend.check(viewer('t1'), AbortSignal.timeout(2000)), 'EDGE_ERR_BACKEND_HTTP_5XX');
  });

  it('connection refused rejects with EDGE_ERR_BACKEND_REFUSED', async () => {
    const backend = track(new SmartyBackend(clientOptions(await refusedUrl())));
    await expectUnavailable(backend.check(viewer('t1'), AbortSignal.timeout(2000)), 'EDGE_ERR_BACKEND_REFUSED');
  });

  it('a closed connection rejects with EDGE_ERR_BACKEND_RESET', async () => {
    const { mw, backend } = await setup();
    mw.setBehavior('close');
    await expectUnavailable(backend.check(viewer('t1'), AbortSignal.timeout(2000)), 'EDGE_ERR_BACKEND_RESET');
  });
});

describe('smartyErrorCode', () => {
  it.each([
    ['{"error":0}', 0],
    ['{"error":3,"x":1}', 3],
    [' {"error":" 2 "} ', 2],
    ['{"error":1.5}', Number.NaN],
    ['{"error":{}}', Number.NaN],
    ['{"error":null}', undefined],
    ['{}', undefined],
    ['null', undefined],
    ['"error"', undefined],
    ['<html>', undefined],
    ['', undefined],
  ])('%j → %s', (body, code) => {
    expect(smartyErrorCode(body)).toBe(code);
  });
});

it('smarty: name defaults to the type', () => {
  expect(track(new SmartyBackend(clientOptions('http://127.0.0.1:1'))).name).toBe('smarty');
});
