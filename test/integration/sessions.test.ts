// The heart of the core issue: one session, one middleware call, however many playlist and
// segment requests follow, even after the token died at the middleware.
import { describe, expect, it } from 'vitest';
import { httpRequest } from '../helpers/client.js';
import type { TestMiddlewareOptions } from '../helpers/middleware.js';
import { useStack, type Stack } from '../helpers/stack.js';
import { playHls, playlistUris } from '../helpers/player.js';
import { sleep } from '../helpers/wait.js';

const start = useStack({ origin: { segmentBytes: 4096 } });
const setup = (file: Record<string, unknown> = {}, mwOptions: TestMiddlewareOptions = {}): Promise<Stack> => start(file, { middleware: mwOptions });

describe('HLS sessions', () => {
  it('rewrites every URI of the master and media playlists to carry the session', async () => {
    const { edge, origin } = await setup();
    const master = await httpRequest(`${edge.url}/play/ch1/index.m3u8?token=t1`);
    expect(master.status).toBe(200);
    expect(master.headers['cache-control']).toBe('private, no-cache');
    const masterUris = playlistUris(master.body.toString(), `${edge.url}/play/ch1/index.m3u8`);
    expect(masterUris.length).toBeGreaterThanOrEqual(4); // 2 variants + audio + I-frames
    const sessionIds = new Set(masterUris.map((u) => new URL(u).searchParams.get('edge_session')));
    expect(sessionIds.size).toBe(1);
    const [sid] = [...sessionIds];
    expect(sid).toMatch(/^[A-Za-z0-9_-]{22}$/);
    for (const u of masterUris) expect(new URL(u).origin).toBe(edge.url);

    const media = await httpRequest(masterUris[0]!);
    const text = media.body.toString();
    expect(text).toContain('#EXT-X-KEY');
    const mediaUris = playlistUris(text, masterUris[0]!);
    // relative, root-relative and absolute-to-upstream URIs all come back through the edge, tagged
    for (const u of mediaUris) {
      expect(new URL(u).origin).toBe(edge.url);
      expect(new URL(u).searchParams.get('edge_session')).toBe(sid);
    }
    expect(text).not.toContain(origin.url);
    // Neither the marker nor (by default) the token reaches the upstream: the edge authorizes.
    await httpRequest(mediaUris.at(-1)!);
    for (const r of origin.requests) expect(r.url).not.toContain('edge_session');
    expect(origin.requests.find((r) => r.path === '/play/ch1/index.m3u8')?.url).toBe('/play/ch1/index.m3u8');
  });

  it('upstream.forwardToken passes the token on to an origin that checks it itself; the rest of the query too', async () => {
    const { edge, origin } = await setup({ upstream: { forwardToken: true } });
    expect((await httpRequest(`${edge.url}/play/ch1/index.m3u8?token=t1&x=2`)).status).toBe(200);
    expect(origin.requests.find((r) => r.path === '/play/ch1/index.m3u8')?.url).toBe('/play/ch1/index.m3u8?token=t1&x=2');
  });

  it('a player following rewritten playlists for 30 requests causes exactly one middleware call', async () => {
    const { edge, mw } = await setup();
    const steps = await playHls(`${edge.url}/play/ch1/index.m3u8?token=t1`, 30);
    expect(steps).toHaveLength(30);
    expect(steps.filter((s) => s.status !== 200)).toEqual([]);
    expect(steps.filter((s) => s.url.includes('.ts')).length).toBeGreaterThan(5);
    expect(mw.requests).toHaveLength(1);
    expect(await edge.metric('edge_auth_decisions_total', { result: 'allow', source: 'cache' })).toBeGreaterThanOrEqual(29);
  });

  it('keeps playing after its Ministra token expired at the middleware', async () => {
    const { edge, mw } = await setup({}, { behavior: 'ministra', ministraTtlMs: 1000 });
    const token = mw.issueMinistraToken();
    const first = await playHls(`${edge.url}/play/ch1/v1/index.m3u8?token=${token}`, 5);
    expect(first.map((s) => `${s.status} ${s.url}`)).toEqual(first.map((s) => `200 ${s.url}`));
    await sleep(1100);
    // The portal has forgotten the token …
    const direct = await httpRequest(`${mw.url}/check?token=${token}`);
    expect(direct.status).toBe(403);
    // … the session plays on from the edge's store: same playlist URL with its marker, and segments.
    const again = await playHls(first[1]!.url.replace(/seg-\d+\.ts/, 'index.m3u8'), 10);
    expect(again.every((s) => s.status === 200)).toBe(true);
    expect(mw.requests.filter((r) => r.path === '/auth')).toHaveLength(1);
  });

  it('50 concurrent first requests of one session → one middleware call', async () => {
    const { edge, mw } = await setup();
    mw.setBehavior({ kind: 'delay', ms: 150, then: 'allow' });
    const results = await Promise.all(Array.from({ length: 50 }, () => httpRequest(`${edge.url}/play/ch1/index.m3u8?token=same`)));
    expect(results.map((r) => r.status)).toEqual(Array(50).fill(200));
    expect(mw.requests).toHaveLength(1);
    expect(await edge.metric('edge_auth_decisions_total', { source: 'coalesced' })).toBe(49);
  });

  it('a reload of the original URL joins the session; another IP, UA or token does not', async () => {
    const { edge, mw } = await setup();
    await httpRequest(`${edge.url}/play/ch1/index.m3u8?token=t1`, { headers: { 'user-agent': 'VLC/3.0' } });
    await httpRequest(`${edge.url}/play/ch1/index.m3u8?token=t1`, { headers: { 'user-agent': 'VLC/3.0' } });
    expect(mw.requests).toHaveLength(1);
    await httpRequest(`${edge.url}/play/ch1/index.m3u8?token=t1`, { headers: { 'user-agent': 'Other/1.0' } });
    expect(mw.requests).toHaveLength(2);
    await httpRequest(`${edge.url}/play/ch1/index.m3u8?token=t2`, { headers: { 'user-agent': 'VLC/3.0' } });
    expect(mw.requests).toHaveLength(3);
    await httpRequest(`${edge.url}/play/ch2/index.m3u8?token=t1`, { headers: { 'user-agent': 'VLC/3.0' } });
    expect(mw.requests).toHaveLength(4);
  });
});

describe('markers get no free pass', () => {
  it('with session.bindIp, a marker used from another client IP is a new session the middleware decides', async () => {
    const { edge, mw } = await setup({ session: { bindIp: true }, proxy: { trustedProxies: ['127.0.0.1/32'] } });
    const from = (ip: string): { headers: Record<string, string> } => ({ headers: { 'x-forwarded-for': ip } });
    const pl = await httpRequest(`${edge.url}/play/ch1/v1/index.m3u8?token=t`, from('198.51.100.1'));
    const sid = /edge_session=([A-Za-z0-9_-]{22})/.exec(pl.body.toString())![1]!;
    mw.setBehavior({ kind: 'deny', status: 403 });
    expect((await httpRequest(`${edge.url}/play/ch1/v1/seg-1.ts?edge_session=${sid}`, from('198.51.100.1'))).status).toBe(200);
    expect((await httpRequest(`${edge.url}/play/ch1/v1/seg-1.ts?edge_session=${sid}`, from('203.0.113.9'))).status).toBe(403);
    expect(mw.requests).toHaveLength(2);
    expect(mw.requests[1]!.headers['x-real-ip']).toBe('203.0.113.9');
  });

  it('a tampered, unknown or foreign-channel marker is a new session the middleware decides', async () => {
    const { edge, mw, origin } = await setup();
    const master = await httpRequest(`${edge.url}/play/ch1/index.m3u8?token=good`);
    const sid = /edge_session=([A-Za-z0-9_-]{22})/.exec(master.body.toString())![1]!;
    mw.setBehavior({ kind: 'deny', status: 403 });
    mw.reset();
    const before = origin.requests.length;

    const tampered = sid.slice(0, -1) + (sid.endsWith('A') ? 'B' : 'A');
    for (const marker of [tampered, 'x'.repeat(22), 'short', sid + 'extra']) {
      const res = await httpRequest(`${edge.url}/play/ch1/v1/seg-1.ts?edge_session=${marker}`);
      expect(res.status, marker).toBe(403);
    }
    // The real marker for another channel: denied too.
    const foreign = await httpRequest(`${edge.url}/play/ch2/v1/seg-1.ts?edge_session=${sid}`);
    expect(foreign.status).toBe(403);
    expect(mw.requests.length).toBeGreaterThanOrEqual(2);
    expect(origin.requests.length).toBe(before);
    // The genuine marker on its own channel still plays without asking.
    const ok = await httpRequest(`${edge.url}/play/ch1/v1/seg-1.ts?edge_session=${sid}`);
    expect(ok.status).toBe(200);
  });
});
