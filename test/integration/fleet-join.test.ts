// "Redis second": a player that reloads its ORIGINAL URL (token, no marker: a media playlist
// opened directly) through another edge of the fleet finds its session in Redis by its join key,
// and that edge serves it from the signed marker found there, without asking the middleware.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { httpRequest } from '../helpers/client.js';
import { startEdge, type TestEdge } from '../helpers/edge.js';
import { startTestMiddleware } from '../helpers/middleware.js';
import { startTestOrigin } from '../helpers/origin.js';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';
import { requireTool, TOOLS } from '../helpers/tools.js';

const redisServer = requireTool(TOOLS.redisServer);
const SECRET = 'fleet-secret-0123456789abcdef';
let redis: TestRedis | undefined;
const closers: { close(): Promise<void> }[] = [];

beforeAll(async () => {
  if (!redisServer.skip) redis = await startTestRedis();
});
afterAll(async () => {
  await redis?.close();
});
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c.close();
});

describe.skipIf(redisServer.skip)(`a session found by its join key on another edge${redisServer.note}`, () => {
  it('the same token URL through edge B: found in Redis, served from the marker, one middleware call; a kicked one is refused', async () => {
    const origin = await startTestOrigin();
    const mw = await startTestMiddleware({ behavior: 'ministra', ministraTtlMs: 5000 });
    closers.push(origin, mw);
    const edges: TestEdge[] = [];
    const prefix = `j${Date.now()}:`;
    for (const name of ['A', 'B']) {
      const e = await startEdge({ upstream: { url: origin.url }, backend: { type: 'stalker', url: `${mw.url}/stalker_portal/` }, session: { secret: SECRET }, store: { url: redis!.url, prefix }, node: { name } });
      closers.push(e);
      edges.push(e);
    }
    const [a, b] = edges as [TestEdge, TestEdge];
    const token = mw.issueMinistraToken({ userId: 3 });
    const url = `/play/ch1/v1/index.m3u8?token=${token}`;
    expect((await httpRequest(`${a.url}${url}`, { headers: { 'user-agent': 'P' } })).status).toBe(200);
    // Published in batches: wait until B can see it.
    for (let i = 0; i < 50 && (await b.app.sessions.fleet.findMarker({ joinKey: [...a.app.sessions.table.values()][0]!.joinKey })) === undefined; i++) await new Promise((r) => setTimeout(r, 50));
    expect((await httpRequest(`${b.url}${url}`, { headers: { 'user-agent': 'P' } })).status).toBe(200);
    expect(mw.requests).toHaveLength(1);
    expect(await b.metric('edge_sessions_adopted_total')).toBe(1);
    // A kick through A: B refuses the same URL (its tombstone, or the fleet's).
    const id = [...a.app.sessions.table.values()][0]!.id;
    expect(await a.app.sessions.kickAnywhere(id)).toBe('kicked');
    await new Promise((r) => setTimeout(r, 300));
    const after = await httpRequest(`${b.url}${url}`, { headers: { 'user-agent': 'P' } });
    expect(after.status).toBe(403);
    expect(mw.requests).toHaveLength(1);
  });
});
