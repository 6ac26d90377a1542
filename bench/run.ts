// The comparison bench of the performance issue (`npm run bench` = build + this):
// the edge against nginx doing the same job (N1: auth_request + cached auth subrequest; N2: N1 +
// proxy_cache of playlists and segments) and against the origin served directly, on loopback,
// with the system under test pinned alone on one core. Prints a markdown table per scenario and
// the ratios edge/N1, edge/N2, edge/direct measured in the same run; writes JSON to bench/results/.
//
//   npx tsx bench/run.ts [--scenarios a,b,c,d,e,f] [--duration 10] [--runs 3] [--connections 50]
//                        [--quick] [--no-cross-check] [--ts-viewers 500] [--ts-seconds 30]
//                        [--ts-bitrate 2000000] [--hls-viewers 1000] [--hls-seconds 20] [--stream-runs 2] [--nice -10]
//   npx tsx bench/run.ts --workers-ab [--scenarios a,b] [--duration 10] [--runs 3]
//
// --workers-ab: instead of the comparison with nginx, the edge as one process against --workers 2
// on (a) and (b), on the SUT core alone and on every core (harness/workers.ts says what it hides).
//
// --quick: a seconds-long smoke run of every part; its figures are meaningless (*.quick.json).
// Sends traffic to 127.0.0.1 only; every run is bounded in time; every child is killed on exit.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Children, setAutogroupNice } from './harness/children.js';
import { machineInfo, pinSelf, planPinning } from './harness/machine.js';
import { loadAverage } from './harness/proc.js';
import { checkTargets, hlsTable, targetsTable, throughputTable, tsTable, type ScenarioResult } from './harness/report.js';
import { ALL_SCENARIOS, EDGE_FLAGS, HLS_CHANNEL, THROUGHPUT, type ScenarioId } from './harness/scenarios.js';
import { startStack } from './harness/stack.js';
import { runThroughput } from './harness/throughput.js';
import { runHlsViewers, runTsViewers } from './harness/viewers.js';
import { runWorkersAb } from './harness/workers.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface Args {
  scenarios: ScenarioId[];
  durationS: number;
  runs: number;
  connections: number;
  quick: boolean;
  crossCheck: boolean;
  tsViewers: number;
  tsSeconds: number;
  tsBitrate: number;
  hlsViewers: number;
  hlsSeconds: number;
  nice: number;
  /** Rounds of (e) and (f), each 20-30 s per target. */
  streamRuns: number;
  /** 1 worker vs 2 workers on (a) and (b) instead of the nginx comparison. */
  workersAb: boolean;
}

function parseArgs(argv: string[]): Args {
  const has = (f: string): boolean => argv.includes(f);
  const value = (f: string): string | undefined => {
    const i = argv.indexOf(f);
    return i === -1 ? undefined : argv[i + 1];
  };
  const num = (f: string, def: number): number => {
    const v = value(f);
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${f}: expected a positive number, got ${JSON.stringify(v)}`);
    return n;
  };
  const known = new Set(['--scenarios', '--duration', '--runs', '--connections', '--quick', '--no-cross-check', '--ts-viewers', '--ts-seconds', '--ts-bitrate', '--hls-viewers', '--hls-seconds', '--nice', '--stream-runs', '--workers-ab', '--help']);
  for (const a of argv) if (a.startsWith('--') && !known.has(a)) throw new Error(`unknown flag ${a} (see the header of bench/run.ts)`);
  if (has('--help')) {
    process.stdout.write('usage: npx tsx bench/run.ts [--scenarios a,b,c,d,e,f] [--duration S] [--runs N] [--connections N] [--quick] [--no-cross-check] [--ts-viewers N] [--ts-seconds S] [--ts-bitrate BPS] [--hls-viewers N] [--hls-seconds S] [--stream-runs N] [--nice N] [--workers-ab]\n');
    process.exit(0);
  }
  const quick = has('--quick');
  const workersAb = has('--workers-ab');
  const scenarios = (value('--scenarios') ?? (workersAb ? 'a,b' : ALL_SCENARIOS.join(','))).split(',').map((s) => s.trim()) as ScenarioId[];
  for (const s of scenarios) if (!ALL_SCENARIOS.includes(s)) throw new Error(`--scenarios: unknown scenario ${JSON.stringify(s)} (a-f)`);
  if (workersAb && scenarios.some((s) => s !== 'a' && s !== 'b')) throw new Error('--workers-ab: scenarios a and b only');
  return {
    scenarios,
    durationS: num('--duration', quick ? 2 : 10),
    runs: Math.max(2, Math.round(num('--runs', quick ? 2 : 3))),
    connections: Math.round(num('--connections', 50)),
    quick,
    crossCheck: !has('--no-cross-check'),
    tsViewers: Math.round(num('--ts-viewers', quick ? 50 : 500)),
    tsSeconds: num('--ts-seconds', quick ? 8 : 30),
    tsBitrate: num('--ts-bitrate', 2_000_000),
    hlsViewers: Math.round(num('--hls-viewers', quick ? 100 : 1000)),
    hlsSeconds: num('--hls-seconds', quick ? 10 : 20),
    nice: niceArg(value('--nice')),
    streamRuns: Math.max(2, Math.round(num('--stream-runs', 2))),
    workersAb,
  };
}

/** --nice N: -20..19, default -10 (every bench process: SUT and load side alike). */
function niceArg(v: string | undefined): number {
  if (v === undefined) return DEFAULT_NICE;
  const n = Number(v);
  if (!Number.isInteger(n) || n < -20 || n > 19) throw new Error(`--nice: expected an integer -20..19, got ${JSON.stringify(v)}`);
  return n;
}

/**
 * On a machine shared with other work, processes outside the bench take turns on the SUT's core
 * (the "other on SUT core %" column). A higher priority for every bench process (the SUT, the
 * load generator, origin, middleware: all alike, so no target is favoured) keeps their share of
 * the CPU. Children inherit the nice value of the thread that spawns them.
 */
const DEFAULT_NICE = -10;

function applyNice(nice: number): string {
  if (nice === 0) return 'normal priority (nice 0)';
  try {
    os.setPriority(nice);
    const group = setAutogroupNice('self', nice) ? ' and autogroup' : '';
    return `every bench process at nice${group} ${nice} (the SUT and the load side alike; --nice 0 to turn off)`;
  } catch (err) {
    return `normal priority (could not set nice ${nice}: ${(err as Error).message})`;
  }
}

/** nginx and wrk are Debian packages: install them when missing (as root), else say how. */
function preflight(): void {
  const missing = [['nginx', 'nginx-light'], ['wrk', 'wrk']].filter(([bin]) => !['/usr/sbin/', '/usr/bin/', '/usr/local/bin/'].some((d) => existsSync(`${d}${bin}`)));
  if (missing.length === 0) return;
  const pkgs = missing.map(([, p]) => p!);
  if (process.getuid?.() !== 0) throw new Error(`missing ${pkgs.join(', ')}: sudo apt-get install -y ${pkgs.join(' ')}`);
  process.stderr.write(`bench: installing ${pkgs.join(', ')} (apt-get)\n`);
  execFileSync('apt-get', ['update'], { stdio: 'inherit' });
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  preflight();
  const pinning = planPinning();
  pinSelf(pinning);
  const priority = applyNice(args.nice);
  const machine = machineInfo();
  const started = new Date();
  const loadAvgStart = loadAverage();
  const out = (s: string): void => {
    process.stdout.write(`${s}\n`);
  };
  const header = [
    `# Edge bench${args.quick ? ' (QUICK: smoke run, figures meaningless)' : ''}`,
    '',
    `${started.toISOString()} · ${machine.cpuModel}, ${machine.cpus} cores, ${machine.memGiB} GiB · ${machine.kernel} · Node ${machine.node} · nginx ${machine.nginx} · ${machine.wrk}`,
    '',
    `Pinning: ${pinning.describe()}. Priority: ${priority}.`,
    `Load average at start: ${loadAvgStart.map((x) => x.toFixed(2)).join(' ')}. A run is **load-bound** when a load core was ≥ 95 % busy, **noisy** when the SUT core spent > 10 % on other processes.`,
    `Runs: ${args.durationS} s × ${args.runs} rounds, ${args.connections} connections, interleaved (N1, N2, edge, direct, N1, …). Edge: \`node dist/main.js\` on the SUT core, log level warn, extra flags per scenario from bench/harness/scenarios.ts EDGE_FLAGS (${Object.entries(EDGE_FLAGS).map(([k, v]) => `${k}: ${v.length === 0 ? 'none' : v.join(' ')}`).join('; ')}).`,
    '',
  ].join('\n');
  out(header);

  const children = new Children(args.nice);
  const stack = await startStack(children, pinning, ROOT);
  if (args.workersAb) {
    await workersAb(args, stack, header, started, machine, pinning, loadAvgStart, out);
    return;
  }
  const results: ScenarioResult[] = [];
  const tables: string[] = [];
  const log = (l: string): void => {
    process.stderr.write(`${l}\n`);
  };
  try {
    out(`Files and nginx caches in ${stack.tmp}. Origin: nginx static files (${stack.media.source}); segments 1,048,664 bytes (5,578 TS packets); middleware: Node, ~1 ms per call (bench/procs/middleware.ts).\n`);
    for (const id of args.scenarios) {
      log(`scenario ${id}`);
      let r: ScenarioResult;
      let table: string;
      if (id === 'e') {
        r = await runTsViewers(
          stack,
          { viewers: args.tsViewers, channels: ['ch1', 'ch2', 'ch3', 'ch4', 'ch5'], durationS: args.tsSeconds, rampS: Math.min(3, args.tsSeconds / 4), warmupS: Math.min(6, args.tsSeconds / 3), stallAfterS: Math.min(4, args.tsSeconds / 4), bitsPerSecond: args.tsBitrate },
          args.streamRuns,
          log,
        );
        table = tsTable(r);
      } else if (id === 'f') {
        r = await runHlsViewers(stack, { viewers: args.hlsViewers, channel: HLS_CHANNEL, durationS: args.hlsSeconds, rampS: Math.min(4, args.hlsSeconds / 4), targetDurationS: 4 }, args.streamRuns, log);
        table = hlsTable(r);
      } else {
        r = await runThroughput(stack, THROUGHPUT[id], { durationS: args.durationS, runs: args.runs, connections: args.connections, warmupS: args.quick ? 0.5 : 2, crossCheck: args.crossCheck && id === 'a' }, log);
        table = throughputTable(r, args);
      }
      results.push(r);
      tables.push(table);
      out(table);
    }
  } finally {
    await stack.close();
  }
  const checks = checkTargets(results);
  out(targetsTable(checks));
  const loadAvgEnd = loadAverage();
  out(`Load average at end: ${loadAvgEnd.map((x) => x.toFixed(2)).join(' ')}. Command: \`npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}\`.`);

  const dir = join(ROOT, 'bench/results');
  await mkdir(dir, { recursive: true });
  const suffix = args.quick ? '.quick.json' : '.json';
  const json = JSON.stringify({ date: started.toISOString(), quick: args.quick, args, machine, pinning: { enabled: pinning.enabled, sutCores: pinning.sutCores, loadCores: pinning.loadCores, description: pinning.describe() }, loadAvgStart, loadAvgEnd, edgeFlags: EDGE_FLAGS, results, targets: checks, markdown: [header, ...tables, targetsTable(checks)].join('\n') }, null, 2);
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  await writeFile(join(dir, `bench-${stamp}${suffix}`), json);
  await writeFile(join(dir, `bench-latest${suffix}`), json);
  out(`\nJSON: bench/results/bench-${stamp}${suffix} (and bench-latest${suffix})`);
}

/** --workers-ab: 1 worker vs 2 workers on (a) and (b); its own JSON (bench-workers-*.json). */
async function workersAb(args: Args, stack: Awaited<ReturnType<typeof startStack>>, header: string, started: Date, machine: ReturnType<typeof machineInfo>, pinning: ReturnType<typeof planPinning>, loadAvgStart: number[], out: (s: string) => void): Promise<void> {
  let markdown: string;
  let results: Awaited<ReturnType<typeof runWorkersAb>>['results'];
  try {
    ({ markdown, results } = await runWorkersAb(stack, args.scenarios as ('a' | 'b')[], { durationS: args.durationS, runs: args.runs, connections: args.connections, warmupS: args.quick ? 0.5 : 2, crossCheck: false }, (l) => process.stderr.write(`${l}\n`)));
  } finally {
    await stack.close();
  }
  out(markdown);
  const loadAvgEnd = loadAverage();
  out(`Load average at end: ${loadAvgEnd.map((x) => x.toFixed(2)).join(' ')}. Command: \`npm run bench -- ${process.argv.slice(2).join(' ')}\`.`);
  const dir = join(ROOT, 'bench/results');
  await mkdir(dir, { recursive: true });
  const suffix = args.quick ? '.quick.json' : '.json';
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  const json = JSON.stringify({ date: started.toISOString(), quick: args.quick, args, machine, pinning: { enabled: pinning.enabled, sutCores: pinning.sutCores, loadCores: pinning.loadCores, description: pinning.describe() }, loadAvgStart, loadAvgEnd, results, markdown: [header, markdown].join('\n') }, null, 2);
  await writeFile(join(dir, `bench-workers-${stamp}${suffix}`), json);
  await writeFile(join(dir, `bench-workers-latest${suffix}`), json);
  out(`\nJSON: bench/results/bench-workers-${stamp}${suffix} (and bench-workers-latest${suffix})`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
