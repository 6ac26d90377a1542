// One measured run: while a load runs, sample the system under test (its process tree's CPU and
// RSS), the load generator's CPU, and every core's busy time; afterwards, judge fairness:
//  - load-bound: a load core was ≥ LOAD_BOUND busy, so the figure may be the load side's limit;
//  - noisy: the SUT core did work for processes other than the SUT (other users of the machine);
//  - pinning: the SUT's processes were allowed on the SUT core only (what `taskset -p` shows).
import type { Pinning } from './machine.js';
import { allowedCpus, coreBusy, coreTimes, cpuSeconds, loadAverage, processTree, rssBytes } from './proc.js';

export const LOAD_BOUND = 0.95;
/** Busy time on the SUT core not spent by the SUT, above which the run is marked noisy. */
export const NOISY = 0.1;
const SAMPLE_MS = 250;

export interface Sample {
  /** Wall seconds of the measured window. */
  elapsedS: number;
  /** SUT process tree: CPU as % of one core, max RSS sampled (bytes), RSS at start and end. */
  sutCpuPct: number;
  sutRssMax: number;
  sutRssStart: number;
  sutRssEnd: number;
  /** Load generator process tree CPU, % of one core (sampled; the last ≤ 250 ms are missed). */
  loadGenCpuPct: number;
  /** Busy % per load core, and on the SUT core. */
  loadCoresPct: number[];
  /** CPU of the bench's own load side (generator, origin, middleware, this process), % of one core. */
  loadOwnPct: number;
  sutCorePct: number;
  /** SUT core busy time not spent by the SUT (other processes, interrupts), % of the core. */
  foreignOnSutCorePct: number;
  loadBound: boolean;
  noisy: boolean;
  loadAvg: [number, number, number];
  /** Cpus_allowed_list of each SUT process; all must equal the SUT core when pinned. */
  sutAffinity: string[];
  pinnedOk: boolean;
}

/**
 * Runs `load` (which resolves when the load is over) while sampling. `loadGenPid` is read at the
 * first tick (the generator is started by `load`).
 */
export async function measure<T>(
  pinning: Pinning,
  sutPid: number,
  load: () => { pid: number | undefined; done: Promise<T> },
  /** The bench's other load-side processes (each pid counted alone: pass trees expanded). */
  loadSide: readonly number[] = [],
): Promise<{ result: T; sample: Sample }> {
  const sutPids = processTree(sutPid);
  const sidePids = loadSide;
  const side0 = cpuSeconds(sidePids);
  const t0 = performance.now();
  const cores0 = coreTimes();
  const cpu0 = cpuSeconds(sutPids);
  const rssStart = rssBytes(sutPids);
  let rssMax = rssStart;
  const { pid: genPid, done } = load();
  const genPids = genPid === undefined ? [] : processTree(genPid);
  const gen0 = cpuSeconds(genPids);
  let genLast = gen0;
  let genLastAt = t0;
  const timer = setInterval(() => {
    rssMax = Math.max(rssMax, rssBytes(sutPids));
    if (genPids.length > 0) {
      const c = cpuSeconds(genPids);
      if (c > 0) {
        genLast = c;
        genLastAt = performance.now();
      }
    }
  }, SAMPLE_MS);
  let result: T;
  try {
    result = await done;
  } finally {
    clearInterval(timer);
  }
  const elapsedS = (performance.now() - t0) / 1000;
  const cores1 = coreTimes();
  const cpu1 = cpuSeconds(sutPids);
  const side1 = cpuSeconds(sidePids);
  const rssEnd = rssBytes(sutPids);
  rssMax = Math.max(rssMax, rssEnd);
  const loadCoresPct = coreBusy(cores0, cores1, pinning.loadCores).map((b) => b * 100);
  const sutCorePct = pinning.enabled ? coreBusy(cores0, cores1, pinning.sutCores)[0]! * 100 : 0;
  const sutCpuPct = ((cpu1 - cpu0) / elapsedS) * 100;
  // A process that has exited since (nginx's cache loader does) has no affinity to check.
  const affinity = sutPids.map((p) => allowedCpus(p)).filter((a): a is string => a !== undefined);
  const loadGenCpuPct = genLastAt > t0 ? ((genLast - gen0) / ((genLastAt - t0) / 1000)) * 100 : 0;
  return {
    result,
    sample: {
      elapsedS,
      sutCpuPct,
      sutRssMax: rssMax,
      sutRssStart: rssStart,
      sutRssEnd: rssEnd,
      loadGenCpuPct,
      loadCoresPct,
      loadOwnPct: ((side1 - side0) / elapsedS) * 100 + loadGenCpuPct,
      sutCorePct,
      foreignOnSutCorePct: pinning.enabled ? Math.max(0, sutCorePct - sutCpuPct) : 0,
      loadBound: loadCoresPct.some((p) => p >= LOAD_BOUND * 100),
      noisy: pinning.enabled && sutCorePct - sutCpuPct > NOISY * 100,
      loadAvg: loadAverage(),
      sutAffinity: affinity,
      pinnedOk: !pinning.enabled || affinity.every((a) => a === pinning.sutCores.join(',')),
    },
  };
}
