// Several edges behind a real load balancer (nginx, round robin), sharing only a session secret:
// a player keeps playing whichever edge its requests land on, with ONE middleware call, even when
// the edge that opened its session dies (kill -9).
import { afterEach, describe, expect, it } from 'vitest';
import { startBalancer, startEdgeProcess, type Balancer, type EdgeProcess } from '../helpers/fleet.js';
import { startTestMiddleware, type TestMiddleware } from '../helpers/middleware.js';
import { playHlsFor } from '../helpers/player.js';
import { startTestOrigin, type TestOrigin } from '../helpers/origin.js';
import { requireTool, TOOLS } from '../helpers/tools.js';

const nginx = requireTool(TOOLS.nginx);
const SECRET = 'fleet-secret-0123456789abcdef';
const closers: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c.close();
});

interface Fleet {
  readonly origin: TestOrigin;
  readonly mw: TestMiddleware;
  readonly edges: EdgeProcess[];
  readonly lb: Balancer;
}

async function fleet(n: number, extra: readonly string[] = []): Promise<Fleet> {
  const origin = await startTestOrigin({ targetDurationS: 1 });
  closers.push(origin);
  // Ministra: a token dies 5 s after it was issued.
  const mw = await startTestMiddleware({ behavior: 'ministra', ministraTtlMs: 5000 });
  closers.push(mw);
  const edges: EdgeProcess[] = [];
  for (let i = 0; i < n; i++) {
    const e = await startEdgeProcess(`edge-${String.fromCharCode(97 + i)}`, ['--upstream', origin.url, '--backend-type', 'stalker', '--backend', `${mw.url}/stalker_portal/`, '--session-secret', SECRET, '--log-level', 'info', ...extra]);
    closers.push(e);
    edges.push(e);
  }
  const lb = await startBalancer(edges.map((e) => e.url));
  closers.push(lb);
  return { origin, mw, edges, lb };
}

async function requestsServed(e: EdgeProcess): Promise<number> {
  return e.metric('edge_requests_total');
}

describe.skipIf(nginx.skip)(`a fleet behind a round-robin balancer${nginx.note}`, () => {
  it('a player following rewritten playlists for 20 s with a 5-second Ministra token hits all three edges, never fails, one middleware call', async () => {
    const { mw, edges, lb } = await fleet(3);
    const token = mw.issueMinistraToken({ userId: 1 });
    const steps = await playHlsFor(`${lb.url}/play/ch1/index.m3u8?token=${token}`, 20_000, { pauseMs: 60 });
    expect(steps.length).toBeGreaterThan(100);
    expect(steps.filter((s) => s.status !== 200)).toEqual([]);
    expect(mw.requests).toHaveLength(1);
    for (const e of edges) expect(await requestsServed(e), e.name).toBeGreaterThan(10);
    // Two edges served the session from its signed marker alone.
    const adopted = await Promise.all(edges.map((e) => e.metric('edge_sessions_adopted_total')));
    expect(adopted.reduce((a, b) => a + b, 0)).toBe(2);
  }, 40_000);

  it('kill -9 of the edge that opened the session: the player goes on through the others, no new middleware call', async () => {
    const { mw, edges, lb } = await fleet(3);
    const token = mw.issueMinistraToken({ userId: 2 });
    const before = await playHlsFor(`${lb.url}/play/ch1/index.m3u8?token=${token}`, 3000, { pauseMs: 30 });
    expect(before.filter((s) => s.status !== 200)).toEqual([]);
    // The edge whose log says it opened the session (not from a marker).
    const opener = edges.find((e) => e.logs.some((l) => l['msg'] === 'session opened' && l['source'] !== 'marker'))!;
    expect(opener).toBeDefined();
    await opener.crash();
    // The player reloads what it has: the last media playlist URL (with its marker).
    const lastPlaylist = [...before].reverse().find((s) => s.url.includes('.m3u8') && s.url.includes('edge_session='))!.url;
    const after = await playHlsFor(lastPlaylist, 4000, { pauseMs: 30 });
    expect(after.length).toBeGreaterThan(20);
    expect(after.filter((s) => s.status !== 200)).toEqual([]);
    expect(mw.requests).toHaveLength(1);
  }, 40_000);
});
