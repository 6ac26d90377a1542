// What Redis costs a new session (fleet issue, part 2): in-process edges on a real origin and
// middleware, one with the memory store, one with `--store redis://` on a private redis-server
// (test/helpers/redis.ts), each opening new sessions one after another (a playlist request with a
// fresh token: middleware call, admission, first response) and timing each request at the client.
//
// Scenarios, interleaved per round (memory, redis, memory, redis…):
//   limit    the middleware sends X-UserId + X-Max-Sessions: 1000 (one user): the admission
//            waits for the fleet's Lua script (one round trip to Redis)
//   nolimit  no X-Max-Sessions: nothing is awaited; the session is published in the background
// Plus the awaited call alone: fleet.admit() timed in a loop (no HTTP, no middleware).
// A request of a session the edge already holds never touches Redis: not measured here (the
// forward-path bench covers the hot path; this one only adds to a session's first request).
//
//   npx tsx bench/fleet-redis.ts [--sessions N] [--rounds N]   (about 30 s; JSON to bench/results/fleet-redis.json)
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { Redis } from 'ioredis';
import { httpRequest } from '../test/helpers/client.js';
import { startEdge, type TestEdge } from '../test/helpers/edge.js';
import { startTestMiddleware } from '../test/helpers/middleware.js';
import { startTestOrigin } from '../test/helpers/origin.js';
import { startTestRedis } from '../test/helpers/redis.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
}
const SESSIONS = arg('--sessions', 1000);
const ROUNDS = arg('--rounds', 3);
const WARMUP = 100;

type Store = 'memory' | 'redis';
type Scenario = 'limit' | 'nolimit';

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function newSessions(edge: TestEdge, n: number, tag: string): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    const res = await httpRequest(`${edge.url}/play/ch${i % 50}/index.m3u8?token=${tag}-${i}`);
    times.push(performance.now() - t);
    if (res.status !== 200) throw new Error(`new session ${i}: ${res.status} ${res.body.toString()}`);
  }
  return times;
}

const redis = await startTestRedis();
const origin = await startTestOrigin({ segmentBytes: 4096 });
const mw = await startTestMiddleware();
const limitHeaders = { 'X-UserId': 'bench-user', 'X-Max-Sessions': '1000000' };
mw.setBehavior((req) => (req.rawQuery.includes('limit-') && !req.rawQuery.includes('nolimit-') ? { kind: 'allow', headers: limitHeaders } : { kind: 'allow' }));
const base = { upstream: { url: origin.url }, backend: { url: `${mw.url}/auth` }, log: { level: 'warn' }, cache: { playlistTtl: '1s' }, auth: { maxEntries: 1_000_000 } };
const edges: Record<Store, TestEdge> = {
  memory: await startEdge({ ...base, node: { name: 'bench-memory' } }),
  redis: await startEdge({ ...base, store: { url: redis.url, prefix: `bench${randomBytes(3).toString('hex')}:` }, node: { name: 'bench-redis' } }),
};
if ((await edges.redis.metric('edge_store_up')) !== 1) throw new Error('the Redis edge is not connected');
const probe = new Redis(redis.url, { protocol: 2 });
const usedMemory = async (): Promise<number> => Number(/used_memory:(\d+)/.exec(await probe.info('memory'))![1]);
const memoryBefore = await usedMemory();

const samples: Record<`${Store}/${Scenario}`, number[]> = { 'memory/limit': [], 'redis/limit': [], 'memory/nolimit': [], 'redis/nolimit': [] };
for (const store of ['memory', 'redis'] as const) await newSessions(edges[store], WARMUP, `warm-${store}-limit`);
for (let round = 0; round < ROUNDS; round++) {
  for (const scenario of ['limit', 'nolimit'] as const) {
    for (const store of ['memory', 'redis'] as const) {
      samples[`${store}/${scenario}`].push(...(await newSessions(edges[store], SESSIONS, `r${round}-${store}-${scenario}`)));
    }
  }
}

// The awaited call alone, as the registry makes it (one user, a generous limit).
const fleet = edges.redis.app.sessions.fleet;
const admitTimes: number[] = [];
for (let i = 0; i < SESSIONS; i++) {
  const t = performance.now();
  const answer = await fleet.admit({ userKey: 'bench-admit', sessionId: randomBytes(16).toString('base64url'), max: 1_000_000, unique: false, policy: 'refuse', openedAt: Date.now(), ttlMs: 30_000 });
  admitTimes.push(performance.now() - t);
  if (answer?.admitted !== true) throw new Error('admit gave no answer');
}
const storeErrors = await edges.redis.metric('edge_store_errors_total');
// Redis memory per open session: everything the fleet keeps for one (record, join key, user entries, list entries).
await new Promise((r) => setTimeout(r, 200));
const published = edges.redis.app.sessions.table.size;
const bytesPerSession = (await usedMemory() - memoryBefore) / published;
await probe.quit();

for (const e of Object.values(edges)) await e.close();
await mw.close();
await origin.close();
await redis.close();

const rows = Object.entries(samples).map(([name, xs]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return { name, n: xs.length, p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99) };
});
const get = (name: string): (typeof rows)[0] => rows.find((r) => r.name === name)!;
const admitSorted = [...admitTimes].sort((a, b) => a - b);
const admit = { n: admitTimes.length, p50: quantile(admitSorted, 0.5), p99: quantile(admitSorted, 0.99) };
console.log(`New session (first request: middleware call + admission + playlist), ${SESSIONS} × ${ROUNDS} rounds each, ms at the client:`);
console.log('| store / scenario | p50 | p99 |\n|---|---|---|');
for (const r of rows) console.log(`| ${r.name} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} |`);
for (const scenario of ['limit', 'nolimit']) {
  const m = get(`memory/${scenario}`);
  const r = get(`redis/${scenario}`);
  console.log(`${scenario}: redis − memory p50 ${(r.p50 - m.p50).toFixed(3)} ms (${(r.p50 / m.p50).toFixed(2)}×), p99 ${(r.p99 - m.p99).toFixed(3)} ms (${(r.p99 / m.p99).toFixed(2)}×)`);
}
console.log(`fleet.admit() alone: p50 ${admit.p50.toFixed(3)} ms, p99 ${admit.p99.toFixed(3)} ms (${admit.n} calls); store errors during the run: ${storeErrors}`);
console.log(`Redis memory: ${bytesPerSession.toFixed(0)} bytes per open session (${published} sessions published)`);
await mkdir(new URL('./results/', import.meta.url), { recursive: true });
await writeFile(new URL('./results/fleet-redis.json', import.meta.url), `${JSON.stringify({ date: new Date().toISOString(), node: process.version, sessions: SESSIONS, rounds: ROUNDS, rows, admit, storeErrors, bytesPerSession }, null, 2)}\n`);
