/**
 * Session-store benchmark: what the edge's stored sessions cost at 1,000,000 sessions.
 *
 *   npm run bench:store                 # full run (several minutes), prints markdown, writes bench/results/decision-store.json
 *   npm run bench:store -- --quick      # 100k sessions instead of 1M (smoke test; writes decision-store.quick.json)
 *   npm run bench:store -- --only sweep,lru   # some jobs only (writes decision-store.only.json)
 *
 * Every measurement runs in a FRESH child process (`node --expose-gc --import tsx`) so that one job's
 * heap, JIT state and GC pressure never leak into another's figures. Nothing here touches the network.
 * Sessions are made the way the edge makes them: the real SessionRegistry and MemorySessionStore (as
 * app.ts wires them), each session opened from a "request" whose fields are slices of a request head
 * (as the HTTP parser and the handler produce them), its decision built as the authorizer builds it.
 *
 * Jobs:
 *   memory  bytes per stored session (heapUsed + arrayBuffers after full GCs, minus the baseline, / N),
 *           for allowed sessions from plain requests, from requests with 14 KB of other headers, and for
 *           one-request denied sessions; the cost of an open (joinOrOpen + apply), of a get by marker and
 *           by join key, and the longest single open (a Map growing rehashes; GC pauses listed apart).
 *   sweep   N denied sessions expire at once: how long until the store's own timer has removed them all,
 *           the longest sweep slice, the event loop's longest delay meanwhile (and the longest GC pause,
 *           which is in it), the cost of a sweep with nothing due, and the heap afterwards.
 *   lru     the alternative: lru-cache (the previous store) holding the same N sessions with a TTL; one
 *           purgeStale() with all of them expired, and with none expired (its only way to drop unread
 *           expired entries walks them all, with the event loop stopped).
 *   open    hardening item 9: opening sessions with one shared X-Session-Name and 30,000 open, no limit.
 */
import { fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PerformanceObserver, monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { LRUCache } from 'lru-cache';
import { pino } from 'pino';
import { verdictFromAnswer } from '../src/auth/backends/response.js';
import type { Decision } from '../src/auth/types.js';
import { buildConfig } from '../src/config/load.js';
import { EdgeMetrics } from '../src/metrics/metrics.js';
import { findParam, removeParam, splitTarget } from '../src/proxy/query.js';
import { MemorySessionStore } from '../src/session/memory.js';
import { SessionRegistry } from '../src/session/registry.js';
import type { Session, SessionOrigin } from '../src/session/session.js';

type MemoryVariant = 'allowed' | 'allowed-14k-headers' | 'denied';
type Job =
  | { kind: 'memory'; label: string; n: number; variant: MemoryVariant }
  | { kind: 'sweep'; label: string; n: number }
  | { kind: 'lru'; label: string; n: number }
  | { kind: 'open'; label: string; n: number };

interface MemoryResult {
  kind: 'memory';
  label: string;
  n: number;
  variant: MemoryVariant;
  storeEntries: { granted: number; ungranted: number };
  heapDeltaMiB: number;
  arrayBuffersDeltaMiB: number;
  bytesPerSession: number;
  rssAfterMiB: number;
  openNsPerOp: number;
  openBestTenthNsPerOp: number;
  longestOpenMs: number;
  opensOver1ms: number;
  longestGcPauseDuringFillMs: number;
  /** Median wall time of 5 passes, and CPU time over all of them. */
  getByIdNs: { wall: number; cpu: number };
  getByJoinKeyNs: { wall: number; cpu: number };
}

interface SweepResult {
  kind: 'sweep';
  label: string;
  n: number;
  ttlMs: number;
  fillSeconds: number;
  sizeAtExpiry: number;
  secondsFromExpiryToEmpty: number;
  sweepSlices: number;
  longestSliceMs: number;
  longestSliceCpuMs: number;
  medianSliceMs: number;
  slicesOver5ms: number;
  loopDelayMaxMs: number;
  loopDelayP99Ms: number;
  longestGcPauseMs: number;
  idleSweepUs: number;
  heapBeforeFillMiB: number;
  heapFullMiB: number;
  heapAfterSweepMiB: number;
}

interface LruResult {
  kind: 'lru';
  label: string;
  n: number;
  purgeStaleAllLiveMs: number;
  purgeStaleAllExpiredMs: number;
  removed: number;
}

interface OpenResult {
  kind: 'open';
  label: string;
  n: number;
  sessionsPerSecondPer5k: number[];
  lastBlockSessionsPerSecond: number;
  userIndexReads: number;
}

type ChildResult = MemoryResult | SweepResult | LruResult | OpenResult;

const MiB = 1024 * 1024;

function fullGc(): void {
  const g = globalThis.gc;
  if (!g) throw new Error('run the child with --expose-gc');
  g();
  g();
}

/** GCs, then lets FinalizationRegistry callbacks run (they release what the GC found), and GCs again. */
async function settledGc(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    fullGc();
    await sleep(50);
  }
  fullGc();
}

function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** The longest GC pause while `fn` runs (PerformanceObserver 'gc' entries). */
function gcWatch(): { stop(): Promise<number> } {
  let longest = 0;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) longest = Math.max(longest, e.duration);
  });
  obs.observe({ entryTypes: ['gc'] });
  return {
    async stop() {
      await sleep(20); // entries are delivered asynchronously
      obs.disconnect();
      return longest;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Realistic requests: the edge as app.ts wires it, fields as the parser and the handler make them.
// ---------------------------------------------------------------------------------------------

const CHANNELS = 500;
/** Distinct players among a million viewers: a few hundred User-Agent strings (~120 bytes). */
const USER_AGENTS = Array.from(
  { length: 300 },
  (_, i) => `Mozilla/5.0 (SMART-TV; Linux; Tizen ${(i % 7) + 2}.0) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/${i}.0 TV Safari/537.36`,
);
const FILLER_14K = `X-Filler: ${'f'.repeat(14 * 1024 - 12)}`;
const PATTERN = /^\/play\/(?<channel>[^/]+)(?<rest>\/.*)?$/;

interface Edge {
  sessions: SessionRegistry;
  store: MemorySessionStore;
}

function makeEdge(n: number, file: Record<string, unknown> = {}, now?: () => number): Edge {
  const config = buildConfig({ file: { ...file, auth: { maxEntries: n, maxUngranted: n, allowTtl: '1h', denyTtl: '1h', ...(file['auth'] as object | undefined) } } });
  // The closures run later (eviction, scrape): `sessions` exists by then, as in app.ts.
  const store = new MemorySessionStore({ maxGranted: config.auth.maxEntries, maxUngranted: config.auth.maxUngranted, onEvict: (s) => sessions.evicted(s), now });
  const metrics = new EdgeMetrics({ store, activeSessions: () => sessions.table.countByKind() }, { processMetrics: false });
  const sessions: SessionRegistry = new SessionRegistry({ store, auth: config.auth, limits: config.limits, idleTimeoutMs: config.session.idleTimeoutMs, log: pino({ level: 'silent' }), metrics, onExpiry: () => undefined });
  return { sessions, store };
}

/** A 40-character token, unique per i. */
function tokenOf(i: number): string {
  return `${i.toString(16).padStart(8, '0')}a3f9c2e18b7d4c6fa0e5b9d1c3f7e2a4`;
}

/**
 * What the handler hands the registry for request i, from a request head of its own (optionally with
 * 14 KB of other headers): every string is a slice of that head, which a stored session must not keep.
 */
function requestOrigin(i: number, big: boolean): SessionOrigin {
  const ua = USER_AGENTS[i % USER_AGENTS.length]!;
  // A head of its own per request (the parser makes fresh strings for every request).
  const head = `GET /play/ch${(i * 7919) % CHANNELS}/index.m3u8?token=${tokenOf(i)}&device=stb&lang=en-US HTTP/1.1\r\nHost: edge.example.com:8080\r\nUser-Agent: ${ua}\r\nReferer: http://portal.example.com/\r\n${big ? FILLER_14K : 'Accept: */*'}\r\n\r\n`;
  const field = (from: string, to: string): string => {
    const a = head.indexOf(from) + from.length;
    return head.slice(a, head.indexOf(to, a));
  };
  const target = field('GET ', ' HTTP/1.1');
  const { path: p, query } = splitTarget(target);
  const channel = PATTERN.exec(p)!.groups!['channel']!;
  const upstreamQuery = removeParam(query, 'edge_session');
  const clientIp = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  return { channel, kind: 'hls', clientIp, userAgent: field('User-Agent: ', '\r\n'), host: field('Host: ', '\r\n'), path: p, query: upstreamQuery, token: tokenParamOf(upstreamQuery), referer: field('Referer: ', '\r\n') };
}

/** The token as the edge reads it; a refused (duplicate) one counts as none here. */
function tokenParamOf(query: string): string | undefined {
  const t = findParam(query, 'token');
  return typeof t === 'string' ? t : undefined;
}

function openFromRequest(edge: Edge, i: number, big: boolean, now: number): Session {
  return edge.sessions.joinOrOpen(requestOrigin(i, big), now);
}

/** The decision as the authorizer builds it from a middleware answer (object spreads included). */
function decisionFor(i: number, allow: boolean, now: number): Decision {
  const headers: Record<string, string> = allow ? { 'x-session-name': `user${i}`, 'x-userid': String(100000 + i) } : {};
  const verdict = verdictFromAnswer(allow, allow ? 'backend_200' : 'backend_403', { status: allow ? 200 : 403, header: (name: string) => headers[name] });
  return { ...verdict, source: 'backend', decidedAt: now };
}

// ---------------------------------------------------------------------------------------------
// Child jobs
// ---------------------------------------------------------------------------------------------

async function runMemory(job: Extract<Job, { kind: 'memory' }>): Promise<MemoryResult> {
  const { n } = job;
  const edge = makeEdge(n);
  const big = job.variant === 'allowed-14k-headers';
  const allow = job.variant !== 'denied';
  const now = Date.now();
  // Allocated before the baseline: the bench's own arrays (to look sessions up) are not the store's.
  const ids = new Array<string>(n).fill('');
  const joinKeys = new Float64Array(n);
  await settledGc();
  const base = process.memoryUsage();

  // Timed: the registry's work (joinOrOpen + apply). Not timed: making the request and the decision.
  const gc = gcWatch();
  const tenth = n / 10;
  const tenths: number[] = [];
  let total = 0n;
  let longest = 0n;
  let over1ms = 0;
  for (let c = 0; c < 10; c++) {
    let chunk = 0n;
    for (let i = c * tenth, end = i + tenth; i < end; i++) {
      const origin = requestOrigin(i, big);
      const decision = decisionFor(i, allow, now);
      const s0 = process.hrtime.bigint();
      const s = edge.sessions.joinOrOpen(origin, now);
      edge.sessions.apply(s, decision, false);
      const d = process.hrtime.bigint() - s0;
      chunk += d;
      if (d > longest) longest = d;
      if (d > 1_000_000n) over1ms++;
      ids[i] = s.id;
      joinKeys[i] = s.joinKey;
    }
    total += chunk;
    tenths.push(Number(chunk) / tenth);
  }
  const openNs = Number(total) / n;
  const longestGc = await gc.stop();

  await settledGc();
  const after = process.memoryUsage();
  const heapDelta = after.heapUsed - base.heapUsed;
  const abDelta = after.arrayBuffers - base.arrayBuffers;

  // Random hits, in 5 passes of n/5: wall time per pass (median) and CPU time over all passes
  // (CPU time does not count the time other processes had the core: steadier on a shared machine).
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = Math.floor(Math.random() * n);
  let hits = 0;
  const lookups = (get: (i: number) => Session | undefined): { wallNs: number; cpuNs: number } => {
    const passes: number[] = [];
    const per = n / 5;
    const cpu0 = process.cpuUsage();
    for (let pass = 0; pass < 5; pass++) {
      const g0 = process.hrtime.bigint();
      for (let i = pass * per, end = i + per; i < end; i++) if (get(order[i]!) !== undefined) hits++;
      passes.push(Number(process.hrtime.bigint() - g0) / per);
    }
    const cpu = process.cpuUsage(cpu0);
    return { wallNs: [...passes].sort((x, y) => x - y)[2]!, cpuNs: ((cpu.user + cpu.system) * 1000) / n };
  };
  const byId = lookups((i) => edge.store.get(ids[i]!));
  const byJoin = lookups((i) => edge.store.getByJoinKey(joinKeys[i]!));
  if (hits !== 2 * n) throw new Error(`lookups missed: ${2 * n - hits}`);

  const result: MemoryResult = {
    kind: 'memory',
    label: job.label,
    n,
    variant: job.variant,
    storeEntries: { granted: edge.store.stats('granted').entries, ungranted: edge.store.stats('ungranted').entries },
    heapDeltaMiB: round(heapDelta / MiB),
    arrayBuffersDeltaMiB: round(abDelta / MiB),
    bytesPerSession: Math.round((heapDelta + abDelta) / n),
    rssAfterMiB: round(after.rss / MiB),
    openNsPerOp: round(openNs),
    openBestTenthNsPerOp: round(Math.min(...tenths)),
    longestOpenMs: round(Number(longest) / 1e6, 2),
    opensOver1ms: over1ms,
    longestGcPauseDuringFillMs: round(longestGc, 2),
    getByIdNs: { wall: round(byId.wallNs), cpu: round(byId.cpuNs) },
    getByJoinKeyNs: { wall: round(byJoin.wallNs), cpu: round(byJoin.cpuNs) },
  };
  await edge.store.close();
  return result;
}

const SWEEP_TTL_MS = 3000;

async function runSweep(job: Extract<Job, { kind: 'sweep' }>): Promise<SweepResult> {
  const { n } = job;
  // The store's clock stands still while it fills, then jumps past the TTL: all N expire at the
  // same moment (the worst case; filling takes longer than any TTL on this machine).
  let clock = Date.now();
  const edge = makeEdge(n, { auth: { denyTtl: `${SWEEP_TTL_MS}ms`, staleGrace: `${SWEEP_TTL_MS}ms` } }, () => clock);
  await settledGc();
  const heapBefore = process.memoryUsage().heapUsed;
  const now = Date.now();
  const f0 = Date.now();
  for (let i = 0; i < n; i++) {
    const s = openFromRequest(edge, i, false, now);
    edge.sessions.apply(s, decisionFor(i, false, now), false);
  }
  const fillSeconds = (Date.now() - f0) / 1000;
  await settledGc();
  const heapFull = process.memoryUsage().heapUsed;

  // A sweep with nothing due (the store's every-second cost while all sessions are alive).
  const i0 = process.hrtime.bigint();
  for (let i = 0; i < 1000; i++) edge.store.sweep();
  const idleSweepUs = Number(process.hrtime.bigint() - i0) / 1000 / 1000;

  // Time every slice the store's own timer runs.
  // Wall time (what the event loop saw) and CPU time (the same minus the time other processes had
  // the core: on a shared machine the wall figure includes being descheduled).
  const slices: number[] = [];
  const sliceCpu: number[] = [];
  const sweep = edge.store.sweep.bind(edge.store);
  edge.store.sweep = (): boolean => {
    const c0 = process.cpuUsage();
    const s0 = process.hrtime.bigint();
    const more = sweep();
    slices.push(Number(process.hrtime.bigint() - s0) / 1e6);
    const c = process.cpuUsage(c0);
    sliceCpu.push((c.user + c.system) / 1000);
    return more;
  };
  const sizeAtExpiry = edge.store.size;
  clock += SWEEP_TTL_MS + 1000; // every entry, and the bucket it is in, is due
  const expiry = Date.now();
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const gc = gcWatch();
  const deadline = Date.now() + 120_000;
  while (edge.store.size > 0 && Date.now() < deadline) await sleep(5);
  const emptyAt = Date.now();
  loop.disable();
  const longestGc = await gc.stop();
  const busy = slices.filter((ms) => ms > 0.05);
  await settledGc();
  const heapAfter = process.memoryUsage().heapUsed;
  await edge.store.close();
  return {
    kind: 'sweep',
    label: job.label,
    n,
    ttlMs: SWEEP_TTL_MS,
    fillSeconds: round(fillSeconds),
    sizeAtExpiry,
    secondsFromExpiryToEmpty: round((emptyAt - expiry) / 1000, 2),
    sweepSlices: busy.length,
    longestSliceMs: round(Math.max(0, ...slices), 2),
    longestSliceCpuMs: round(Math.max(0, ...sliceCpu), 2),
    medianSliceMs: round([...slices].filter((ms) => ms > 0.05).sort((x, y) => x - y)[Math.floor(busy.length / 2)] ?? 0, 2),
    slicesOver5ms: slices.filter((ms) => ms > 5).length,
    loopDelayMaxMs: round(loop.max / 1e6, 1),
    loopDelayP99Ms: round(loop.percentile(99) / 1e6, 1),
    longestGcPauseMs: round(longestGc, 1),
    idleSweepUs: round(idleSweepUs, 2),
    heapBeforeFillMiB: round(heapBefore / MiB),
    heapFullMiB: round(heapFull / MiB),
    heapAfterSweepMiB: round(heapAfter / MiB),
  };
}

async function runLru(job: Extract<Job, { kind: 'lru' }>): Promise<LruResult> {
  const { n } = job;
  const edge = makeEdge(n);
  const now = Date.now();
  const ttl = 2000;
  // lru-cache's clock stands still while it fills, then jumps past the TTL (as in the sweep job).
  let clock = now;
  const lru = new LRUCache<string, Session>({ max: n, ttl, ttlAutopurge: false, perf: { now: () => clock } });
  for (let i = 0; i < n; i++) {
    const s = openFromRequest(edge, i, false, now);
    lru.set(s.id, s);
  }
  const l0 = process.hrtime.bigint();
  lru.purgeStale(); // nothing expired yet: the walk alone
  const liveMs = Number(process.hrtime.bigint() - l0) / 1e6;
  clock += ttl + 1;
  await sleep(20); // lru-cache keeps reading its clock for ttlResolution (1 ms) before it asks again
  const before = lru.size;
  const e0 = process.hrtime.bigint();
  lru.purgeStale();
  const expiredMs = Number(process.hrtime.bigint() - e0) / 1e6;
  const removed = before - lru.size;
  await edge.store.close();
  return { kind: 'lru', label: job.label, n, purgeStaleAllLiveMs: round(liveMs), purgeStaleAllExpiredMs: round(expiredMs), removed };
}

async function runOpen(job: Extract<Job, { kind: 'open' }>): Promise<OpenResult> {
  const { n } = job;
  const edge = makeEdge(1_000_000);
  let reads = 0;
  const table = edge.sessions.table;
  const ofUser = table.ofUser.bind(table);
  table.ofUser = (key: string) => {
    reads++;
    return ofUser(key);
  };
  const now = Date.now();
  const block = 5000;
  const rates: number[] = [];
  let t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const s = openFromRequest(edge, i, false, now);
    edge.sessions.apply(s, { allow: true, reason: 'backend_200', sessionName: 'shared', source: 'backend', decidedAt: now }, false);
    if (!edge.sessions.activate(s)) throw new Error('refused');
    if ((i + 1) % block === 0) {
      const t2 = process.hrtime.bigint();
      rates.push(Math.round(block / (Number(t2 - t) / 1e9)));
      t = t2;
    }
  }
  edge.sessions.closeAll();
  await edge.store.close();
  return { kind: 'open', label: job.label, n, sessionsPerSecondPer5k: rates, lastBlockSessionsPerSecond: rates.at(-1) ?? 0, userIndexReads: reads };
}

async function childMain(job: Job): Promise<void> {
  let result: ChildResult;
  if (job.kind === 'memory') result = await runMemory(job);
  else if (job.kind === 'sweep') result = await runSweep(job);
  else if (job.kind === 'lru') result = await runLru(job);
  else result = await runOpen(job);
  await new Promise<void>((resolve, reject) => {
    if (!process.send) {
      reject(new Error('child must be started with an IPC channel'));
      return;
    }
    process.send(result, (err: Error | null) => (err ? reject(err) : resolve()));
  });
  process.disconnect?.();
}

// ---------------------------------------------------------------------------------------------
// Parent: orchestrate, print, save
// ---------------------------------------------------------------------------------------------

const SELF = fileURLToPath(import.meta.url);
const TSX_LOADER = import.meta.resolve('tsx');
const CHILD_TIMEOUT_MS = 1_200_000;

function runChild(job: Job): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = fork(SELF, ['--child', JSON.stringify(job)], {
      execArgv: ['--expose-gc', '--max-old-space-size=8192', '--import', TSX_LOADER],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let result: ChildResult | undefined;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child ${job.label} timed out after ${CHILD_TIMEOUT_MS} ms`));
    }, CHILD_TIMEOUT_MS);
    child.on('message', (m) => {
      result = m as ChildResult;
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (result) resolve(result);
      else reject(new Error(`child ${job.label} exited with code ${String(code)} and no result`));
    });
  });
}

function fmt(x: number | null | undefined): string {
  if (x === null || x === undefined) return 'n/a';
  return x.toLocaleString('en-US', { maximumFractionDigits: 2 });
}

function table(header: string[], rows: (string | number)[][]): string {
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const r of rows) lines.push(`| ${r.map((c) => (typeof c === 'number' ? fmt(c) : c)).join(' | ')} |`);
  return lines.join('\n');
}

async function parentMain(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const n = quick ? 100_000 : 1_000_000;
  const jobs: Job[] = [
    { kind: 'memory', label: 'allowed, plain requests', n, variant: 'allowed' },
    { kind: 'memory', label: 'allowed, requests with 14 KB of other headers', n, variant: 'allowed-14k-headers' },
    { kind: 'memory', label: 'denied, one request each', n, variant: 'denied' },
    { kind: 'sweep', label: `${n.toLocaleString('en-US')} denied sessions expiring at once`, n },
    { kind: 'lru', label: 'lru-cache {max, ttl} purgeStale()', n },
    { kind: 'open', label: 'one X-Session-Name, no limit', n: 30_000 },
  ];

  // --only memory,sweep: run some jobs (the JSON then holds only those).
  const onlyIdx = process.argv.indexOf('--only');
  const only = onlyIdx === -1 ? undefined : new Set((process.argv[onlyIdx + 1] ?? '').split(','));
  const started = Date.now();
  const loadAvgAtStart = os.loadavg()[0] ?? 0;
  const results: ChildResult[] = [];
  for (const job of jobs) {
    if (only !== undefined && !only.has(job.kind)) continue;
    const t = Date.now();
    process.stderr.write(`[decision-store] ${job.kind.padEnd(6)} ${job.label} ... `);
    results.push(await runChild(job));
    process.stderr.write(`${((Date.now() - t) / 1000).toFixed(1)} s\n`);
  }
  const memory = results.filter((r): r is MemoryResult => r.kind === 'memory');
  const sweep = results.filter((r): r is SweepResult => r.kind === 'sweep');
  const lru = results.filter((r): r is LruResult => r.kind === 'lru');
  const open = results.filter((r): r is OpenResult => r.kind === 'open');

  const out: string[] = [];
  out.push(`## Session store: ${n.toLocaleString('en-US')} sessions (node ${process.version}, ${os.cpus().length} cores, ${new Date().toISOString()})`);
  out.push('');
  out.push('### Memory and cost per session');
  out.push('');
  out.push(
    table(
      ['sessions', 'granted / ungranted', 'heap Δ MiB', 'bytes/session', 'open ns (all / best tenth)', 'longest open ms (opens > 1 ms)', 'longest GC pause ms', 'get by marker ns (wall / CPU)', 'get by join key ns (wall / CPU)'],
      memory.map((r) => [
        r.label,
        `${fmt(r.storeEntries.granted)} / ${fmt(r.storeEntries.ungranted)}`,
        r.heapDeltaMiB + r.arrayBuffersDeltaMiB,
        r.bytesPerSession,
        `${fmt(r.openNsPerOp)} / ${fmt(r.openBestTenthNsPerOp)}`,
        `${fmt(r.longestOpenMs)} (${fmt(r.opensOver1ms)})`,
        r.longestGcPauseDuringFillMs,
        `${fmt(r.getByIdNs.wall)} / ${fmt(r.getByIdNs.cpu)}`,
        `${fmt(r.getByJoinKeyNs.wall)} / ${fmt(r.getByJoinKeyNs.cpu)}`,
      ]),
    ),
  );
  out.push('');
  out.push('### Expiry: the store sweeps by itself');
  out.push('');
  out.push(
    table(
      ['case', 'TTL', 'entries at expiry', 's from expiry to empty', 'sweep slices', 'slice ms: median / longest (longest CPU)', 'slices > 5 ms', 'loop delay max / p99 ms', 'longest GC pause ms', 'idle sweep µs', 'heap MiB before / full / after'],
      sweep.map((r) => [
        r.label,
        `${r.ttlMs / 1000} s`,
        r.sizeAtExpiry,
        r.secondsFromExpiryToEmpty,
        r.sweepSlices,
        `${fmt(r.medianSliceMs)} / ${fmt(r.longestSliceMs)} (${fmt(r.longestSliceCpuMs)})`,
        r.slicesOver5ms,
        `${fmt(r.loopDelayMaxMs)} / ${fmt(r.loopDelayP99Ms)}`,
        r.longestGcPauseMs,
        r.idleSweepUs,
        `${fmt(r.heapBeforeFillMiB)} / ${fmt(r.heapFullMiB)} / ${fmt(r.heapAfterSweepMiB)}`,
      ]),
    ),
  );
  out.push('');
  out.push(table(['alternative', 'entries', 'purgeStale() all live ms', 'purgeStale() all expired ms', 'removed'], lru.map((r) => [r.label, r.n, r.purgeStaleAllLiveMs, r.purgeStaleAllExpiredMs, r.removed])));
  out.push('');
  out.push('### Opening sessions of one shared X-Session-Name (hardening item 9)');
  out.push('');
  out.push(table(['case', 'sessions', 'sessions/s per 5k block', 'user index reads'], open.map((r) => [r.label, r.n, r.sessionsPerSecondPer5k.map((x) => fmt(x)).join(', '), r.userIndexReads])));
  out.push(
    `\nTotal wall time ${((Date.now() - started) / 1000).toFixed(1)} s. 1-min load average at start ${fmt(loadAvgAtStart)}, end ${fmt(os.loadavg()[0])} ` +
      '(timings are single-threaded; above ~1 means other work shared the 2 cores: prefer the "best" columns; memory figures are unaffected).',
  );
  console.log(out.join('\n'));

  const dir = path.join(path.dirname(SELF), 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, quick ? 'decision-store.quick.json' : only !== undefined ? 'decision-store.only.json' : 'decision-store.json');
  const meta = {
    date: new Date().toISOString(),
    node: process.version,
    v8: process.versions.v8,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    totalMemMiB: Math.round(os.totalmem() / MiB),
    n,
    loadAvg1AtStart: loadAvgAtStart,
    loadAvg1AtEnd: os.loadavg()[0] ?? 0,
    wallSeconds: (Date.now() - started) / 1000,
  };
  writeFileSync(file, `${JSON.stringify({ meta, memory, sweep, lru, open }, null, 2)}\n`);
  console.log(`\nJSON written to ${path.relative(process.cwd(), file)}`);
}

const childIdx = process.argv.indexOf('--child');
if (childIdx !== -1) {
  const arg = process.argv[childIdx + 1];
  if (arg === undefined) throw new Error('--child needs a job');
  await childMain(JSON.parse(arg) as Job);
} else {
  await parentMain();
}
