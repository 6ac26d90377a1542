// Self-tests for test/helpers/middleware.ts (the fake authorization backend).
import { afterEach, describe, expect, it } from 'vitest';
import { HttpClientError, httpRequest, openStream } from '../helpers/client.js';
import { startTestMiddleware } from '../helpers/middleware.js';
import type { TestMiddleware, TestMiddlewareOptions } from '../helpers/middleware.js';
import { sleep, waitFor } from '../helpers/wait.js';

let mw: TestMiddleware | null = null;
async function start(opts?: TestMiddlewareOptions): Promise<TestMiddleware> {
  mw = await startTestMiddleware(opts);
  return mw;
}
afterEach(async () => {
  await mw?.close();
  mw = null;
});

const failure = (p: Promise<unknown>): Promise<HttpClientError> =>
  p.then(
    () => {
      throw new Error('expected the request to fail');
    },
    (e: unknown) => {
      if (!(e instanceof HttpClientError)) throw e;
      return e;
    },
  );

describe('startTestMiddleware: recording', () => {
  it('records the raw request target and query byte for byte', async () => {
    const m = await start();
    const queries = [
      'token=a%2Fb&x=1&x=2&sp=%20',
      'a=%2f%2F&b=+&c=%E2%82%AC&empty=&=v&k==v;s&flag',
      'ip=127.0.0.1&name=ch%2Fone&name=second',
    ];
    for (const q of queries) await httpRequest(`${m.url}/auth/check?${q}`, { headers: { 'X-Forwarded-For': '10.0.0.1' } });
    await httpRequest(`${m.url}/no-query`);
    await httpRequest(`${m.url}/empty?`);
    expect(m.requests.map((r) => r.rawQuery)).toEqual([...queries, '', '']);
    expect(m.requests[0]).toMatchObject({ method: 'GET', rawUrl: `/auth/check?${queries[0]}`, path: '/auth/check', remoteAddress: '127.0.0.1' });
    expect(m.requests[0]?.headers['x-forwarded-for']).toBe('10.0.0.1');
    expect(m.requests[0]?.rawHeaders).toContain('X-Forwarded-For');
    expect(new URLSearchParams(m.requests[0]?.rawQuery).getAll('x')).toEqual(['1', '2']);
    expect(m.requests.at(-1)?.rawUrl).toBe('/empty?');
    m.reset();
    expect(m.requests).toHaveLength(0);
  });
});

describe('startTestMiddleware: behaviours', () => {
  it('allows by default and with extra headers', async () => {
    const m = await start();
    const r0 = await httpRequest(`${m.url}/a`);
    expect(r0.status).toBe(200);
    expect(r0.body).toHaveLength(0);
    m.setBehavior({ kind: 'allow', headers: { 'X-Session-Name': 'abc', 'X-AuthDuration': '60', 'Cache-Control': 'max-age=30' } });
    const r = await httpRequest(`${m.url}/a`);
    expect(r.status).toBe(200);
    expect(r.headers).toMatchObject({ 'x-session-name': 'abc', 'x-authduration': '60', 'cache-control': 'max-age=30' });
  });

  it('denies with a configurable status and X-Location', async () => {
    const m = await start({ behavior: 'deny' });
    expect((await httpRequest(`${m.url}/a`)).status).toBe(403);
    for (const status of [401, 404]) {
      m.setBehavior({ kind: 'deny', status, location: 'http://127.0.0.1:1/denied.html' });
      const r = await httpRequest(`${m.url}/a`);
      expect(r.status).toBe(status);
      expect(r.headers['x-location']).toBe('http://127.0.0.1:1/denied.html');
    }
  });

  it('answers 5xx', async () => {
    const m = await start({ behavior: '5xx' });
    expect((await httpRequest(`${m.url}/a`)).status).toBe(500);
    for (const status of [502, 503]) {
      m.setBehavior({ kind: '5xx', status });
      expect((await httpRequest(`${m.url}/a`)).status).toBe(status);
    }
  });

  it('delays, then applies the next behaviour', async () => {
    const m = await start({ behavior: { kind: 'delay', ms: 250, then: { kind: 'deny', status: 401 } } });
    const t0 = Date.now();
    expect((await httpRequest(`${m.url}/a`)).status).toBe(401);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(240);
  });

  it('counts requests in flight until the work is done, even when the client left', async () => {
    const m = await start({ behavior: { kind: 'delay', ms: 300, then: 'allow' } });
    const gone = failure(httpRequest(`${m.url}/a`, { timeoutMs: 100 }));
    const answered = httpRequest(`${m.url}/b`);
    await waitFor(() => m.inFlight() === 2);
    await gone; // the client gave up; the middleware works on
    expect(m.inFlight()).toBe(2);
    expect((await answered).status).toBe(200);
    await waitFor(() => m.inFlight() === 0, { timeoutMs: 1000 });
    expect(m.maxInFlight()).toBe(2);
    m.reset();
    expect(m.maxInFlight()).toBe(0);
  });

  it('hangs until close() destroys the socket', async () => {
    const m = await start({ behavior: 'hang' });
    const pending = failure(httpRequest(`${m.url}/a`, { timeoutMs: 5000 }));
    await waitFor(() => m.requests.length === 1 && m.activeConnections() === 1);
    await sleep(100);
    expect(m.activeConnections()).toBe(1);
    await m.close();
    const err = await pending;
    expect(err.status).toBeUndefined();
    expect(err.code).not.toBe('ETIMEDOUT');
  });

  it('closes the socket without answering', async () => {
    const m = await start({ behavior: 'close' });
    const err = await failure(httpRequest(`${m.url}/a`));
    expect(err.code).toBe('ECONNRESET');
    expect(err.status).toBeUndefined();
  });

  it('writes a malformed response', async () => {
    const m = await start({ behavior: 'garbage' });
    const err = await failure(httpRequest(`${m.url}/a`));
    expect(err.code).toMatch(/^HPE_/);
  });

  it('sends a multi-MB body, with or without Content-Length', async () => {
    const m = await start({ behavior: 'bigBody' });
    const r = await httpRequest(`${m.url}/a`);
    expect(r.headers['content-length']).toBe(String(8 * 1024 * 1024));
    expect(r.body).toHaveLength(8 * 1024 * 1024);
    m.setBehavior({ kind: 'bigBody', bytes: 3 * 1024 * 1024 + 5, chunked: true });
    const c = await httpRequest(`${m.url}/a`);
    expect(c.headers['transfer-encoding']).toBe('chunked');
    expect(c.body).toHaveLength(3 * 1024 * 1024 + 5);
  });

  it('stops writing a big body when the client gives up early', async () => {
    const m = await start({ behavior: { kind: 'bigBody', bytes: 64 * 1024 * 1024 } });
    const s = await openStream(`${m.url}/a`);
    await s.readAtLeast(1024 * 1024);
    s.destroy();
    await waitFor(() => m.activeConnections() === 0);
    expect(s.received()).toBeLessThan(64 * 1024 * 1024);
  });

  it('supports per-request handlers and one-shot queued behaviours', async () => {
    const m = await start();
    m.setBehavior((req) => (new URLSearchParams(req.rawQuery).get('user') === 'ok' ? { kind: 'allow', headers: { 'X-UserId': '7' } } : 'deny'));
    expect((await httpRequest(`${m.url}/a?user=ok`)).headers['x-userid']).toBe('7');
    expect((await httpRequest(`${m.url}/a?user=no`)).status).toBe(403);
    m.queueBehavior('5xx', { kind: 'deny', status: 401 }, async () => 'allow' as const);
    m.setBehavior({ kind: 'deny', status: 404 });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await httpRequest(`${m.url}/a`)).status);
    expect(statuses).toEqual([500, 401, 200, 404]);
  });
});

describe('startTestMiddleware: ministra mode', () => {
  it('accepts live tokens with Ministra headers and rejects others with an empty 403', async () => {
    let now = 0;
    const m = await start({ behavior: 'ministra', now: () => now });
    const t1 = m.issueMinistraToken();
    const t2 = m.issueMinistraToken();
    expect(t1).toMatch(/^[0-9a-f]{32}$/);
    expect(t2).not.toBe(t1);
    const r = await httpRequest(`${m.url}/stalker_portal/auth?token=${t1}&ch=1`);
    expect(r.status).toBe(200);
    expect(r.headers).toMatchObject({ 'x-authduration': '36000', 'x-unique': 'true', 'x-max-sessions': '10', 'x-userid': '1' });
    expect((await httpRequest(`${m.url}/a?token=${t2}`)).headers['x-userid']).toBe('2');
    for (const q of ['', '?token=', `?token=${'0'.repeat(32)}`, `?tok=${t1}`]) {
      const d = await httpRequest(`${m.url}/a${q}`);
      expect(d.status).toBe(403);
      expect(d.body).toHaveLength(0);
    }
    now += 4999;
    expect((await httpRequest(`${m.url}/a?token=${t1}`)).status).toBe(200);
    now += 1;
    expect((await httpRequest(`${m.url}/a?token=${t1}`)).status).toBe(403);
  });

  it('lets a token expire in real time with a short ttl', async () => {
    const m = await start({ behavior: 'ministra', ministraTtlMs: 300 });
    const t = m.issueMinistraToken();
    const long = m.issueMinistraToken({ ttlMs: 60_000, userId: 42 });
    expect((await httpRequest(`${m.url}/a?token=${t}`)).status).toBe(200);
    await sleep(350);
    expect((await httpRequest(`${m.url}/a?token=${t}`)).status).toBe(403);
    const r = await httpRequest(`${m.url}/a?token=${long}`);
    expect(r.status).toBe(200);
    expect(r.headers['x-userid']).toBe('42');
  });
});

describe('waitFor', () => {
  it('returns the first truthy value and times out with a message', async () => {
    let n = 0;
    expect(await waitFor(() => (++n >= 3 ? n : 0), { intervalMs: 1 })).toBe(3);
    await expect(waitFor(() => false, { timeoutMs: 50, message: 'never' })).rejects.toThrow(/never: condition not met within 50 ms/);
    await expect(
      waitFor(
        () => {
          throw new Error('boom');
        },
        30,
      ),
    ).rejects.toThrow(/last: boom/);
  });
});
