// Hardening issue, items 6, 7 and 9: what sessions cost in memory and time.
// 6. Expired sessions never left memory (lru-cache without purging kept every expired or denied
//    session until --max-sessions: 100,002 entries, 492 MB, five minutes after a flood).
// 7. A flood of denied tokens evicted a viewer who was playing (--max-sessions 2000, 5,000 denied
//    requests: his marker got 403).
// 9. Opening a session sorted the user's open sessions even with no limit configured.
import { describe, expect, it, vi } from 'vitest';
import { httpRequest } from '../helpers/client.js';
import type { MiddlewareRequestRecord } from '../helpers/middleware.js';
import { playHls } from '../helpers/player.js';
import { backToBaseline, collectGarbage, snapshot } from '../helpers/resources.js';
import { useStack } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

const start = useStack({ origin: { segmentBytes: 1024 } });

/** `n` requests with distinct tokens, `concurrency` at a time; resolves with the status counts. */
async function flood(edgeUrl: string, n: number, concurrency: number, token: (i: number) => string): Promise<Record<number, number>> {
  const counts: Record<number, number> = {};
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        const res = await httpRequest(`${edgeUrl}/play/ch${i % 20}/index.m3u8?token=${token(i)}&device=stb&lang=en-US`, {
          headers: { 'user-agent': 'Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/4.0 TV Safari/537.36' },
        });
        counts[res.status] = (counts[res.status] ?? 0) + 1;
      }
    }),
  );
  return counts;
}

const tokenOf = (i: number): string => `${i.toString(16).padStart(8, '0')}${'d'.repeat(32)}`;
const allowOnly =
  (token: string) =>
  (r: MiddlewareRequestRecord): 'allow' | 'deny' =>
    new URLSearchParams(r.rawQuery).get('token') === token ? 'allow' : 'deny';

describe('sessions in memory (hardening 6, 7, 9)', () => {
  it('a flood of one-request denied sessions leaves memory once the deny TTL has passed', async () => {
    const N = 3000;
    const { edge, mw } = await start({ auth: { denyTtl: '2s' }, log: { level: 'warn' } }, { middleware: { behavior: 'deny' } });
    const store = edge.app.sessions.store;
    const baseline = await snapshot();
    expect(await flood(edge.url, N, 16, tokenOf)).toEqual({ 403: N });
    expect(mw.requests).toHaveLength(N);
    mw.reset();
    // Only ever in the ungranted tier …
    expect(store.stats('granted')).toEqual({ entries: 0, evictions: 0 });
    expect(store.stats('ungranted').evictions).toBe(0);
    // … and gone after the deny TTL (2 s) + one sweep interval (1 s), without a request to notice them.
    await waitFor(() => store.size === 0, { timeoutMs: 8000, message: 'denied sessions swept' });
    expect(edge.app.sessions.table.size).toBe(0);
    await backToBaseline(baseline, { heapBytes: 8 * 1024 * 1024, timeoutMs: 10_000 });
    // A reload after the TTL is a new decision, as it should be.
    expect((await httpRequest(`${edge.url}/play/ch0/index.m3u8?token=${tokenOf(0)}&device=stb&lang=en-US`)).status).toBe(403);
    expect(mw.requests).toHaveLength(1);
  });

  it('a stored session does not keep the request it came from (14 KB of other headers)', async () => {
    const N = 5000;
    const { edge } = await start({ log: { level: 'warn' } });
    const sessions = edge.app.sessions;
    const ua = 'Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/4.0 TV Safari/537.36';
    const filler = 'x'.repeat(14 * 1024);
    collectGarbage();
    const before = process.memoryUsage().heapUsed;
    const now = Date.now();
    for (let i = 0; i < N; i++) {
      // One request head per session; every field a slice of it, as the parser and the handler make them.
      const head = `GET /play/ch${i % 50}/index.m3u8?token=${tokenOf(i)}&device=stb&lang=en-US HTTP/1.1\r\nUser-Agent: ${ua}\r\nHost: edge.example.com:8080\r\nReferer: http://portal.example.com/\r\nX-Filler: ${filler}\r\n\r\n`;
      const field = (from: string, to: string): string => {
        const a = head.indexOf(from) + from.length;
        return head.slice(a, head.indexOf(to, a));
      };
      const query = field('?', ' HTTP/1.1');
      const s = sessions.joinOrOpen(
        {
          channel: field('/play/', '/'),
          kind: 'hls',
          clientIp: `2001:db8::${i.toString(16)}`,
          userAgent: field('User-Agent: ', '\r\n'),
          host: field('Host: ', '\r\n'),
          path: field('GET ', '?'),
          query,
          token: field('token=', '&'),
          referer: field('Referer: ', '\r\n'),
        },
        now,
      );
      sessions.apply(s, { ...{ allow: true, reason: `backend_${200}` }, sessionName: `user${i}`, source: 'backend', decidedAt: now }, false);
    }
    expect(sessions.store.stats('granted').entries).toBe(N);
    collectGarbage();
    // Keeping any slice of its request would cost a session 14 KB; it costs about 1 KB (bench: bench/decision-store.ts).
    expect((process.memoryUsage().heapUsed - before) / N).toBeLessThan(2048);
  });

  it('a flood of denied tokens does not evict a playing viewer (--max-sessions 200)', async () => {
    // Playlists fetched per request (no micro-cache): the origin sees the viewer's request again.
    const { edge, mw, origin } = await start({ auth: { maxEntries: 200 }, cache: { playlistTtl: '0s' } }, { middleware: { behavior: allowOnly('viewer') } });
    const store = edge.app.sessions.store;
    const first = await playHls(`${edge.url}/play/ch1/index.m3u8?token=viewer`, 4);
    expect(first.map((s) => s.status)).toEqual([200, 200, 200, 200]);
    const marked = first.find((s) => s.url.includes('.ts'))?.url ?? first[1]!.url;
    expect(marked).toContain('edge_session=');

    expect(await flood(edge.url, 1000, 16, (i) => `bad${i}`)).toEqual({ 403: 1000 });
    // The denied sessions stayed in their own, smaller tier (a tenth of --max-sessions by default).
    expect(store.stats('ungranted')).toEqual({ entries: 20, evictions: 980 });
    expect(store.stats('granted')).toEqual({ entries: 1, evictions: 0 });

    origin.reset();
    const again = await httpRequest(marked);
    expect(again.status).toBe(200);
    expect(origin.requests.map((r) => r.path)).toEqual([new URL(marked).pathname]);
    // The viewer's session was never asked about again: 1 allow, 1,000 denies.
    expect(mw.requests.filter((r) => r.rawQuery.includes('token=viewer'))).toHaveLength(1);
    expect(mw.requests).toHaveLength(1001);
    expect(await edge.metric('edge_decision_store_evictions_total', { tier: 'granted' })).toBe(0);
    expect(await edge.metric('edge_decision_store_evictions_total', { tier: 'ungranted' })).toBe(980);
  });

  it('expired allowed sessions leave the store (and the table) without any request', async () => {
    const { edge, mw } = await start({ auth: { allowTtl: '4s', staleGrace: '500ms' }, session: { idleTimeout: '1s' } });
    const store = edge.app.sessions.store;
    const played = await Promise.all(Array.from({ length: 50 }, (_, i) => playHls(`${edge.url}/play/ch${i % 5}/index.m3u8?token=v${i}`, 2)));
    expect(played.flat().map((s) => s.status)).toEqual(Array(100).fill(200));
    expect(store.stats('granted').entries).toBe(50);
    // allow TTL 4 s + stale grace 0.5 s + sweep interval 1 s.
    await waitFor(() => store.size === 0 && edge.app.sessions.table.size === 0, { timeoutMs: 10_000, message: 'expired sessions gone' });
    expect(mw.requests).toHaveLength(50); // nothing re-checked: no one asked for them
    expect(await edge.metric('edge_decision_store_entries')).toBe(0);
    expect(await edge.metric('edge_decision_store_evictions_total')).toBe(0);
  });

  it('opening a session with one shared X-Session-Name and 30k open sessions does not look at the user index', async () => {
    const { edge, mw } = await start({}, { middleware: { behavior: { kind: 'allow', headers: { 'X-Session-Name': 'shared' } } } });
    const sessions = edge.app.sessions;
    // 30k open sessions of the same name (opened the way the handler opens them; through HTTP they would take minutes here).
    const now = Date.now();
    for (let i = 0; i < 30_000; i++) {
      const token = `t${i}`;
      const s = sessions.joinOrOpen({ channel: 'ch', kind: 'hls', clientIp: '10.0.0.1', userAgent: 'ua', host: 'h', path: '/play/ch/index.m3u8', query: `token=${token}`, token, referer: '' }, now);
      sessions.apply(s, { allow: true, reason: 'backend_200', sessionName: 'shared', source: 'backend', decidedAt: now }, false);
      expect(sessions.activate(s)).toBe(true);
    }
    expect(sessions.table.countOfUser('shared')).toBe(30_000);
    const ofUser = vi.spyOn(sessions.table, 'ofUser');

    const opened = await Promise.all(Array.from({ length: 20 }, (_, i) => httpRequest(`${edge.url}/play/ch/index.m3u8?token=new${i}`)));
    expect(opened.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(mw.requests).toHaveLength(20);
    expect(sessions.table.countOfUser('shared')).toBe(30_020);
    // No limit (no X-Max-Sessions, no X-Unique, --max-sessions-per-user 0): the index was never read.
    expect(ofUser).not.toHaveBeenCalled();

    // A limit that applies but is not reached costs a count, still no walk over the user's sessions.
    mw.setBehavior({ kind: 'allow', headers: { 'X-Session-Name': 'shared', 'X-Max-Sessions': '100000' } });
    expect((await httpRequest(`${edge.url}/play/ch/index.m3u8?token=limited`)).status).toBe(200);
    expect(ofUser).not.toHaveBeenCalled();
    expect(sessions.table.countOfUser('shared')).toBe(30_021);
  });
});
