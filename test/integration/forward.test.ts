// The forward path: what goes to the origin, what comes back to the player, and what the edge
// does when the origin misbehaves or the player walks away mid-response.
import http from 'node:http';
import { describe, expect, it } from 'vitest';
import { HttpClientError, httpRequest } from '../helpers/client.js';
import type { TestOriginOptions } from '../helpers/origin.js';
import { REFUSED_PORT } from '../helpers/ports.js';
import { useStack, type Stack } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

const stack = useStack({ origin: { segmentBytes: 4096 } });
/** The per-request forward path: the edge cache (its own tests: media-cache.test.ts) is off here. */
const start: typeof stack = (edgeConfig = {}, options) => stack({ cache: { size: 0, playlistTtl: '0s' }, ...edgeConfig }, options);
const setup = (file: Record<string, unknown> = {}, originOptions: TestOriginOptions = {}): Promise<Stack> => start(file, { origin: originOptions });

function errorOf(res: { body: Buffer }): unknown {
  return JSON.parse(res.body.toString('utf8'));
}

/** A port on 127.0.0.1 that nothing listens on (bound once, then closed). */
/** Nothing listens there (test/helpers/ports.ts). */
async function closedPort(): Promise<number> {
  return Promise.resolve(REFUSED_PORT);
}

/**
 * GETs `target`, and once the first body chunk arrived, stops reading and destroys the connection
 * after `holdMs`. Resolves with what arrived before the abort once the connection is closed (also
 * when it closes early, or at `timeoutMs`); rejects only when no response arrived at all.
 */
function abortAfterFirstChunk(target: string, opts: { holdMs?: number; timeoutMs?: number; headers?: Record<string, string> } = {}): Promise<{ status: number; received: number; complete: boolean }> {
  const u = new URL(target);
  return new Promise((resolve, reject) => {
    let received = 0;
    let status = 0;
    let complete = false;
    const timer = setTimeout(() => req.destroy(new Error('abortAfterFirstChunk: timeout')), opts.timeoutMs ?? 5000);
    const req = http.request({ host: u.hostname, port: u.port, path: target.slice(u.origin.length), headers: opts.headers, agent: false }, (res) => {
      status = res.statusCode ?? 0;
      res.on('error', () => undefined);
      res.on('end', () => (complete = true));
      res.once('data', (chunk: Buffer) => {
        received += chunk.length;
        res.pause();
        if ((opts.holdMs ?? 0) > 0) setTimeout(() => req.destroy(), opts.holdMs);
        else req.destroy();
      });
    });
    req.on('error', () => undefined);
    req.on('close', () => {
      clearTimeout(timer);
      if (status === 0) reject(new Error(`abortAfterFirstChunk: no response from ${target}`));
      else resolve({ status, received, complete });
    });
    req.end();
  });
}

describe('methods and paths', () => {
  it('HEAD answers with the status and Content-Length of the origin and no body', async () => {
    const { edge, origin } = await setup();
    const res = await httpRequest(`${edge.url}/play/ch1/v1/seg-3.ts?token=t`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers['content-length']).toBe('4096');
    expect(res.headers['content-type']).toBe('video/mp2t');
    expect(res.body.length).toBe(0);
    expect(origin.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['HEAD /play/ch1/v1/seg-3.ts']);
  });

  it('HEAD on a playlist does not claim the upstream length: a GET returns a rewritten, per-viewer body', async () => {
    const { edge } = await setup();
    const head = await httpRequest(`${edge.url}/play/ch1/v1/index.m3u8?token=t`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBeUndefined();
    expect(head.headers['etag']).toBeUndefined();
    expect(head.headers['cache-control']).toBe('private, no-cache');
    expect(head.body.length).toBe(0);
  });

  it('Range: bytes=100-199 → 206 with exactly those bytes', async () => {
    const { edge, origin } = await setup();
    const res = await httpRequest(`${edge.url}/play/ch1/v1/seg-5.ts?token=t`, { headers: { range: 'bytes=100-199' } });
    expect(res.status).toBe(206);
    expect(res.headers['content-range']).toBe('bytes 100-199/4096');
    expect(res.headers['content-length']).toBe('100');
    expect(res.body.equals(origin.expectedBytes('/play/ch1/v1/seg-5.ts').subarray(100, 200))).toBe(true);
    expect(origin.requests[0]!.headers.range).toBe('bytes=100-199');
  });

  // libavformat (ffmpeg, VLC's and Kodi's HLS input) sends `Range: bytes=0-` on every HTTP request,
  // playlists included, and origins that honour Range answer 206.
  it('a playlist requested with Range: bytes=0- is still rewritten (marker on every URI, no upstream URL)', async () => {
    const { edge, origin } = await setup();
    const res = await httpRequest(`${edge.url}/play/ch1/v1/index.m3u8?token=t`, { headers: { range: 'bytes=0-' } });
    expect([200, 206]).toContain(res.status);
    const text = res.body.toString('utf8');
    expect(text).toContain('#EXTM3U');
    expect(text).not.toContain(origin.url);
    const segmentLines = text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    expect(segmentLines.length).toBeGreaterThan(0);
    for (const line of segmentLines) expect(line).toMatch(/[?&]edge_session=[A-Za-z0-9_-]{22}$/);
    expect(res.headers['cache-control']).toBe('private, no-cache');
  });

  it.each(['POST', 'PUT', 'DELETE'])('%s → 405 with Allow: GET, HEAD; neither the origin nor the middleware sees it', async (method) => {
    const { edge, origin, mw } = await setup();
    const res = await httpRequest(`${edge.url}/play/ch1/v1/seg-1.ts?token=t`, { method });
    expect(res.status).toBe(405);
    expect(res.headers['allow']).toBe('GET, HEAD');
    expect(res.headers['content-type']).toBe('application/json');
    expect(errorOf(res)).toEqual({ error: 'EDGE_ERR_METHOD_NOT_ALLOWED' });
    expect(origin.requests).toHaveLength(0);
    expect(mw.requests).toHaveLength(0);
  });

  it.each(['/', '/play', '/play/', '/live/ch1/index.m3u8', '/favicon.ico'])('%s is not a channel → 404 EDGE_ERR_NO_CHANNEL', async (path) => {
    const { edge, origin, mw } = await setup();
    const res = await httpRequest(`${edge.url}${path}`);
    expect(res.status).toBe(404);
    expect(errorOf(res)).toEqual({ error: 'EDGE_ERR_NO_CHANNEL' });
    expect(origin.requests).toHaveLength(0);
    expect(mw.requests).toHaveLength(0);
  });
});

describe('headers', () => {
  it('the origin gets Host = upstream, X-Forwarded-For/X-Real-IP = the client, X-Forwarded-Proto: http; a spoofed XFF is dropped', async () => {
    const { edge, origin } = await setup();
    const res = await httpRequest(`${edge.url}/play/ch1/v1/seg-1.ts?token=t`, {
      headers: { host: 'live.example.com', 'x-forwarded-for': '198.51.100.66', 'x-real-ip': '198.51.100.66', 'x-forwarded-proto': 'https', 'user-agent': 'VLC/3.0' },
    });
    expect(res.status).toBe(200);
    const h = origin.requests[0]!.headers;
    expect(h.host).toBe(`127.0.0.1:${origin.port}`);
    expect(h['x-forwarded-for']).toBe('127.0.0.1');
    expect(h['x-real-ip']).toBe('127.0.0.1');
    expect(h['x-forwarded-proto']).toBe('http');
    expect(h['x-forwarded-host']).toBe('live.example.com');
    expect(h['user-agent']).toBe('VLC/3.0');
    expect(JSON.stringify(origin.requests[0]!.rawHeaders)).not.toContain('198.51.100.66');
  });

  it('hop-by-hop request headers, and the ones the Connection header names, are not forwarded', async () => {
    const { edge, origin } = await setup();
    const res = await httpRequest(`${edge.url}/play/ch1/v1/seg-1.ts?token=t`, {
      headers: {
        connection: 'close, x-custom',
        'x-custom': 'secret',
        'keep-alive': 'timeout=5',
        te: 'trailers',
        upgrade: 'websocket',
        'proxy-connection': 'keep-alive',
        'proxy-authorization': 'Basic dXNlcjpwYXNz',
        'x-end-to-end': 'kept',
      },
    });
    expect(res.status).toBe(200);
    const rec = origin.requests[0]!;
    const sent = new Set(rec.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase()));
    for (const name of ['x-custom', 'keep-alive', 'te', 'upgrade', 'proxy-connection', 'proxy-authorization']) expect(sent.has(name), name).toBe(false);
    expect(rec.headers.connection ?? '').not.toContain('x-custom');
    expect(rec.headers['x-end-to-end']).toBe('kept');
  });

  it('hop-by-hop response headers of the origin do not reach the client', async () => {
    const { edge, origin } = await setup();
    origin.setFault('/play/ch1/v1/seg-1.ts', {
      headers: { connection: 'keep-alive, x-hop', 'x-hop': 'origin-only', 'keep-alive': 'timeout=99', 'proxy-authenticate': 'Basic realm="astra"', 'x-end-to-end': 'kept' },
    });
    const res = await httpRequest(`${edge.url}/play/ch1/v1/seg-1.ts?token=t`);
    expect(res.status).toBe(200);
    expect(res.body.equals(origin.expectedBytes('/play/ch1/v1/seg-1.ts'))).toBe(true);
    expect(res.headers['x-hop']).toBeUndefined();
    expect(res.headers['keep-alive']).toBeUndefined();
    expect(res.headers['proxy-authenticate']).toBeUndefined();
    expect(res.headers.connection ?? '').not.toContain('x-hop');
    expect(res.headers['x-end-to-end']).toBe('kept');
  });

  it('behind a trusted proxy, X-Forwarded-For names the client, for the middleware and the origin', async () => {
    const { edge, origin, mw } = await setup({ proxy: { trustedProxies: ['127.0.0.1/32'] } });
    const res = await httpRequest(`${edge.url}/play/ch1/v1/seg-1.ts?token=t`, { headers: { 'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https' } });
    expect(res.status).toBe(200);
    expect(mw.requests).toHaveLength(1);
    expect(mw.requests[0]!.headers['x-real-ip']).toBe('203.0.113.7');
    const h = origin.requests[0]!.headers;
    expect(h['x-real-ip']).toBe('203.0.113.7');
    expect(h['x-forwarded-for']).toBe('203.0.113.7, 127.0.0.1');
    expect(h['x-forwarded-proto']).toBe('https');
  });
});

describe('upstream failures', () => {
  it('nothing listening upstream → 502 EDGE_ERR_UPSTREAM_REFUSED', async () => {
    const { edge } = await setup({ upstream: { url: `http://127.0.0.1:${await closedPort()}` } });
    const res = await httpRequest(`${edge.url}/play/ch1/v1/seg-1.ts?token=t`);
    expect(res.status).toBe(502);
    expect(errorOf(res)).toEqual({ error: 'EDGE_ERR_UPSTREAM_REFUSED' });
    expect(await edge.metric('edge_upstream_requests_total', { outcome: 'refused' })).toBe(1);
  });

  it('origin resets before headers → 502 EDGE_ERR_UPSTREAM_RESET', async () => {
    const { edge, origin } = await setup();
    origin.setFault('/play/ch1/v1/seg-1.ts', { resetBeforeHeaders: true });
    const res = await httpRequest(`${edge.url}/play/ch1/v1/seg-1.ts?token=t`);
    expect(res.status).toBe(502);
    expect(errorOf(res)).toEqual({ error: 'EDGE_ERR_UPSTREAM_RESET' });
    expect(await edge.metric('edge_upstream_requests_total', { outcome: 'reset' })).toBe(1);
  });

  it('origin slower than upstream.headersTimeout → 504 EDGE_ERR_UPSTREAM_TIMEOUT', async () => {
    const { edge, origin } = await setup({ upstream: { headersTimeout: '300ms' } });
    origin.setFault('/play/ch1/v1/seg-1.ts', { delayHeadersMs: 3000 });
    const started = Date.now();
    const res = await httpRequest(`${edge.url}/play/ch1/v1/seg-1.ts?token=t`);
    expect(res.status).toBe(504);
    expect(errorOf(res)).toEqual({ error: 'EDGE_ERR_UPSTREAM_TIMEOUT' });
    expect(Date.now() - started).toBeLessThan(2500);
    expect(await edge.metric('edge_upstream_requests_total', { outcome: 'timeout' })).toBe(1);
  });

  it('origin resets mid-body → the client connection is destroyed, never a short 200', async () => {
    const { edge, origin } = await setup({}, { segmentBytes: 256 * 1024 });
    origin.setFault('/play/ch1/v1/seg-1.ts', { resetMidBody: true });
    const err = await httpRequest(`${edge.url}/play/ch1/v1/seg-1.ts?token=t`).then(
      (res) => new Error(`expected a failed response, got a complete ${res.status} with ${res.body.length} bytes`),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(HttpClientError);
    const clientErr = err as HttpClientError;
    expect(clientErr.status).toBe(200);
    expect(clientErr.received.length).toBeLessThan(256 * 1024);
    expect(clientErr.received.equals(origin.expectedBytes('/play/ch1/v1/seg-1.ts').subarray(0, clientErr.received.length))).toBe(true);
    await waitFor(async () => (await edge.metric('edge_upstream_requests_total', { outcome: 'reset' })) === 1, { timeoutMs: 2000 });
  });

  it('a playlist over hls.maxPlaylistBytes → 502 EDGE_ERR_PLAYLIST_TOO_LARGE; a small one still passes', async () => {
    const { edge, origin } = await setup({ hls: { maxPlaylistBytes: '1KiB' } }, { windowSize: 60 });
    const direct = await httpRequest(`${origin.url}/play/ch1/v1/index.m3u8`);
    expect(direct.body.length).toBeGreaterThan(2048);
    const res = await httpRequest(`${edge.url}/play/ch1/v1/index.m3u8?token=t`);
    expect(res.status).toBe(502);
    expect(errorOf(res)).toEqual({ error: 'EDGE_ERR_PLAYLIST_TOO_LARGE' });
    expect(await edge.metric('edge_upstream_requests_total', { outcome: 'invalid' })).toBe(1);
    const master = await httpRequest(`${edge.url}/play/ch1/index.m3u8?token=t`);
    expect(master.status).toBe(200);
    expect(master.body.toString()).toContain('#EXTM3U');
  });
});

describe('the player walks away', () => {
  it('a client abort mid-segment closes the upstream connection within 1 s and counts as aborted', async () => {
    const size = 32 * 1024 * 1024;
    const { edge, origin } = await setup({}, { segmentBytes: size, bodyChunks: 64 });
    const result = await abortAfterFirstChunk(`${edge.url}/play/ch1/v1/seg-1.ts?token=t`, { holdMs: 100, timeoutMs: 10_000 });
    const abortedAt = Date.now();
    expect(result.status).toBe(200);
    expect(result.complete).toBe(false);
    expect(result.received).toBeLessThan(size);
    const rec = origin.requests.find((r) => r.path === '/play/ch1/v1/seg-1.ts')!;
    await waitFor(() => rec.connectionClosedAt !== null, { timeoutMs: 1000, message: 'the connection of the aborted response is still open at the origin' });
    expect(rec.connectionClosedAt! - abortedAt).toBeLessThan(1000);
    expect(rec.finished).toBe(false);
    expect(await edge.metric('edge_upstream_requests_total', { outcome: 'aborted' })).toBe(1);
    expect(await edge.metric('edge_upstream_requests_total', { outcome: 'ok' })).toBe(0);
    // undici 7 (nodejs/undici#5845) replaces an aborted connection with a fresh idle one: at most that one may remain.
    expect(origin.activeConnections()).toBeLessThanOrEqual(1);
  });

  it('200 aborted segment downloads leave no upstream connections beyond the pool and one session', async () => {
    const { edge, origin, mw } = await setup({}, { segmentBytes: 1024 * 1024, bodyChunks: 16 });
    const rounds = 200;
    for (let i = 0; i < rounds; i++) {
      const r = await abortAfterFirstChunk(`${edge.url}/play/ch1/v1/seg-${i % 10}.ts?token=t`, { headers: { 'user-agent': 'AbortingPlayer/1.0' } });
      expect(r.status).toBe(200);
    }
    // Every response the origin could not finish had its connection closed …
    await waitFor(() => origin.requests.every((r) => r.finished || r.connectionClosedAt !== null), {
      timeoutMs: 3000,
      message: `unfinished responses on open connections: ${origin.requests.filter((r) => !r.finished && r.connectionClosedAt === null).length}`,
    });
    // … and what stays open is the keep-alive pool of sequential requests: one connection, plus at most
    // the idle replacement undici 7 opens after an abort (nodejs/undici#5845). It does not grow with the aborts.
    await waitFor(() => origin.activeConnections() <= 2, { timeoutMs: 3000, message: `origin connections: ${origin.activeConnections()}` });
    expect(mw.requests).toHaveLength(1);
    expect(edge.app.sessions.store.size).toBe(1);
    await waitFor(
      async () => (await edge.metric('edge_upstream_requests_total', { outcome: 'aborted' })) + (await edge.metric('edge_upstream_requests_total', { outcome: 'ok' })) === rounds,
      { timeoutMs: 3000 },
    );
    expect(await edge.metric('edge_upstream_requests_total', { outcome: 'aborted' })).toBeGreaterThan(rounds / 2);
    // Still healthy afterwards: a full download works and matches the origin.
    const full = await httpRequest(`${edge.url}/play/ch1/v1/seg-3.ts?token=t`, { headers: { 'user-agent': 'AbortingPlayer/1.0' } });
    expect(full.body.equals(origin.expectedBytes('/play/ch1/v1/seg-3.ts'))).toBe(true);
    expect(edge.app.sessions.store.size).toBe(1);
  });
});
