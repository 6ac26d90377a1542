// Hardening issue, items 2, 8 and 13: how the public request is read. Each exploit from the issue
// against a real stack (origin, recording middleware, edge), asserting the status, what the
// origin and the middleware saw, and whether the middleware was asked at all.
import { describe, expect, it } from 'vitest';
import { httpRequest, sendRaw, type HttpResult } from '../helpers/client.js';
import type { MiddlewareRequestRecord } from '../helpers/middleware.js';
import { useStack, type Stack } from '../helpers/stack.js';

const start = useStack({ origin: { segmentBytes: 1024 } });

const errorOf = (res: HttpResult | { body: string }): unknown => JSON.parse(typeof res.body === 'string' ? res.body : res.body.toString());
const originPaths = (s: Stack): string[] => s.origin.requests.map((r) => r.url);

/** Channel `a` is granted to anyone; every other channel is denied by the middleware. */
const onlyChannelA = (r: MiddlewareRequestRecord) => (r.headers['x-channel-id'] === 'a' ? ('allow' as const) : ('deny' as const));

/** Opens a session on channel `a` and returns its marker, from the rewritten playlist. */
async function markerOfChannelA(s: Stack): Promise<string> {
  const res = await httpRequest(`${s.edge.url}/play/a/index.m3u8?token=viewer-a`);
  expect(res.status).toBe(200);
  const marker = /edge_session=([A-Za-z0-9_-]{22})/.exec(res.body.toString())?.[1];
  expect(marker).toBeDefined();
  s.origin.reset();
  s.mw.reset();
  return marker!;
}

describe('item 2: dot-segments cannot carry a marker to another channel or out of /play/', () => {
  it.each([
    ['..', '/play/a/../b/index.m3u8'],
    ['%2e%2e', '/play/a/%2e%2e/b/index.m3u8'],
    ['.%2e', '/play/a/.%2e/b/index.m3u8'],
    ['%2E%2E', '/play/a/%2E%2E/b/index.m3u8'],
  ])("channel a's marker on /play/a/%s/b is a request for channel b: the middleware decides (and denies)", async (_dots, path) => {
    const s = await start({}, { middleware: { behavior: onlyChannelA } });
    const marker = await markerOfChannelA(s);
    const res = await httpRequest(`${s.edge.url}${path}?edge_session=${marker}`);
    expect(res.status).toBe(403);
    expect(errorOf(res)).toEqual({ error: 'EDGE_ERR_AUTH_DENIED', reason: 'backend_403' });
    // The middleware was asked about channel b, at the normalized path; the origin saw nothing.
    expect(s.mw.requests).toHaveLength(1);
    expect(s.mw.requests[0]!.headers['x-channel-id']).toBe('b');
    expect(s.mw.requests[0]!.headers['x-real-path']).toBe('/play/b/index.m3u8');
    expect(originPaths(s)).toEqual([]);
  });

  it('a granted channel b is forwarded at the normalized path, never with the dot-segments', async () => {
    const s = await start();
    const marker = await markerOfChannelA(s);
    const res = await httpRequest(`${s.edge.url}/play/a/%2e%2e/b/v1/seg-1.ts?edge_session=${marker}&x=1`);
    expect(res.status).toBe(200);
    expect(s.mw.requests).toHaveLength(1);
    expect(s.mw.requests[0]!.headers['x-channel-id']).toBe('b');
    expect(s.mw.requests[0]!.rawQuery).toBe('x=1');
    expect(originPaths(s)).toEqual(['/play/b/v1/seg-1.ts?x=1']);
  });

  it('dot-segments inside the channel are resolved and the session still serves it, without a middleware call', async () => {
    const s = await start();
    const marker = await markerOfChannelA(s);
    const res = await httpRequest(`${s.edge.url}/play/a/v1/./x/../seg-1.ts?edge_session=${marker}`);
    expect(res.status).toBe(200);
    expect(s.mw.requests).toHaveLength(0);
    expect(originPaths(s)).toEqual(['/play/a/v1/seg-1.ts']);
  });

  it('/play/../secret with an allowed token reads nothing outside /play/: 404, nobody asked', async () => {
    const s = await start({ rules: { tokenAllow: ['anything'] } });
    for (const path of ['/play/../secret', '/play/a/../../secret', '/play/%2e%2e/secret']) {
      const res = await httpRequest(`${s.edge.url}${path}?token=anything`);
      expect(res.status, path).toBe(404);
      expect(errorOf(res)).toEqual({ error: 'EDGE_ERR_NO_CHANNEL' });
    }
    expect(s.mw.requests).toHaveLength(0);
    expect(originPaths(s)).toEqual([]);
  });

  it.each([
    ['/../play/a/index.m3u8', 'path_above_root'],
    ['/play/a/../../../etc/passwd', 'path_above_root'],
    ['/play/a/..%2Fb/index.m3u8', 'encoded_separator'],
    ['/play/a/..%5Cb/index.m3u8', 'encoded_separator'],
    ['/play/a/index.m3u8%00.ts', 'encoded_control'],
    ['/play/a/%zz', 'malformed_escape'],
    ['//play/a/index.m3u8', 'path_double_slash'],
  ])('%s → 400 %s before anyone is asked', async (path, reason) => {
    const s = await start({ rules: { tokenAllow: ['anything'] } });
    const res = await httpRequest(`${s.edge.url}${path}?token=anything`);
    expect(res.status).toBe(400);
    expect(errorOf(res)).toEqual({ error: 'EDGE_ERR_BAD_REQUEST', reason });
    expect(s.mw.requests).toHaveLength(0);
    expect(originPaths(s)).toEqual([]);
  });

  it('a backslash in the path → 400 invalid_character', async () => {
    const s = await start();
    const res = await sendRaw(s.edge.url, 'GET /play/a/..\\b/index.m3u8?token=t HTTP/1.1\r\nHost: edge');
    expect(res.status).toBe(400);
    expect(errorOf(res)).toEqual({ error: 'EDGE_ERR_BAD_REQUEST', reason: 'invalid_character' });
    expect(s.mw.requests).toHaveLength(0);
    expect(originPaths(s)).toEqual([]);
  });

  it('an escape of an unreserved character names the same channel: %61 is a', async () => {
    const s = await start();
    const marker = await markerOfChannelA(s);
    const res = await httpRequest(`${s.edge.url}/play/%61/v1/seg-1.ts?edge_session=${marker}`);
    expect(res.status).toBe(200);
    expect(s.mw.requests).toHaveLength(0);
    expect(originPaths(s)).toEqual(['/play/a/v1/seg-1.ts']);
  });
});

describe('item 8: the edge reads the query as the middleware will', () => {
  it('?%74oken=BAD is token=BAD: --token-deny BAD refuses it, the middleware is never asked', async () => {
    const s = await start({ rules: { tokenDeny: ['BAD'] } });
    const res = await httpRequest(`${s.edge.url}/play/a/v1/seg-1.ts?%74oken=BAD`);
    expect(res.status).toBe(403);
    expect(errorOf(res)).toEqual({ error: 'EDGE_ERR_AUTH_DENIED', reason: 'token_denied' });
    expect(s.mw.requests).toHaveLength(0);
    expect(originPaths(s)).toEqual([]);
  });

  it('tokens are compared decoded: ?token=a+b%21 is "a b!"', async () => {
    const s = await start({ rules: { tokenAllow: ['a b!'] } });
    expect((await httpRequest(`${s.edge.url}/play/a/v1/seg-1.ts?token=a+b%21`)).status).toBe(200);
    expect(s.mw.requests).toHaveLength(0);
    expect(await s.edge.metric('edge_auth_decisions_total', { result: 'allow', source: 'rule' })).toBe(1);
  });

  it.each([
    ['token=GOOD&token=BAD', 'duplicate_param'],
    ['token=GOOD&%74oken=BAD', 'duplicate_param'],
    ['token&token=BAD', 'duplicate_param'],
    ['token=GOOD&token%5B%5D=BAD', 'ambiguous_param'],
    ['token=GOOD&token%00x=BAD', 'ambiguous_param'],
    ['token=%FF', 'param_not_utf8'],
  ])('?%s → 400 %s: neither first nor last is guessed, nobody is asked', async (query, reason) => {
    const s = await start({ rules: { tokenDeny: ['BAD'] } });
    const res = await httpRequest(`${s.edge.url}/play/a/v1/seg-1.ts?${query}`);
    expect(res.status).toBe(400);
    expect(errorOf(res)).toEqual({ error: 'EDGE_ERR_BAD_REQUEST', reason });
    expect(s.mw.requests).toHaveLength(0);
    expect(originPaths(s)).toEqual([]);
  });

  it('a repeated session marker → 400 duplicate_param, even when one of them is valid', async () => {
    const s = await start();
    const marker = await markerOfChannelA(s);
    for (const q of [`edge_session=${marker}&edge_session=${marker}`, `edge_session=${marker}&edge%5Fsession=x`]) {
      const res = await httpRequest(`${s.edge.url}/play/a/v1/seg-1.ts?${q}`);
      expect(res.status).toBe(400);
      expect(errorOf(res)).toEqual({ error: 'EDGE_ERR_BAD_REQUEST', reason: 'duplicate_param' });
    }
    expect(s.mw.requests).toHaveLength(0);
    expect(originPaths(s)).toEqual([]);
  });

  it('an encoded marker key is our marker: it is honoured and never reaches the origin or the middleware', async () => {
    const s = await start();
    const marker = await markerOfChannelA(s);
    const res = await httpRequest(`${s.edge.url}/play/a/v1/seg-1.ts?x=1&edge%5Fsession=${marker}`);
    expect(res.status).toBe(200);
    expect(s.mw.requests).toHaveLength(0);
    expect(originPaths(s)).toEqual(['/play/a/v1/seg-1.ts?x=1']);
  });

  it.each([
    ['#', 'GET /play/a/v1/seg-1.ts?token=t#x&name=b HTTP/1.1'],
    ['"', 'GET /play/a/v1/seg-1.ts?token="t" HTTP/1.1'],
    ['|', 'GET /play/a/v1/seg-1.ts?token=a|b HTTP/1.1'],
    ['a malformed escape', 'GET /play/a/v1/seg-1.ts?token=100% HTTP/1.1'],
  ])('%s in the query → 400 before anything else', async (what, line) => {
    const s = await start();
    const res = await sendRaw(s.edge.url, `${line}\r\nHost: edge`);
    expect(res.status).toBe(400);
    expect(errorOf(res)).toEqual({ error: 'EDGE_ERR_BAD_REQUEST', reason: what === 'a malformed escape' ? 'malformed_escape' : 'invalid_character' });
    expect(s.mw.requests).toHaveLength(0);
    expect(originPaths(s)).toEqual([]);
  });

  it('smarty: a raw # is refused, and an encoded one cannot cut off name and ip', async () => {
    const s = await start({ backend: { type: 'smarty' } });
    const raw = await sendRaw(s.edge.url, 'GET /play/a/v1/seg-1.ts?token=t#&name=b HTTP/1.1\r\nHost: edge');
    expect(raw.status).toBe(400);
    expect(s.mw.requests).toHaveLength(0);

    const res = await httpRequest(`${s.edge.url}/play/a/v1/seg-1.ts?token=t%23%26name%3Db`);
    expect(res.status).toBe(200);
    expect(s.mw.requests).toHaveLength(1);
    expect(s.mw.requests[0]!.path).toBe('/auth/tvmiddleware/api/streamservice/token/check/');
    expect(s.mw.requests[0]!.rawQuery).toBe('token=t%23%26name%3Db&name=a&ip=127.0.0.1');
  });

  it('stalker gets the token PHP reads from the client URL, encoded once', async () => {
    const s = await start({ backend: { type: 'stalker' } });
    expect((await httpRequest(`${s.edge.url}/play/a/v1/seg-1.ts?%74oken=a+b%2Bc&x=1`)).status).toBe(200);
    expect(s.mw.requests[0]!.rawQuery).toBe('token=a%20b%2Bc');
  });

  it('the http backend still gets the client query byte for byte (Astra), minus the marker', async () => {
    const s = await start();
    const query = 'token=a%2fb+c&x=1&&flag&%74=%7e';
    expect((await httpRequest(`${s.edge.url}/play/a/v1/seg-1.ts?${query}`)).status).toBe(200);
    expect(s.mw.requests[0]!.rawQuery).toBe(query);
    // The origin gets it without the token too (upstream.forwardToken is off by default).
    expect(originPaths(s)).toEqual(['/play/a/v1/seg-1.ts?x=1&&flag&%74=%7e']);
  });
});

describe('item 13: headers', () => {
  it('two Host headers → 400 duplicate_host, nobody asked', async () => {
    const s = await start();
    const res = await sendRaw(s.edge.url, 'GET /play/a/v1/seg-1.ts?token=t HTTP/1.1\r\nHost: edge.example\r\nHost: internal.example');
    expect(res.status).toBe(400);
    expect(errorOf(res)).toEqual({ error: 'EDGE_ERR_BAD_REQUEST', reason: 'duplicate_host' });
    expect(s.mw.requests).toHaveLength(0);
    expect(originPaths(s)).toEqual([]);
    // One Host is fine.
    expect((await sendRaw(s.edge.url, 'GET /play/a/v1/seg-1.ts?token=t HTTP/1.1\r\nHost: edge.example')).status).toBe(200);
  });

  it("a client's Forwarded (and any X-Forwarded-*, X-Original-URL) never reaches the origin", async () => {
    const s = await start();
    const res = await httpRequest(`${s.edge.url}/play/a/v1/seg-1.ts?token=t`, {
      headers: { forwarded: 'for=6.6.6.6;host=internal;proto=https', 'x-forwarded-port': '443', 'x-forwarded-prefix': '/admin', 'x-original-url': '/play/b/v1/seg-1.ts' },
    });
    expect(res.status).toBe(200);
    const h = s.origin.requests[0]!.headers;
    expect(h.forwarded).toBeUndefined();
    expect(h['x-forwarded-port']).toBeUndefined();
    expect(h['x-forwarded-prefix']).toBeUndefined();
    expect(h['x-original-url']).toBeUndefined();
    expect(h['x-forwarded-for']).toBe('127.0.0.1');
  });

  it("behind a trusted proxy, an X-Forwarded-For ending in garbage does not make the client's X-Real-IP believed", async () => {
    const s = await start({ proxy: { trustedProxies: ['127.0.0.1/32'] } });
    const res = await httpRequest(`${s.edge.url}/play/a/v1/seg-1.ts?token=t`, { headers: { 'x-forwarded-for': '203.0.113.7, unknown', 'x-real-ip': '198.51.100.66' } });
    expect(res.status).toBe(200);
    expect(s.mw.requests).toHaveLength(1);
    expect(s.mw.requests[0]!.headers['x-real-ip']).toBe('127.0.0.1');
    const h = s.origin.requests[0]!.headers;
    expect(h['x-real-ip']).toBe('127.0.0.1');
    // The client is then the peer: the chain starts again at the edge.
    expect(h['x-forwarded-for']).toBe('127.0.0.1');
  });
});
