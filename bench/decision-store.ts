/**
 * Decision-store benchmark: node-cache vs lru-cache for ~1,000,000 cached authorization decisions.
 *
 *   npx tsx bench/decision-store.ts            # full run (1-2 min, 10 child processes), prints markdown, writes bench/results/decision-store.json
 *   npx tsx bench/decision-store.ts --quick    # 100k entries instead of 1M (smoke test)
 *
 * Every measurement runs in a FRESH child process (`node --expose-gc --import tsx`) so that one library's
 * heap, JIT state and GC pressure never leak into another's figures. The parent only orchestrates and
 * prints. Nothing here touches the network.
 *
 * Measured per library/config:
 *   (a) memory: heapUsed + arrayBuffers after full GC with N entries, minus a baseline that already holds
 *       the keys[] and values[] arrays (so the figure is the store's own overhead per entry);
 *   (b) set ns/op for N inserts into an empty store (whole fill, and best tenth);
 *   (c) get ns/op for N random hits (5 passes of N/5: median and best);
 *   (d) bounded store: max = N/10, insert N: size stays <= max? cost? (node-cache `maxKeys` THROWS
 *       ECACHEFULL instead of evicting: counted explicitly);
 *   (e) TTL: lru-cache per-entry `ttl` (lazy expiry + purgeStale) vs node-cache `stdTTL` + the
 *       `checkperiod` sweep (a synchronous O(n) walk of every key, run on a timer).
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { LRUCache } from 'lru-cache';
import NodeCache from 'node-cache';

// ---------------------------------------------------------------------------------------------
// Shared types
// ---------------------------------------------------------------------------------------------

interface Decision {
  result: 'allow' | 'deny';
  reason: string;
  expiresAt: number;
  sessionName: string;
  source: 'backend' | 'cache';
}

type Job =
  | { kind: 'full'; label: string; lib: 'node-cache'; useClones: boolean; n: number }
  | { kind: 'full'; label: string; lib: 'lru-cache'; ttl: boolean; n: number }
  | { kind: 'bounded'; label: string; lib: 'node-cache-maxKeys' | 'node-cache-fifo' | 'lru-cache'; ttl: boolean; n: number; max: number }
  | { kind: 'ttl'; label: string; lib: 'node-cache' | 'lru-cache'; n: number };

interface MemFigures {
  heapUsedDeltaMiB: number;
  arrayBuffersDeltaMiB: number;
  totalDeltaMiB: number;
  bytesPerEntry: number;
  rssAfterMiB: number;
}

interface FullResult {
  kind: 'full';
  label: string;
  n: number;
  size: number;
  mem: MemFigures;
  setNsPerOp: number;
  setBestChunkNsPerOp: number;
  setCpuPct: number;
  getNsPerOp: number;
  getBestNsPerOp: number;
  getPassesNs: number[];
  hits: number;
}

interface BoundedResult {
  kind: 'bounded';
  label: string;
  n: number;
  max: number;
  finalSize: number;
  maxSizeSeen: number;
  sizeStayedWithinMax: boolean;
  evictedOrRejected: number;
  cacheFullErrors: number;
  firstErrorMessage: string | null;
  nsPerOpAll: number;
  nsPerOpFirstMax: number;
  nsPerOpAfterFull: number;
  newestKeysPresent: number;
  oldestKeysPresent: number;
  heapAfterMiB: number;
}

interface TtlResult {
  kind: 'ttl';
  label: string;
  n: number;
  setNsPerOp: number;
  sizeRightAfterExpiry: number;
  sweepExpiredMs: number;
  sweepExpiredRemoved: number;
  sizeAfterSweep: number;
  sweepLiveMs: number;
  getAfterExpiryHits: number;
  getAfterExpiryMisses: number;
  timerNote: string;
  timerLoopBlockMaxMs: number | null;
  autopurge100kSetNsPerOp: number | null;
  autopurge100kHeapMiB: number | null;
}

type ChildResult = FullResult | BoundedResult | TtlResult;

// ---------------------------------------------------------------------------------------------
// Helpers (used by the child)
// ---------------------------------------------------------------------------------------------

const MiB = 1024 * 1024;

function fullGc(): void {
  const g = globalThis.gc;
  if (!g) throw new Error('run the child with --expose-gc');
  // Two full mark-compacts: the second collects what the first only made unreachable (weak refs).
  g();
  g();
}

function nowNs(): bigint {
  return process.hrtime.bigint();
}

function nsPerOp(start: bigint, end: bigint, ops: number): number {
  return ops === 0 ? 0 : Number(end - start) / ops;
}

function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

/**
 * N distinct 22-char base64url session ids, i.e. randomBytes(16).toString('base64url') per key. One big
 * randomBytes() call sliced 16 bytes at a time gives identical strings; calling randomBytes(16) a million
 * times costs ~6 s on the bench VM and adds nothing to what is measured.
 */
function makeKeys(n: number): string[] {
  const pool = randomBytes(16 * n);
  const keys = new Array<string>(n);
  for (let i = 0; i < n; i++) keys[i] = pool.toString('base64url', i * 16, i * 16 + 16);
  return keys;
}

function makeValues(n: number): Decision[] {
  const now = Date.now();
  const values = new Array<Decision>(n);
  for (let i = 0; i < n; i++) {
    values[i] = { result: 'allow', reason: 'ok', expiresAt: now + 60_000 + i, sessionName: `user${i}`, source: 'backend' };
  }
  return values;
}

function randomOrder(n: number): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = Math.floor(Math.random() * n);
  return order;
}

function memSnapshot(): { heapUsed: number; arrayBuffers: number; rss: number } {
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, arrayBuffers: m.arrayBuffers, rss: m.rss };
}

/** Minimal common surface so the timing loops are identical for both libraries. */
interface Store {
  set(k: string, v: Decision): void;
  get(k: string): Decision | undefined;
  size(): number;
  close(): void;
}

function nodeCacheStore(opts: NodeCache.Options): { store: Store; raw: NodeCache } {
  const raw = new NodeCache(opts);
  return {
    raw,
    store: {
      set: (k, v) => {
        raw.set(k, v);
      },
      get: (k) => raw.get<Decision>(k),
      size: () => raw.getStats().keys,
      close: () => raw.close(),
    },
  };
}

function lruStore(opts: LRUCache.Options<string, Decision, unknown>): { store: Store; raw: LRUCache<string, Decision> } {
  const raw = new LRUCache<string, Decision>(opts);
  return {
    raw,
    store: {
      set: (k, v) => {
        raw.set(k, v);
      },
      get: (k) => raw.get(k),
      size: () => raw.size,
      close: () => undefined,
    },
  };
}

/** node-cache's housekeeping sweep is private; it is what the `checkperiod` timer runs. */
interface NodeCacheInternals {
  _checkData(startPeriod?: boolean): void;
}

// ---------------------------------------------------------------------------------------------
// Child: (a)(b)(c) full store of N entries
// ---------------------------------------------------------------------------------------------

function runFull(job: Extract<Job, { kind: 'full' }>): FullResult {
  const { n } = job;
  const keys = makeKeys(n);
  const values = makeValues(n);
  const order = randomOrder(n);
  fullGc();
  const base = memSnapshot();

  const store =
    job.lib === 'node-cache'
      ? // stdTTL: a realistic decision TTL; checkperiod 0 keeps the sweep timer out of the timing loops.
        nodeCacheStore({ stdTTL: 600, checkperiod: 0, useClones: job.useClones }).store
      : lruStore(job.ttl ? { max: n, ttl: 600_000 } : { max: n }).store;

  // Cold fill, timed as a whole (includes the GCs it triggers) and per tenth: the best tenth is the
  // figure least disturbed by other processes on a shared box. cpu/wall < ~100% means we were preempted.
  const chunk = n / 10;
  const chunkNs: number[] = [];
  const cpu0 = process.cpuUsage();
  const t0 = nowNs();
  for (let c = 0; c < 10; c++) {
    const c0 = nowNs();
    for (let i = c * chunk, end = i + chunk; i < end; i++) store.set(keys[i]!, values[i]!);
    chunkNs.push(nsPerOp(c0, nowNs(), chunk));
  }
  const t1 = nowNs();
  const cpu = process.cpuUsage(cpu0);
  const setNs = nsPerOp(t0, t1, n);

  fullGc();
  const after = memSnapshot();
  const heapDelta = after.heapUsed - base.heapUsed;
  const abDelta = after.arrayBuffers - base.arrayBuffers;

  // N random hits in 5 passes of N/5 (each pass a different slice of the random order).
  const passes: number[] = [];
  let hits = 0;
  const per = n / 5;
  for (let pass = 0; pass < 5; pass++) {
    const g0 = nowNs();
    for (let i = pass * per, end = i + per; i < end; i++) {
      if (store.get(keys[order[i]!]!) !== undefined) hits++;
    }
    passes.push(nsPerOp(g0, nowNs(), per));
  }
  const size = store.size();
  store.close();
  return {
    kind: 'full',
    label: job.label,
    n,
    size,
    mem: {
      heapUsedDeltaMiB: round(heapDelta / MiB),
      arrayBuffersDeltaMiB: round(abDelta / MiB),
      totalDeltaMiB: round((heapDelta + abDelta) / MiB),
      bytesPerEntry: Math.round((heapDelta + abDelta) / n),
      rssAfterMiB: round(after.rss / MiB),
    },
    setNsPerOp: round(setNs),
    setBestChunkNsPerOp: round(Math.min(...chunkNs)),
    setCpuPct: Math.round(((cpu.user + cpu.system) * 1000 * 100) / Number(t1 - t0)),
    getNsPerOp: round(median(passes)),
    getBestNsPerOp: round(Math.min(...passes)),
    getPassesNs: passes.map((p) => round(p)),
    hits,
  };
}

// ---------------------------------------------------------------------------------------------
// Child: (d) bounded store, max = n/10, insert n distinct sessions
// ---------------------------------------------------------------------------------------------

function errorName(err: unknown): string {
  return err instanceof Error ? err.name : String(err);
}

function runBounded(job: Extract<Job, { kind: 'bounded' }>): BoundedResult {
  const { n, max } = job;
  const keys = makeKeys(n);
  const values = makeValues(n);
  let cacheFullErrors = 0;
  let firstErrorMessage: string | null = null;
  let maxSizeSeen = 0;

  let insert: (i: number) => void;
  let size: () => number;
  let has: (k: string) => boolean;
  let close: () => void = () => undefined;

  if (job.lib === 'lru-cache') {
    const c = new LRUCache<string, Decision>(job.ttl ? { max, ttl: 600_000 } : { max });
    insert = (i) => {
      c.set(keys[i]!, values[i]!);
    };
    size = () => c.size;
    has = (k) => c.has(k);
  } else if (job.lib === 'node-cache-maxKeys') {
    // node-cache's only bound: maxKeys. When full, set() throws ECACHEFULL; nothing is evicted.
    const c = new NodeCache({ stdTTL: 600, checkperiod: 0, useClones: false, maxKeys: max });
    insert = (i) => {
      try {
        c.set(keys[i]!, values[i]!);
      } catch (err) {
        if (errorName(err) !== 'ECACHEFULL') throw err;
        cacheFullErrors++;
        if (firstErrorMessage === null) firstErrorMessage = `${errorName(err)}: ${err instanceof Error ? err.message : ''}`;
      }
    };
    size = () => c.getStats().keys;
    has = (k) => c.has(k);
    close = () => c.close();
  } else {
    // What you would have to write yourself to get eviction out of node-cache: a FIFO ring of
    // inserted keys, deleting the oldest before each insert once full (FIFO, not LRU).
    const c = new NodeCache({ stdTTL: 600, checkperiod: 0, useClones: false });
    const ring = new Array<string>(max);
    let head = 0;
    let count = 0;
    insert = (i) => {
      const k = keys[i]!;
      if (count === max) {
        c.del(ring[head]!);
        count--;
      }
      c.set(k, values[i]!);
      ring[head] = k;
      head = (head + 1) % max;
      count++;
    };
    size = () => c.getStats().keys;
    has = (k) => c.has(k);
    close = () => c.close();
  }

  fullGc();
  const t0 = nowNs();
  let tFull = t0;
  for (let i = 0; i < n; i++) {
    insert(i);
    if (i === max - 1) tFull = nowNs();
    if ((i & 1023) === 0) maxSizeSeen = Math.max(maxSizeSeen, size());
  }
  const t1 = nowNs();
  maxSizeSeen = Math.max(maxSizeSeen, size());
  const finalSize = size();

  let newest = 0;
  for (let i = n - max; i < n; i++) if (has(keys[i]!)) newest++;
  let oldest = 0;
  for (let i = 0; i < max; i++) if (has(keys[i]!)) oldest++;
  fullGc();
  const heapAfter = process.memoryUsage().heapUsed;
  close();

  return {
    kind: 'bounded',
    label: job.label,
    n,
    max,
    finalSize,
    maxSizeSeen,
    sizeStayedWithinMax: maxSizeSeen <= max,
    evictedOrRejected: n - finalSize,
    cacheFullErrors,
    firstErrorMessage,
    nsPerOpAll: round(nsPerOp(t0, t1, n)),
    nsPerOpFirstMax: round(nsPerOp(t0, tFull, max)),
    nsPerOpAfterFull: round(nsPerOp(tFull, t1, n - max)),
    newestKeysPresent: newest,
    oldestKeysPresent: oldest,
    heapAfterMiB: round(heapAfter / MiB),
  };
}

// ---------------------------------------------------------------------------------------------
// Child: (e) TTL behaviour. Half the entries get a 200 ms TTL, half a 600 s default.
// ---------------------------------------------------------------------------------------------

const SHORT_TTL_MS = 200;

async function runTtl(job: Extract<Job, { kind: 'ttl' }>): Promise<TtlResult> {
  const { n } = job;
  const keys = makeKeys(n);
  const values = makeValues(n);
  const half = n >> 1;

  if (job.lib === 'lru-cache') {
    // ttlAutopurge: one setTimeout per entry. Measured first, on 100k only (the config to avoid at 1M).
    const m = Math.min(100_000, n);
    fullGc();
    const h0 = process.memoryUsage().heapUsed;
    const ap = new LRUCache<string, Decision>({ max: m, ttl: 600_000, ttlAutopurge: true });
    const a0 = nowNs();
    for (let i = 0; i < m; i++) ap.set(keys[i]!, values[i]!);
    const a1 = nowNs();
    fullGc();
    const h1 = process.memoryUsage().heapUsed;
    ap.clear(); // clears the per-entry timers so the child can exit

    const c = new LRUCache<string, Decision>({ max: n, ttl: 600_000 });
    const shortOpts = { ttl: SHORT_TTL_MS };
    const t0 = nowNs();
    for (let i = 0; i < half; i++) c.set(keys[i]!, values[i]!, shortOpts);
    for (let i = half; i < n; i++) c.set(keys[i]!, values[i]!);
    const t1 = nowNs();
    await sleep(SHORT_TTL_MS + 150);
    const sizeRightAfterExpiry = c.size; // lazy: expired entries still occupy slots until touched/purged
    const s0 = nowNs();
    c.purgeStale();
    const s1 = nowNs();
    const sizeAfterSweep = c.size;
    const l0 = nowNs();
    c.purgeStale(); // nothing stale: pure scan cost over the live half
    const l1 = nowNs();
    let hits = 0;
    let misses = 0;
    for (let i = 0; i < n; i++) {
      if (c.get(keys[i]!) === undefined) misses++;
      else hits++;
    }


    return {
      kind: 'ttl',
      label: job.label,
      n,
      setNsPerOp: round(nsPerOp(t0, t1, n)),
      sizeRightAfterExpiry,
      sweepExpiredMs: round(Number(s1 - s0) / 1e6),
      sweepExpiredRemoved: sizeRightAfterExpiry - sizeAfterSweep,
      sizeAfterSweep,
      sweepLiveMs: round(Number(l1 - l0) / 1e6),
      getAfterExpiryHits: hits,
      getAfterExpiryMisses: misses,
      timerNote: 'no timer: expiry is lazy (get/has) or explicit purgeStale(); ttlAutopurge adds one setTimeout per entry',
      timerLoopBlockMaxMs: null,
      autopurge100kSetNsPerOp: round(nsPerOp(a0, a1, m)),
      autopurge100kHeapMiB: round((h1 - h0) / MiB),
    };
  }

  // node-cache
  const c = new NodeCache({ stdTTL: 600, checkperiod: 0, useClones: false });
  const internals = c as unknown as NodeCacheInternals;
  const t0 = nowNs();
  for (let i = 0; i < half; i++) c.set(keys[i]!, values[i]!, SHORT_TTL_MS / 1000); // ttl is in SECONDS
  for (let i = half; i < n; i++) c.set(keys[i]!, values[i]!);
  const t1 = nowNs();
  await sleep(SHORT_TTL_MS + 150);
  const sizeRightAfterExpiry = c.getStats().keys;
  const s0 = nowNs();
  internals._checkData(false); // exactly what each checkperiod tick runs: for (key in data) _check(key)
  const s1 = nowNs();
  const sizeAfterSweep = c.getStats().keys;
  const l0 = nowNs();
  internals._checkData(false); // nothing expired: pure walk over the live half
  const l1 = nowNs();
  let hits = 0;
  let misses = 0;
  for (let i = 0; i < n; i++) {
    if (c.get<Decision>(keys[i]!) === undefined) misses++;
    else hits++;
  }
  c.close();

  // The real timer: checkperiod = 1 s on the live store; watch the event loop while it fires.
  const timed = new NodeCache({ stdTTL: 600, checkperiod: 1, useClones: false });
  for (let i = half; i < n; i++) timed.set(keys[i]!, values[i]!);
  const h = monitorEventLoopDelay({ resolution: 5 });
  h.enable();
  await sleep(2_300);
  h.disable();
  timed.close();

  return {
    kind: 'ttl',
    label: job.label,
    n,
    setNsPerOp: round(nsPerOp(t0, t1, n)),
    sizeRightAfterExpiry,
    sweepExpiredMs: round(Number(s1 - s0) / 1e6),
    sweepExpiredRemoved: sizeRightAfterExpiry - sizeAfterSweep,
    sizeAfterSweep,
    sweepLiveMs: round(Number(l1 - l0) / 1e6),
    getAfterExpiryHits: hits,
    getAfterExpiryMisses: misses,
    timerNote: 'checkperiod timer (default 600 s, unref) walks ALL keys synchronously each tick; close() stops it',
    timerLoopBlockMaxMs: round(h.max / 1e6),
    autopurge100kSetNsPerOp: null,
    autopurge100kHeapMiB: null,
  };
}

async function childMain(job: Job): Promise<void> {
  let result: ChildResult;
  if (job.kind === 'full') result = runFull(job);
  else if (job.kind === 'bounded') result = runBounded(job);
  else result = await runTtl(job);
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
const CHILD_TIMEOUT_MS = 60_000;

function runChild(job: Job): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = fork(SELF, ['--child', JSON.stringify(job)], {
      execArgv: ['--expose-gc', '--max-old-space-size=4096', '--import', TSX_LOADER],
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
  return x.toLocaleString('en-US', { maximumFractionDigits: 1 });
}

function table(header: string[], rows: (string | number)[][]): string {
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const r of rows) lines.push(`| ${r.map((c) => (typeof c === 'number' ? fmt(c) : c)).join(' | ')} |`);
  return lines.join('\n');
}

async function parentMain(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const n = quick ? 100_000 : 1_000_000;
  const max = n / 10;
  const jobs: Job[] = [
    { kind: 'full', label: 'node-cache useClones:false', lib: 'node-cache', useClones: false, n },
    { kind: 'full', label: 'node-cache useClones:true (default)', lib: 'node-cache', useClones: true, n },
    { kind: 'full', label: 'lru-cache {max}', lib: 'lru-cache', ttl: false, n },
    { kind: 'full', label: 'lru-cache {max, ttl}', lib: 'lru-cache', ttl: true, n },
    { kind: 'bounded', label: 'node-cache maxKeys (useClones:false)', lib: 'node-cache-maxKeys', ttl: false, n, max },
    { kind: 'bounded', label: 'node-cache + hand-rolled FIFO del', lib: 'node-cache-fifo', ttl: false, n, max },
    { kind: 'bounded', label: 'lru-cache {max}', lib: 'lru-cache', ttl: false, n, max },
    { kind: 'bounded', label: 'lru-cache {max, ttl}', lib: 'lru-cache', ttl: true, n, max },
    { kind: 'ttl', label: 'node-cache stdTTL + checkperiod', lib: 'node-cache', n },
    { kind: 'ttl', label: 'lru-cache per-entry ttl', lib: 'lru-cache', n },
  ];

  const started = Date.now();
  const loadAvgAtStart = os.loadavg()[0] ?? 0;
  const results: ChildResult[] = [];
  for (const job of jobs) {
    const t = Date.now();
    process.stderr.write(`[decision-store] ${job.kind.padEnd(7)} ${job.label} ... `);
    const r = await runChild(job);
    process.stderr.write(`${((Date.now() - t) / 1000).toFixed(1)} s\n`);
    results.push(r);
  }

  const full = results.filter((r): r is FullResult => r.kind === 'full');
  const bounded = results.filter((r): r is BoundedResult => r.kind === 'bounded');
  const ttl = results.filter((r): r is TtlResult => r.kind === 'ttl');

  const out: string[] = [];
  out.push(`## Decision store: ${n.toLocaleString('en-US')} sessions (node ${process.version}, ${os.cpus().length} cores, ${new Date().toISOString()})`);
  out.push('');
  out.push('### (a)(b)(c) Full store: memory above keys/values baseline, set and get cost');
  out.push('');
  out.push(
    table(
      ['store', 'heap Δ MiB', 'arrayBuffers Δ MiB', 'total Δ MiB', 'bytes/entry', 'set ns/op (all / best tenth)', 'get ns/op (median / best of 5)', 'hits'],
      full.map((r) => [
        r.label,
        r.mem.heapUsedDeltaMiB,
        r.mem.arrayBuffersDeltaMiB,
        r.mem.totalDeltaMiB,
        r.mem.bytesPerEntry,
        `${fmt(r.setNsPerOp)} / ${fmt(r.setBestChunkNsPerOp)}`,
        `${fmt(r.getNsPerOp)} / ${fmt(r.getBestNsPerOp)}`,
        r.hits,
      ]),
    ),
  );
  out.push('');
  out.push(`### (d) Bounded store: max ${max.toLocaleString('en-US')}, insert ${n.toLocaleString('en-US')} distinct sessions`);
  out.push('');
  out.push(
    table(
      ['store', 'final size', 'max size seen', '≤ max?', 'ECACHEFULL thrown', 'ns/op all', 'ns/op once full', `newest ${max / 1000}k present`, `oldest ${max / 1000}k present`],
      bounded.map((r) => [
        r.label,
        r.finalSize,
        r.maxSizeSeen,
        r.sizeStayedWithinMax ? 'yes' : 'NO',
        r.cacheFullErrors,
        r.nsPerOpAll,
        r.nsPerOpAfterFull,
        r.newestKeysPresent,
        r.oldestKeysPresent,
      ]),
    ),
  );
  const firstErr = bounded.find((r) => r.firstErrorMessage !== null)?.firstErrorMessage;
  if (firstErr) out.push(`\nnode-cache maxKeys error when full: \`${firstErr}\``);
  out.push('');
  out.push(
    `### (e) TTL: ${(n / 2).toLocaleString('en-US')} entries with ${SHORT_TTL_MS} ms TTL + ${(n / 2).toLocaleString('en-US')} with 600 s, checked after ${SHORT_TTL_MS + 150} ms. ` +
      'Sweep = one node-cache checkperiod pass (`_checkData`) / one lru-cache `purgeStale()`',
  );
  out.push('');
  out.push(
    table(
      ['store', 'set ns/op', 'size before sweep', 'sweep (expired) ms', 'removed', 'sweep (all live) ms', 'get hits / misses', 'checkperiod tick: max loop block ms', 'ttlAutopurge 100k: set ns/op, heap MiB'],
      ttl.map((r) => [
        r.label,
        r.setNsPerOp,
        r.sizeRightAfterExpiry,
        r.sweepExpiredMs,
        r.sweepExpiredRemoved,
        r.sweepLiveMs,
        `${fmt(r.getAfterExpiryHits)} / ${fmt(r.getAfterExpiryMisses)}`,
        r.timerLoopBlockMaxMs === null ? 'no timer' : r.timerLoopBlockMaxMs,
        r.autopurge100kSetNsPerOp === null ? 'n/a' : `${fmt(r.autopurge100kSetNsPerOp)}, ${fmt(r.autopurge100kHeapMiB)}`,
      ]),
    ),
  );
  for (const r of ttl) out.push(`\n- ${r.label}: ${r.timerNote}`);
  out.push(
    `\nTotal wall time ${((Date.now() - started) / 1000).toFixed(1)} s. 1-min load average at start ${fmt(loadAvgAtStart)}, end ${fmt(os.loadavg()[0])} ` +
      `(timings are single-threaded; above ~1 means other work shared the 2 cores: prefer the "best" columns, memory figures are unaffected).`,
  );
  console.log(out.join('\n'));

  const dir = path.join(path.dirname(SELF), 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, quick ? 'decision-store.quick.json' : 'decision-store.json');
  const meta = {
    date: new Date().toISOString(),
    node: process.version,
    v8: process.versions.v8,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    totalMemMiB: Math.round(os.totalmem() / MiB),
    n,
    boundedMax: max,
    loadAvg1AtStart: loadAvgAtStart,
    loadAvg1AtEnd: os.loadavg()[0] ?? 0,
    wallSeconds: (Date.now() - started) / 1000,
  };
  writeFileSync(file, `${JSON.stringify({ meta, full, bounded, ttl }, null, 2)}\n`);
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
