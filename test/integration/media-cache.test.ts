// The edge cache against a real origin: coalescing of concurrent misses, eviction by bytes,
// Cache-Control honoured, Range and HEAD from cached segments, per-session playlists from one
// shared upstream playlist, and authorization never skipped.
import { describe, expect, it } from 'vitest';
import { httpRequest } from '../helpers/client.js';
import { playlistUris } from '../helpers/player.js';
import { useStack, type Stack } from '../helpers/stack.js';

const start = useStack({ origin: { segmentBytes: 256 * 1024 } });

/** Origin requests for one path. */
function fetchesOf(stack: Stack, path: string): number {
  return stack.origin.requests.filter((r) => r.path === path).length;
}

/** A new viewer's session marker, from its first playlist (one middleware call). */
async function viewer(stack: Stack, token: string): Promise<string> {
  const res = await httpRequest(`${stack.edge.url}/play/ch1/v1/index.m3u8?token=${token}`);
  expect(res.status).toBe(200);
  const uri = playlistUris(res.body.toString(), `${stack.edge.url}/play/ch1/v1/index.m3u8`).find((u) => u.includes('seg-'))!;
  return new URL(uri).searchParams.get('edge_session')!;
}

describe('segments', () => {
  it('100 concurrent viewers of one segment: ONE origin fetch, every body the origin’s bytes, streamed as they arrive', async () => {
    const stack = await start({}, { origin: { faults: [{ match: '/play/ch1/v1/seg-7.ts', fault: { delayHeadersMs: 300 } }] } });
    const want = stack.origin.expectedBytes('/play/ch1/v1/seg-7.ts');
    // 100 sessions, each its own token: the middleware decides each, the origin serves the segment once.
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => httpRequest(`${stack.edge.url}/play/ch1/v1/seg-7.ts?token=v${i}`, { timeoutMs: 10_000 })));
    for (const r of results) {
      expect(r.status).toBe(200);
      expect(r.body.equals(want)).toBe(true);
    }
    expect(fetchesOf(stack, '/play/ch1/v1/seg-7.ts')).toBe(1);
    expect(stack.mw.requests).toHaveLength(100);
    const xcache = results.map((r) => r.headers['x-cache']);
    expect(xcache.filter((x) => x === 'MISS')).toHaveLength(1);
    expect(xcache.filter((x) => x === 'COALESCED').length + xcache.filter((x) => x === 'HIT').length).toBe(99);
    expect(await stack.edge.metric('edge_cache_requests_total', { kind: 'segment', result: 'miss' })).toBe(1);
    expect(await stack.edge.metric('edge_upstream_bytes_total', { kind: 'segment' })).toBe(want.length);
    expect(await stack.edge.metric('edge_bytes_sent_total', { kind: 'segment' })).toBe(100 * want.length);
  });

  it('a hit is served from memory: no origin request, the same bytes, X-Cache: HIT', async () => {
    const stack = await start();
    const sid = await viewer(stack, 't1');
    const first = await httpRequest(`${stack.edge.url}/play/ch1/v1/seg-1.ts?edge_session=${sid}`);
    const second = await httpRequest(`${stack.edge.url}/play/ch1/v1/seg-1.ts?edge_session=${sid}`);
    expect(first.headers['x-cache']).toBe('MISS');
    expect(second.headers['x-cache']).toBe('HIT');
    expect(second.body.equals(stack.origin.expectedBytes('/play/ch1/v1/seg-1.ts'))).toBe(true);
    expect(second.headers['content-length']).toBe(String(256 * 1024));
    expect(fetchesOf(stack, '/play/ch1/v1/seg-1.ts')).toBe(1);
  });

  it('is bounded in bytes: least recently used segments are evicted and fetched again', async () => {
    // 1 MiB of cache, 256 KiB segments: four fit.
    const stack = await start({ cache: { size: '1MiB', maxObjectSize: '256KiB' } });
    const sid = await viewer(stack, 't1');
    for (let i = 0; i < 6; i++) expect((await httpRequest(`${stack.edge.url}/play/ch1/v1/seg-${i}.ts?edge_session=${sid}`)).status).toBe(200);
    expect(await stack.edge.metric('edge_cache_bytes')).toBeLessThanOrEqual(1024 * 1024);
    expect(await stack.edge.metric('edge_cache_evictions_total')).toBe(2);
    // seg-0 and seg-1 went; seg-5 is still there.
    await httpRequest(`${stack.edge.url}/play/ch1/v1/seg-5.ts?edge_session=${sid}`);
    await httpRequest(`${stack.edge.url}/play/ch1/v1/seg-0.ts?edge_session=${sid}`);
    expect(fetchesOf(stack, '/play/ch1/v1/seg-5.ts')).toBe(1);
    expect(fetchesOf(stack, '/play/ch1/v1/seg-0.ts')).toBe(2);
  });

  it('Cache-Control: no-store and private are honoured: every request goes upstream', async () => {
    const stack = await start({}, { origin: { faults: [{ match: /seg-2\.ts/, fault: { headers: { 'cache-control': 'no-store' } } }, { match: /seg-3\.ts/, fault: { headers: { 'cache-control': 'private, max-age=60' } } }] } });
    const sid = await viewer(stack, 't1');
    for (let i = 0; i < 3; i++) {
      expect((await httpRequest(`${stack.edge.url}/play/ch1/v1/seg-2.ts?edge_session=${sid}`)).status).toBe(200);
      expect((await httpRequest(`${stack.edge.url}/play/ch1/v1/seg-3.ts?edge_session=${sid}`)).status).toBe(200);
    }
    expect(fetchesOf(stack, '/play/ch1/v1/seg-2.ts')).toBe(3);
    expect(fetchesOf(stack, '/play/ch1/v1/seg-3.ts')).toBe(3);
  });

  it('errors are not cached; a 404 only for the negative TTL', async () => {
    const stack = await start({ cache: { negativeTtl: '300ms' } }, { origin: { faults: [{ match: /seg-4\.ts/, fault: { status: 502 } }, { match: /seg-5\.ts/, fault: { status: 404 } }] } });
    const sid = await viewer(stack, 't1');
    for (let i = 0; i < 2; i++) {
      expect((await httpRequest(`${stack.edge.url}/play/ch1/v1/seg-4.ts?edge_session=${sid}`)).status).toBe(502);
      expect((await httpRequest(`${stack.edge.url}/play/ch1/v1/seg-5.ts?edge_session=${sid}`)).status).toBe(404);
    }
    expect(fetchesOf(stack, '/play/ch1/v1/seg-4.ts')).toBe(2);
    expect(fetchesOf(stack, '/play/ch1/v1/seg-5.ts')).toBe(1);
    await new Promise((r) => setTimeout(r, 350));
    expect((await httpRequest(`${stack.edge.url}/play/ch1/v1/seg-5.ts?edge_session=${sid}`)).status).toBe(404);
    expect(fetchesOf(stack, '/play/ch1/v1/seg-5.ts')).toBe(2);
  });

  it('Range and HEAD are answered from a cached segment', async () => {
    const stack = await start();
    const sid = await viewer(stack, 't1');
    const url = `${stack.edge.url}/play/ch1/v1/seg-1.ts?edge_session=${sid}`;
    const want = stack.origin.expectedBytes('/play/ch1/v1/seg-1.ts');
    await httpRequest(url);
    const part = await httpRequest(url, { headers: { range: 'bytes=100-199' } });
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 100-199/${want.length}`);
    expect(part.body.equals(want.subarray(100, 200))).toBe(true);
    const tail = await httpRequest(url, { headers: { range: 'bytes=-10' } });
    expect(tail.body.equals(want.subarray(want.length - 10))).toBe(true);
    const past = await httpRequest(url, { headers: { range: `bytes=${want.length}-` } });
    expect(past.status).toBe(416);
    expect(past.headers['content-range']).toBe(`bytes */${want.length}`);
    const head = await httpRequest(url, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(String(want.length));
    expect(head.body.length).toBe(0);
    // A Range on a miss is served from the fill too: the origin still gets one plain GET.
    const cold = await httpRequest(`${stack.edge.url}/play/ch1/v1/seg-6.ts?edge_session=${sid}`, { headers: { range: 'bytes=0-9' } });
    expect(cold.status).toBe(206);
    expect(cold.body.equals(stack.origin.expectedBytes('/play/ch1/v1/seg-6.ts').subarray(0, 10))).toBe(true);
    const fills = stack.origin.requests.filter((r) => r.path.includes('seg-'));
    expect(fills.every((r) => r.headers.range === undefined)).toBe(true);
    expect(fills).toHaveLength(2);
  });

  it('never skips authorization: a denied token or an ended session gets 403 for a cached segment', async () => {
    const stack = await start({}, { middleware: { behavior: (req) => (req.rawQuery.includes('token=bad') ? 'deny' : 'allow') } });
    const sid = await viewer(stack, 't1');
    expect((await httpRequest(`${stack.edge.url}/play/ch1/v1/seg-1.ts?edge_session=${sid}`)).status).toBe(200);
    expect((await httpRequest(`${stack.edge.url}/play/ch1/v1/seg-1.ts?token=bad`)).status).toBe(403);
    // An unknown marker is no pass: it opens a new session, which the middleware decides.
    const calls = stack.mw.requests.length;
    await httpRequest(`${stack.edge.url}/play/ch1/v1/seg-1.ts?edge_session=AAAAAAAAAAAAAAAAAAAAAA`);
    expect(stack.mw.requests).toHaveLength(calls + 1);
    expect(stack.edge.app.sessions.kick(sid)).toBe(true);
    const after = await httpRequest(`${stack.edge.url}/play/ch1/v1/seg-1.ts?edge_session=${sid}`);
    expect(after.status).toBe(403);
    expect(after.headers['x-cache']).toBeUndefined();
    expect(fetchesOf(stack, '/play/ch1/v1/seg-1.ts')).toBe(1);
  });

  it('--cache-bypass paths and --cache-size 0 go upstream every time', async () => {
    const bypass = await start({ cache: { bypass: ['^/play/ch1/v1/seg-1'] } });
    const sid = await viewer(bypass, 't1');
    for (let i = 0; i < 2; i++) await httpRequest(`${bypass.edge.url}/play/ch1/v1/seg-1.ts?edge_session=${sid}`);
    expect(fetchesOf(bypass, '/play/ch1/v1/seg-1.ts')).toBe(2);
    expect(await bypass.edge.metric('edge_cache_requests_total', { kind: 'segment', result: 'bypass' })).toBe(2);
    const off = await start({ cache: { size: 0 } });
    const sid2 = await viewer(off, 't1');
    for (let i = 0; i < 2; i++) expect((await httpRequest(`${off.edge.url}/play/ch1/v1/seg-1.ts?edge_session=${sid2}`)).headers['x-cache']).toBeUndefined();
    expect(fetchesOf(off, '/play/ch1/v1/seg-1.ts')).toBe(2);
  });

  it('a body larger than cache.maxObjectSize is passed through, uncached', async () => {
    const stack = await start({ cache: { size: '1MiB', maxObjectSize: '128KiB' } });
    const sid = await viewer(stack, 't1');
    for (let i = 0; i < 2; i++) {
      const res = await httpRequest(`${stack.edge.url}/play/ch1/v1/seg-1.ts?edge_session=${sid}`);
      expect(res.status).toBe(200);
      expect(res.body.equals(stack.origin.expectedBytes('/play/ch1/v1/seg-1.ts'))).toBe(true);
    }
    expect(await stack.edge.metric('edge_cache_bytes')).toBe(0);
  });
});

describe('playlists', () => {
  it('sessions share one upstream playlist per TTL, and each gets its own marker in it (never another’s)', async () => {
    const stack = await start({ cache: { playlistTtl: '10s' } }, { origin: { targetDurationS: 60 } });
    const sids = new Set<string>();
    const bodies = await Promise.all(Array.from({ length: 20 }, (_, i) => httpRequest(`${stack.edge.url}/play/ch1/v1/index.m3u8?token=p${i}`)));
    for (const b of bodies) {
      expect(b.status).toBe(200);
      expect(b.headers['cache-control']).toBe('private, no-cache');
      const markers = new Set(playlistUris(b.body.toString(), `${stack.edge.url}/play/ch1/v1/index.m3u8`).map((u) => new URL(u).searchParams.get('edge_session')));
      expect(markers.size).toBe(1); // one session's marker throughout its playlist
      sids.add([...markers][0]!);
    }
    expect(sids.size).toBe(20); // every session its own
    expect(fetchesOf(stack, '/play/ch1/v1/index.m3u8')).toBe(1);
    // Each marker is its own session's: following it reaches the segment under that session.
    expect(stack.mw.requests).toHaveLength(20);
  });

  it('the TTL is at most half the target duration: a 1 s target duration playlist is fetched again after 0.5 s', async () => {
    const stack = await start({ cache: { playlistTtl: '5s' } }, { origin: { targetDurationS: 1 } });
    const sid = await viewer(stack, 't1');
    await httpRequest(`${stack.edge.url}/play/ch1/v1/index.m3u8?edge_session=${sid}`);
    expect(fetchesOf(stack, '/play/ch1/v1/index.m3u8')).toBe(1);
    await new Promise((r) => setTimeout(r, 600));
    await httpRequest(`${stack.edge.url}/play/ch1/v1/index.m3u8?edge_session=${sid}`);
    expect(fetchesOf(stack, '/play/ch1/v1/index.m3u8')).toBe(2);
  });
});
