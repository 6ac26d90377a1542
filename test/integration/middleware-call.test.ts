// The middleware call, exactly as Astra's "HTTP Request" auth, and what the edge does when the
// middleware says no, or cannot say anything.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { httpRequest, openStream } from '../helpers/client.js';
import { useStack, type Stack } from '../helpers/stack.js';
import { sleep, waitFor } from '../helpers/wait.js';

const start = useStack({ origin: { segmentBytes: 2048 } });
const setup = (file: Record<string, unknown> = {}, backendPath = '/auth'): Promise<Stack> => start(file, { backendPath });

describe('the middleware request', () => {
  it('appends the whole query byte for byte and sends the six headers', async () => {
    const { edge, mw } = await setup();
    const query = 'token=a%2Fb%3D%3D&x=1&x=2&sp=%20+&empty=&flag&uni=%E2%9C%93';
    const res = await httpRequest(`${edge.url}/play/a001/index.m3u8?${query}`, { headers: { 'user-agent': 'VLC/3.0.20 LibVLC/3.0.20', host: 'live.example.com' } });
    expect(res.status).toBe(200);
    expect(mw.requests).toHaveLength(1);
    const r = mw.requests[0]!;
    expect(r.method).toBe('GET');
    expect(r.path).toBe('/auth');
    expect(r.rawQuery).toBe(query);
    const sid = r.headers['x-session-id'];
    expect(sid).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(res.body.toString()).toContain(`edge_session=${String(sid)}`);
    expect(r.headers['x-channel-id']).toBe('a001');
    expect(r.headers['x-real-ip']).toBe('127.0.0.1');
    expect(r.headers['x-real-path']).toBe('/play/a001/index.m3u8');
    expect(r.headers['x-real-ua']).toBe('VLC/3.0.20 LibVLC/3.0.20');
    expect(r.headers['x-real-host']).toBe('live.example.com');
  });

  it('merges with a query of the backend URL and never forwards the edge marker', async () => {
    const { edge, mw } = await setup({}, '/check.php?key=k%201&mode=astra');
    await httpRequest(`${edge.url}/play/a001/index.m3u8?token=t%2B1`);
    expect(mw.requests[0]!.rawUrl).toBe('/check.php?key=k%201&mode=astra&token=t%2B1');
    // A bogus marker opens a new session; the middleware gets the client query without it.
    await httpRequest(`${edge.url}/play/a001/index.m3u8?edge_session=bogus&token=t2`);
    expect(mw.requests[1]!.rawUrl).toBe('/check.php?key=k%201&mode=astra&token=t2');
  });

  it('a request without a query leaves the backend URL as configured', async () => {
    const { edge, mw } = await setup();
    const stream = await openStream(`${edge.url}/play/a001`);
    stream.destroy();
    expect(mw.requests[0]!.rawUrl).toBe('/auth');
  });
});

describe('answers', () => {
  it('records X-Session-Name and honours X-AuthDuration', async () => {
    const { edge, mw } = await setup();
    mw.setBehavior({ kind: 'allow', headers: { 'X-Session-Name': 'user42', 'X-AuthDuration': '1' } });
    const master = await httpRequest(`${edge.url}/play/ch1/v1/index.m3u8?token=t`);
    const sid = /edge_session=([A-Za-z0-9_-]{22})/.exec(master.body.toString())![1]!;
    const session = edge.app.sessions.store.get(sid)!;
    expect(session.decision?.sessionName).toBe('user42');
    expect(session.expiresAt - session.decision!.decidedAt).toBe(1000);
  });

  it('Cache-Control max-age sets the TTL when X-AuthDuration is absent', async () => {
    const { edge, mw } = await setup();
    mw.setBehavior({ kind: 'allow', headers: { 'Cache-Control': 'private, max-age=7' } });
    const master = await httpRequest(`${edge.url}/play/ch1/v1/index.m3u8?token=t`);
    const sid = /edge_session=([A-Za-z0-9_-]{22})/.exec(master.body.toString())![1]!;
    const session = edge.app.sessions.store.get(sid)!;
    expect(session.expiresAt - session.decision!.decidedAt).toBe(7000);
  });

  it.each([401, 403, 404, 429])('%i denies with 403 and is cached for the deny TTL', async (status) => {
    const { edge, mw, origin } = await setup();
    mw.setBehavior({ kind: 'deny', status });
    for (let i = 0; i < 3; i++) {
      const res = await httpRequest(`${edge.url}/play/ch1/index.m3u8?token=bad`);
      expect(res.status).toBe(403);
      expect(JSON.parse(res.body.toString())).toEqual({ error: 'EDGE_ERR_AUTH_DENIED', reason: `backend_${status}` });
    }
    expect(mw.requests).toHaveLength(1);
    expect(origin.requests).toHaveLength(0);
  });

  it('a huge middleware body is not read into memory: the verdict stands, the read stops at the cap', async () => {
    // A middleware that answers 200 and then streams an endless body, counting what it could send.
    let sent = 0;
    let closedAt = 0;
    const endless = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const piece = Buffer.alloc(16 * 1024, 0x61);
      const pump = (): void => {
        for (let i = 0; i < 64 && !res.destroyed; i++) {
          sent += piece.length;
          if (!res.write(piece)) return void res.once('drain', pump);
        }
        if (!res.destroyed && sent < 256 * 1024 * 1024) setImmediate(pump);
      };
      res.on('close', () => (closedAt = Date.now()));
      pump();
    });
    await new Promise<void>((r) => endless.listen(0, '127.0.0.1', () => r()));
    try {
      const { edge } = await setup({ backend: { url: `http://127.0.0.1:${(endless.address() as AddressInfo).port}/auth`, maxBodyBytes: '16KiB' } });
      const res = await httpRequest(`${edge.url}/play/ch1/index.m3u8?token=t`, { timeoutMs: 5000 });
      expect(res.status).toBe(200);
      await waitFor(() => closedAt > 0, { timeoutMs: 3000 });
      // What was sent is bounded by socket buffers, not by the 256 MiB the middleware wanted to send.
      expect(sent).toBeLessThan(16 * 1024 * 1024);
    } finally {
      endless.closeAllConnections();
      await new Promise((r) => endless.close(r));
    }
  });

  it('a deny with X-Location redirects the player (302)', async () => {
    const { edge, mw, origin } = await setup();
    mw.setBehavior({ kind: 'deny', status: 403, location: 'http://promo.example.com/play/promo/index.m3u8' });
    const res = await httpRequest(`${edge.url}/play/ch1/index.m3u8?token=bad`);
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe('http://promo.example.com/play/promo/index.m3u8');
    expect(origin.requests).toHaveLength(0);
  });
});

describe('middleware unavailable', () => {
  const unavailable = [
    ['down (connection refused)', 'refused'],
    ['5xx', 'http_5xx'],
    ['slow (timeout)', 'timeout'],
    ['closing the socket', 'refused'],
    ['sending garbage', 'invalid'],
  ] as const;

  it.each(unavailable)('%s → allowed by default, counted and logged', async (what, outcome) => {
    const { edge, mw } = await setup({ backend: { timeout: '300ms' } });
    if (what.startsWith('down')) await mw.close();
    else if (what === '5xx') mw.setBehavior({ kind: '5xx', status: 503 });
    else if (what.startsWith('slow')) mw.setBehavior({ kind: 'delay', ms: 2000, then: 'allow' });
    else if (what.startsWith('closing')) mw.setBehavior('close');
    else mw.setBehavior('garbage');
    const res = await httpRequest(`${edge.url}/play/ch1/index.m3u8?token=t`);
    expect(res.status).toBe(200);
    expect(await edge.metric('edge_auth_failure_mode_allowed_total')).toBe(1);
    expect(await edge.metric('edge_auth_backend_requests_total', { outcome })).toBe(1);
    expect(await edge.metric('edge_auth_decisions_total', { result: 'allow', source: 'default' })).toBe(1);
    expect(edge.logs.some((l) => String(l['msg']).startsWith('middleware unavailable'))).toBe(true);
  });

  it('says what to do next: at startup when the middleware URL is unreachable, and per outage episode', async () => {
    const { edge } = await setup();
    const { edge: dead } = await setup({ backend: { url: 'http://127.0.0.1:1/auth' } });
    const hint = await waitFor(() => dead.logs.find((l) => String(l['msg']).startsWith('middleware URL unreachable')), { timeoutMs: 3000 });
    expect(String(hint['msg'])).toBe('middleware URL unreachable (ECONNREFUSED): check --backend; the edge allows viewers by default (--default-action allow)');
    // The edge whose middleware is up says nothing of the kind.
    expect(edge.logs.some((l) => String(l['msg']).startsWith('middleware URL unreachable'))).toBe(false);
    await httpRequest(`${dead.url}/play/ch1/index.m3u8?token=t`);
    const episode = dead.logs.find((l) => String(l['msg']).startsWith('middleware unavailable'));
    expect(String(episode?.['msg'])).toContain('check --backend and the middleware; meanwhile the edge allows viewers by default');
  });

  it('timeouts are bounded by backend.timeout', async () => {
    const { edge, mw } = await setup({ backend: { timeout: '200ms' } });
    mw.setBehavior('hang');
    const started = Date.now();
    const res = await httpRequest(`${edge.url}/play/ch1/index.m3u8?token=t`);
    expect(res.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('the unavailable log line is rate-limited', async () => {
    const { edge, mw } = await setup();
    mw.setBehavior({ kind: '5xx' });
    for (let i = 0; i < 10; i++) await httpRequest(`${edge.url}/play/ch${i}/index.m3u8?token=t`);
    expect(await edge.metric('edge_auth_failure_mode_allowed_total')).toBe(10);
    expect(edge.logs.filter((l) => String(l['msg']).startsWith('middleware unavailable'))).toHaveLength(1);
  });

  it('default action deny refuses with 403 and a reason', async () => {
    const { edge, mw, origin } = await setup({ auth: { defaultAction: 'deny' } });
    mw.setBehavior({ kind: '5xx' });
    const res = await httpRequest(`${edge.url}/play/ch1/index.m3u8?token=t`);
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body.toString())).toEqual({ error: 'EDGE_ERR_AUTH_UNAVAILABLE', reason: 'middleware_unavailable' });
    expect(origin.requests).toHaveLength(0);
    expect(await edge.metric('edge_auth_failure_mode_allowed_total')).toBe(0);
  });

  it('keep-granted: a granted session keeps playing through an outage, a new one is refused', async () => {
    const { edge, mw } = await setup({ auth: { defaultAction: 'keep-granted', allowTtl: '1s', staleGrace: '30s' } });
    const master = await httpRequest(`${edge.url}/play/ch1/v1/index.m3u8?token=granted`);
    expect(master.status).toBe(200);
    const sid = /edge_session=([A-Za-z0-9_-]{22})/.exec(master.body.toString())![1]!;
    mw.setBehavior({ kind: '5xx' });
    await sleep(1100); // the allow expires: the next request re-checks against a dead middleware
    for (let i = 0; i < 3; i++) {
      const seg = await httpRequest(`${edge.url}/play/ch1/v1/seg-${i}.ts?edge_session=${sid}`);
      expect(seg.status).toBe(200);
      await sleep(50);
    }
    await waitFor(() => mw.requests.length >= 2);
    expect(edge.app.sessions.store.get(sid)?.endReason).toBeUndefined();
    const fresh = await httpRequest(`${edge.url}/play/ch1/index.m3u8?token=newcomer`);
    expect(fresh.status).toBe(403);
    expect(JSON.parse(fresh.body.toString()).error).toBe('EDGE_ERR_AUTH_UNAVAILABLE');
  });
});

describe('re-checks', () => {
  it('an expired allow is served while the re-check runs; a deny from the re-check ends the session', async () => {
    const { edge, mw } = await setup({ auth: { allowTtl: '1s', denyTtl: '1s' } });
    const master = await httpRequest(`${edge.url}/play/ch1/v1/index.m3u8?token=t`);
    const sid = /edge_session=([A-Za-z0-9_-]{22})/.exec(master.body.toString())![1]!;
    await sleep(1100);
    // The re-check is slow and will deny: the request that notices the expiry is not held up.
    mw.setBehavior({ kind: 'delay', ms: 500, then: { kind: 'deny', status: 403 } });
    const started = Date.now();
    const stale = await httpRequest(`${edge.url}/play/ch1/v1/seg-1.ts?edge_session=${sid}`);
    expect(stale.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(400);
    await waitFor(() => edge!.app.sessions.store.get(sid)?.endReason !== undefined, { timeoutMs: 3000 });
    const after = await httpRequest(`${edge.url}/play/ch1/v1/seg-2.ts?edge_session=${sid}`);
    expect(after.status).toBe(403);
    expect(JSON.parse(after.body.toString()).error).toBe('EDGE_ERR_SESSION_ENDED');
    expect(mw.requests.map((r) => r.rawQuery)).toEqual(['token=t', 'token=t']);
  });
});
