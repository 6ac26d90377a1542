// Operator issue, part 2: browser players on another origin. The edge's own answers (403 denied,
// session ended, 404, 405, 502, 504) carried no Access-Control-Allow-Origin, so a page on another
// origin saw "network error, status 0" for a deny; OPTIONS preflights got 405. Now, with
// cors.origins: every answer of the public listener carries the CORS headers of an allowed Origin
// (errors and redirects included), preflights get 204 without opening a session, and the origin's
// own CORS headers pass through, never doubled. Without cors.origins: no CORS header at all.
import { afterEach, describe, expect, it } from 'vitest';
import { CORS_EXPOSED_HEADERS } from '../../src/proxy/cors.js';
import { httpRequest, openStream, type HttpResult, type OpenStream } from '../helpers/client.js';
import { useStack } from '../helpers/stack.js';

const APP = 'http://tv.example.com';
const OTHER = 'http://evil.example.net';
const start = useStack({ origin: { segmentBytes: 4096 } });
const streams: OpenStream[] = [];

afterEach(() => {
  for (const s of streams.splice(0)) s.destroy();
});

/** Every value of one response header, as sent (a doubled header shows up twice). */
function headerValues(r: Pick<HttpResult, 'rawHeaders'>, name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < r.rawHeaders.length; i += 2) if (r.rawHeaders[i]!.toLowerCase() === name) out.push(r.rawHeaders[i + 1]!);
  return out;
}

function corsHeaderNames(r: Pick<HttpResult, 'rawHeaders'>): string[] {
  return r.rawHeaders.filter((_, i) => i % 2 === 0 && r.rawHeaders[i]!.toLowerCase().startsWith('access-control-')).map((n) => n.toLowerCase());
}

/** What a page on APP can read: exactly one ACAO naming it, Vary: Origin, the exposed headers. */
function expectReadableBy(r: HttpResult, origin: string): void {
  expect(headerValues(r, 'access-control-allow-origin')).toEqual([origin]);
  expect(headerValues(r, 'vary').join(',')).toMatch(/\bOrigin\b/);
  expect(headerValues(r, 'access-control-expose-headers')).toEqual([CORS_EXPOSED_HEADERS]);
}

const markerOf = (playlist: Buffer): string => /edge_session=([A-Za-z0-9_-]{22})/.exec(playlist.toString())![1]!;
const from = (origin: string, extra: Record<string, string> = {}): { headers: Record<string, string> } => ({ headers: { origin, ...extra } });

describe('without cors.origins (the default): no CORS header, as before', () => {
  it('answers carry no Access-Control-* header, even to a request with an Origin; OPTIONS gets a clean 405', async () => {
    const { edge, mw, origin } = await start();
    const ok = await httpRequest(`${edge.url}/play/ch1/v1/index.m3u8?token=t`, from(APP));
    expect(ok.status).toBe(200);
    expect(corsHeaderNames(ok)).toEqual([]);
    mw.setBehavior('deny');
    const denied = await httpRequest(`${edge.url}/play/ch2/index.m3u8?token=x`, from(APP));
    expect(denied.status).toBe(403);
    expect(corsHeaderNames(denied)).toEqual([]);

    const options = await httpRequest(`${edge.url}/play/ch1/index.m3u8?token=t`, { method: 'OPTIONS', headers: { origin: APP, 'access-control-request-method': 'GET' } });
    expect(options.status).toBe(405);
    expect(options.headers['allow']).toBe('GET, HEAD');
    expect(JSON.parse(options.body.toString())).toEqual({ error: 'EDGE_ERR_METHOD_NOT_ALLOWED' });
    expect(corsHeaderNames(options)).toEqual([]);
    expect(mw.requests).toHaveLength(2);
    expect(origin.requests.filter((r) => r.method === 'OPTIONS')).toEqual([]);
  });
});

describe('with cors.origins', () => {
  const cors = { cors: { origins: [APP, 'null'] } };

  it('a deny is a 403 with its JSON reason the page can read; so is a session ended by a kick', async () => {
    const { edge, mw } = await start(cors);
    mw.setBehavior('deny');
    const denied = await httpRequest(`${edge.url}/play/ch1/index.m3u8?token=bad`, from(APP));
    expect(denied.status).toBe(403);
    expectReadableBy(denied, APP);
    expect(JSON.parse(denied.body.toString())).toEqual({ error: 'EDGE_ERR_AUTH_DENIED', reason: 'backend_403' });

    mw.setBehavior('allow');
    const playlist = await httpRequest(`${edge.url}/play/ch1/v1/index.m3u8?token=good`, from(APP));
    expect(playlist.status).toBe(200);
    expectReadableBy(playlist, APP);
    const sid = markerOf(playlist.body);
    const segment = await httpRequest(`${edge.url}/play/ch1/v1/seg-1.ts?edge_session=${sid}`, from(APP));
    expect(segment.status).toBe(200);
    expectReadableBy(segment, APP);

    expect(edge.app.sessions.kick(sid)).toBe(true);
    const ended = await httpRequest(`${edge.url}/play/ch1/v1/seg-2.ts?edge_session=${sid}`, from(APP));
    expect(ended.status).toBe(403);
    expectReadableBy(ended, APP);
    expect(JSON.parse(ended.body.toString())).toEqual({ error: 'EDGE_ERR_SESSION_ENDED', reason: 'kicked' });
  });

  it("the edge's other answers carry them too: 404, 405, 400, 302 (X-Location), 502, 504, 503 and an MPEG-TS stream", async () => {
    const { edge, mw, origin } = await start({ ...cors, upstream: { headersTimeout: '300ms', streamConnections: 1 } });
    const notFound = await httpRequest(`${edge.url}/nothing-here`, from(APP));
    expect(notFound.status).toBe(404);
    expectReadableBy(notFound, APP);

    const post = await httpRequest(`${edge.url}/play/ch1/index.m3u8?token=t`, { method: 'POST', headers: { origin: APP } });
    expect(post.status).toBe(405);
    expect(post.headers['allow']).toBe('GET, HEAD, OPTIONS');
    expectReadableBy(post, APP);

    const bad = await httpRequest(`${edge.url}/play/ch1/index.m3u8?token=a&token=b`, from(APP));
    expect(bad.status).toBe(400);
    expectReadableBy(bad, APP);

    mw.setBehavior({ kind: 'deny', location: 'http://promo.example.com/ad.m3u8' });
    const redirect = await httpRequest(`${edge.url}/play/ch1/index.m3u8?token=promo`, from(APP));
    expect(redirect.status).toBe(302);
    expectReadableBy(redirect, APP);

    mw.setBehavior('allow');
    origin.setFault('/play/ch3/v1/seg-1.ts', { resetBeforeHeaders: true });
    const reset = await httpRequest(`${edge.url}/play/ch3/v1/seg-1.ts?token=t3`, from(APP));
    expect(reset.status).toBe(502);
    expectReadableBy(reset, APP);
    origin.setFault('/play/ch3/v1/seg-2.ts', { delayHeadersMs: 2000 });
    const slow = await httpRequest(`${edge.url}/play/ch3/v1/seg-2.ts?token=t3`, from(APP));
    expect(slow.status).toBe(504);
    expectReadableBy(slow, APP);

    const stream = await openStream(`${edge.url}/play/news?token=ts`, from(APP));
    streams.push(stream);
    expect(stream.status).toBe(200);
    expect(stream.headers['access-control-allow-origin']).toBe(APP);
    const full = await httpRequest(`${edge.url}/play/sports?token=ts2`, from(APP));
    expect(full.status).toBe(503);
    expect(full.headers['retry-after']).toBe('5');
    expectReadableBy(full, APP);
  });

  it('a page from another origin, or a request without Origin, gets no CORS header (the browser blocks it)', async () => {
    const { edge } = await start(cors);
    const other = await httpRequest(`${edge.url}/play/ch1/v1/index.m3u8?token=t`, from(OTHER));
    expect(other.status).toBe(200);
    expect(corsHeaderNames(other)).toEqual([]);
    const none = await httpRequest(`${edge.url}/play/ch1/v1/index.m3u8?token=t`);
    expect(corsHeaderNames(none)).toEqual([]);
    // Origin: null (a Smart TV app loaded from a file) is listed here, so it is allowed.
    const tv = await httpRequest(`${edge.url}/play/ch1/v1/index.m3u8?token=t`, from('null'));
    expectReadableBy(tv, 'null');
  });

  it('a preflight gets 204 with the methods and only the players\' headers, and opens no session, asks no middleware, reaches no origin', async () => {
    const { edge, mw, origin } = await start(cors);
    const preflight = await httpRequest(`${edge.url}/play/ch1/v1/seg-1.ts?edge_session=whatever&a=%zz`, {
      method: 'OPTIONS',
      headers: { origin: APP, 'access-control-request-method': 'GET', 'access-control-request-headers': 'Range, X-Evil, x-playback-session-id' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.body.length).toBe(0);
    expect(preflight.headers).toMatchObject({
      allow: 'GET, HEAD, OPTIONS',
      'access-control-allow-origin': APP,
      'access-control-allow-methods': 'GET, HEAD, OPTIONS',
      'access-control-allow-headers': 'range, x-playback-session-id',
      'access-control-max-age': '600',
      vary: 'Origin, Access-Control-Request-Headers',
    });
    expect(headerValues(preflight, 'access-control-allow-origin')).toHaveLength(1);

    // Another origin's preflight: a clean 204 without CORS headers, which the browser reads as "not allowed".
    const foreign = await httpRequest(`${edge.url}/play/ch1/index.m3u8`, { method: 'OPTIONS', headers: { origin: OTHER, 'access-control-request-method': 'GET' } });
    expect(foreign.status).toBe(204);
    expect(foreign.headers['allow']).toBe('GET, HEAD, OPTIONS');
    expect(corsHeaderNames(foreign)).toEqual([]);

    expect(mw.requests).toEqual([]);
    expect(origin.requests).toEqual([]);
    expect(edge.app.sessions.store.size).toBe(0);
    expect(edge.app.sessions.table.size).toBe(0);
    expect(await edge.metric('edge_requests_total', { kind: 'other', code: '2xx' })).toBe(2);
  });

  it("the origin's own CORS headers pass as they are: never doubled, never mixed with the edge's", async () => {
    const { edge, origin } = await start(cors);
    origin.setFault('/play/ch1/v1/seg-1.ts', { headers: { 'Access-Control-Allow-Origin': '*', 'Access-Control-Expose-Headers': 'X-Origin-Only' } });
    const seg = await httpRequest(`${edge.url}/play/ch1/v1/seg-1.ts?token=t`, from(APP));
    expect(seg.status).toBe(200);
    expect(headerValues(seg, 'access-control-allow-origin')).toEqual(['*']);
    expect(headerValues(seg, 'access-control-expose-headers')).toEqual(['X-Origin-Only']);
    // A rewritten playlist keeps the origin's policy the same way.
    origin.setFault('/play/ch1/v1/index.m3u8', { headers: { 'access-control-allow-origin': APP } });
    const pl = await httpRequest(`${edge.url}/play/ch1/v1/index.m3u8?token=t`, from(APP));
    expect(pl.status).toBe(200);
    expect(pl.body.toString()).toContain('edge_session=');
    expect(headerValues(pl, 'access-control-allow-origin')).toEqual([APP]);
    expect(headerValues(pl, 'access-control-expose-headers')).toEqual([]);
  });

  it('`*`: Access-Control-Allow-Origin: * for every origin, no Vary; credentials name the origin', async () => {
    const { edge } = await start({ cors: { origins: ['*'] } });
    const any = await httpRequest(`${edge.url}/play/ch1/v1/index.m3u8?token=t`, from(OTHER));
    expect(headerValues(any, 'access-control-allow-origin')).toEqual(['*']);
    expect(headerValues(any, 'vary').join(',')).not.toMatch(/\bOrigin\b/);
    expect(headerValues(any, 'access-control-allow-credentials')).toEqual([]);

    const { edge: withCookies } = await start({ cors: { origins: [`${APP}:80/`], credentials: true, maxAge: '2m' } });
    const r = await httpRequest(`${withCookies.url}/play/ch1/v1/index.m3u8?token=t`, from(APP));
    expectReadableBy(r, APP); // written with the default port and a slash, matched as the browser sends it
    expect(r.headers['access-control-allow-credentials']).toBe('true');
    const p = await httpRequest(`${withCookies.url}/play/ch1/index.m3u8`, { method: 'OPTIONS', headers: { origin: APP, 'access-control-request-method': 'GET' } });
    expect(p.headers).toMatchObject({ 'access-control-allow-credentials': 'true', 'access-control-max-age': '120' });
    expect(p.headers['access-control-allow-headers']).toBeUndefined();
  });
});
