// Which Redis client the fleet store uses (src/session/redis.ts cites these figures):
// ioredis vs node-redis (@redis/client), against a private redis-server on a free loopback
// port, on the operations the edge makes: SET with PX (publish a session), GET (look one up),
// EVALSHA of a per-user-limit script, each with 50 concurrent callers; the client process pinned
// to one core when taskset exists (redis-server on the other). Alternates the clients, 3 rounds.
//
//   npm run bench:redis   (about 20 s; JSON to bench/results/redis-clients.json)
import { createClient } from '@redis/client';
import { Redis } from 'ioredis';
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { startTestRedis } from '../test/helpers/redis.js';

const OPS = 20_000;
const CONCURRENCY = 50;
const ROUNDS = 3;
const LIMIT_SCRIPT = `
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1`;

interface Ops {
  set(k: string, v: string): Promise<unknown>;
  get(k: string): Promise<unknown>;
  limit(k: string, member: string): Promise<unknown>;
}

async function timed(op: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const t = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < OPS) await op(next++);
    }),
  );
  return OPS / ((performance.now() - t) / 1000);
}

async function measure(ops: Ops): Promise<{ set: number; get: number; lua: number }> {
  const value = 'v'.repeat(300);
  const set = await timed((i) => ops.set(`bench:s:${i}`, value));
  const get = await timed((i) => ops.get(`bench:s:${i}`));
  const lua = await timed((i) => ops.limit(`bench:u:${i % 1000}`, `m${i}`));
  return { set, get, lua };
}

try {
  execFileSync('taskset', ['-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });
} catch {
  // no taskset: unpinned (said in the output)
}
const redis = await startTestRedis();
try {
  execFileSync('sh', ['-c', `taskset -p -c 1 $(pgrep -f "redis-server 127.0.0.1:${redis.port}")`], { stdio: 'ignore' });
} catch {
  // unpinned
}
const io = new Redis({ host: '127.0.0.1', port: redis.port, lazyConnect: true, enableAutoPipelining: false });
await io.connect();
io.defineCommand('edgeLimit', { numberOfKeys: 1, lua: LIMIT_SCRIPT });
const ioOps: Ops = {
  set: (k, v) => io.set(k, v, 'PX', 60_000),
  get: (k) => io.get(k),
  limit: (k, m) => (io as unknown as { edgeLimit(...a: unknown[]): Promise<unknown> }).edgeLimit(k, Date.now(), 5, m, 60_000),
};
const nr = createClient({ url: redis.url });
await nr.connect();
const sha = await nr.scriptLoad(LIMIT_SCRIPT);
const nrOps: Ops = {
  set: (k, v) => nr.set(k, v, { PX: 60_000 }),
  get: (k) => nr.get(k),
  limit: (k, m) => nr.evalSha(sha, { keys: [k], arguments: [String(Date.now()), '5', m, '60000'] }),
};
const rounds: { client: string; set: number; get: number; lua: number }[] = [];
for (let r = 0; r < ROUNDS; r++) {
  rounds.push({ client: 'ioredis 6.0.0', ...(await measure(ioOps)) });
  rounds.push({ client: '@redis/client 6.3.1', ...(await measure(nrOps)) });
}
await io.quit();
await nr.quit();
await redis.close();

const median = (xs: number[]): number => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const summary = ['ioredis 6.0.0', '@redis/client 6.3.1'].map((client) => {
  const rs = rounds.filter((r) => r.client === client);
  return { client, set: median(rs.map((r) => r.set)), get: median(rs.map((r) => r.get)), lua: median(rs.map((r) => r.lua)) };
});
console.log(`| client | SET PX ops/s | GET ops/s | EVALSHA limit ops/s |  (median of ${ROUNDS}, ${CONCURRENCY} concurrent, ${OPS} ops each)\n|---|---|---|---|`);
for (const s of summary) console.log(`| ${s.client} | ${s.set.toFixed(0)} | ${s.get.toFixed(0)} | ${s.lua.toFixed(0)} |`);
const [a, b] = summary as [(typeof summary)[0], (typeof summary)[0]];
console.log(`ioredis / node-redis: SET ${(a.set / b.set).toFixed(2)}×, GET ${(a.get / b.get).toFixed(2)}×, EVALSHA ${(a.lua / b.lua).toFixed(2)}×`);
await mkdir(new URL('./results/', import.meta.url), { recursive: true });
await writeFile(new URL('./results/redis-clients.json', import.meta.url), `${JSON.stringify({ date: new Date().toISOString(), node: process.version, rounds, summary }, null, 2)}\n`);
