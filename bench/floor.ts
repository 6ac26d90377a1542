// Where Node's floor is, for the performance issue's scenarios (a), (c), (d), and A/B runs of edge
// builds: wrk against N1 (nginx, auth_request with the auth subrequest cached: harness/nginx.ts),
// the floor (bare Node sending the same answer: procs/floor.ts) and one or more builds of the
// edge, interleaved round by round (N1, floor, edge, then edge, floor, N1, …), every target alone
// on the SUT core, everything else on the load core (the harness of `npm run bench`: origin,
// middleware, pinning, sampling). The robust figure is the SUT's CPU time per request.
//
//   npm run build && npx tsx bench/floor.ts [--scenarios a,c,d] [--runs 3] [--duration 5]
//       [--connections 50] [--edge NAME=DIR]... [--no-n1] [--no-floor] [--floor-request] [--nice -10]
//       [--json FILE]
//
// --edge NAME=DIR: a build of the edge (DIR/dist/main.js and DIR/package.json; default: this
// checkout as "edge"). Repeat it for an A/B: e.g. copy dist/ and package.json of the commit before
// a change to .ab/before/ (inside the checkout, so node_modules resolves) and pass
// `--edge before=.ab/before --edge after=.`.
//
// The floors, each taking the edge's own answer (status, headers, body) so both send the same bytes:
//   (a) bare Node answering the edge's rewritten ~600-byte playlist;
//   (c) bare Node answering the edge's 403 JSON;
//   (d) bare Node making one undici Pool request to the same middleware (~1 ms, on the load core)
//       per request, then answering the playlist; on the dispatch API, as the edge's middleware
//       client (--floor-request adds the same on Pool.request, undici's promise API).
// Sends traffic to 127.0.0.1 only; every run is bounded in time; every child is killed on exit.
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { get as httpGet } from 'node:http';
import os from 'node:os';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { answers, Children, setAutogroupNice, sleep, waitFor, type Child } from './harness/children.js';
import { startEdge } from './harness/edge.js';
import { machineInfo, pinSelf, planPinning } from './harness/machine.js';
import { measure, type Sample } from './harness/measure.js';
import { loadAverage, processTree } from './harness/proc.js';
import { EDGE_FLAGS, THROUGHPUT } from './harness/scenarios.js';
import { startStack, type MiddlewareStats, type Stack } from './harness/stack.js';
import { startWrk, type WrkResult } from './harness/wrk.js';
import { unusedPort } from '../test/helpers/ports.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
type Scenario = 'a' | 'c' | 'd';
const MARKER = /edge_session=([A-Za-z0-9_-]+)/;
/** Clock ticks per second of /proc/<pid>/stat (USER_HZ: 100 on Linux). */
const USER_HZ = 100;

/** User and system CPU seconds (all threads) of the processes: where a request's time goes, the program or the kernel (its socket writes). */
function userSystem(pids: readonly number[]): { user: number; system: number } {
  let user = 0;
  let system = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      user += Number(fields[11]) / USER_HZ;
      system += Number(fields[12]) / USER_HZ;
    } catch {
      // exited
    }
  }
  return { user, system };
}

/** Headers Node's http server writes itself, on the edge's answers as on the floor's. */
const NODE_ADDED = new Set(['date', 'connection', 'keep-alive', 'transfer-encoding']);

interface Args {
  scenarios: Scenario[];
  runs: number;
  durationS: number;
  connections: number;
  edges: { name: string; dir: string }[];
  n1: boolean;
  floor: boolean;
  /** (d): a second floor on undici's promise API (Pool.request), to show what that API costs. */
  floorRequest: boolean;
  nice: number;
  json: string | undefined;
}

function parseArgs(argv: string[]): Args {
  const value = (f: string): string | undefined => {
    const i = argv.indexOf(f);
    return i === -1 ? undefined : argv[i + 1];
  };
  const num = (f: string, def: number): number => {
    const v = value(f);
    const n = v === undefined ? def : Number(v);
    if (!Number.isFinite(n)) throw new Error(`${f}: expected a number, got ${JSON.stringify(v)}`);
    return n;
  };
  const known = new Set(['--scenarios', '--runs', '--duration', '--connections', '--edge', '--no-n1', '--no-floor', '--floor-request', '--nice', '--json']);
  for (const a of argv) if (a.startsWith('--') && !known.has(a)) throw new Error(`unknown flag ${a} (see the header of bench/floor.ts)`);
  const scenarios = (value('--scenarios') ?? 'a,c,d').split(',') as Scenario[];
  for (const s of scenarios) if (s !== 'a' && s !== 'c' && s !== 'd') throw new Error(`--scenarios: a, c or d, got ${JSON.stringify(s)}`);
  const edges: { name: string; dir: string }[] = [];
  argv.forEach((a, i) => {
    if (a !== '--edge') return;
    const spec = argv[i + 1] ?? '';
    const eq = spec.indexOf('=');
    if (eq <= 0) throw new Error(`--edge NAME=DIR, got ${JSON.stringify(spec)}`);
    const dir = spec.slice(eq + 1);
    edges.push({ name: spec.slice(0, eq), dir: isAbsolute(dir) ? dir : join(ROOT, dir) });
  });
  if (edges.length === 0) edges.push({ name: 'edge', dir: ROOT });
  return {
    scenarios,
    runs: Math.max(1, Math.round(num('--runs', 3))),
    durationS: num('--duration', 5),
    connections: Math.round(num('--connections', 50)),
    edges,
    n1: !argv.includes('--no-n1'),
    floor: !argv.includes('--no-floor'),
    floorRequest: argv.includes('--floor-request'),
    nice: Math.round(num('--nice', -10)),
    json: value('--json'),
  };
}

interface Target {
  name: string;
  kind: 'N1' | 'floor' | 'edge';
  base: string;
  pid: number;
}

interface Run {
  target: string;
  round: number;
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  cpuUsPerReq: number;
  /** The same split: user (the program) and system (the kernel: socket reads and writes, epoll). */
  userUsPerReq: number;
  systemUsPerReq: number;
  requests: number;
  valid: boolean;
  why: string;
  middlewareCalls: number;
  sample: Sample;
}

/** GET with the raw header list (fetch would merge and lowercase them). */
function rawGet(url: string): Promise<{ status: number; headers: string[]; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpGet(url, { headers: { connection: 'close' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.rawHeaders, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`GET ${url}: timeout`)));
  });
}

async function startFloor(stack: Stack, children: Children, sc: Scenario, answer: { status: number; headers: string[]; body: Buffer }, name = 'floor', mode = sc === 'd' ? 'auth' : 'fixed'): Promise<{ target: Target; child: Child }> {
  const headers: string[] = [];
  for (let i = 0; i < answer.headers.length; i += 2) if (!NODE_ADDED.has(answer.headers[i]!.toLowerCase())) headers.push(answer.headers[i]!, answer.headers[i + 1]!);
  const file = join(stack.tmp, `floor-${sc}.json`);
  writeFileSync(file, JSON.stringify({ status: answer.status, headers, body: answer.body.toString('base64') }));
  const args = mode === 'fixed' ? [mode, file] : [mode, file, stack.middleware.url];
  const cmd = [...stack.pinning.sutPrefix(), process.execPath, '--import', 'tsx', join(ROOT, 'bench/procs/floor.ts'), ...args];
  const child: Child = children.spawn(`${name}-${sc}`, cmd[0]!, cmd.slice(1), { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  let port = 0;
  await waitFor(`floor-${sc}`, async () => {
    port = Number(/\{"port":(\d+)\}/.exec(child.output())?.[1] ?? 0);
    return port > 0;
  }, 30_000, child);
  const base = `http://127.0.0.1:${port}`;
  await waitFor(`floor-${sc}`, () => answers(`${base}/play/ch1/index.m3u8?token=ok-floor-probe`), 10_000, child);
  return { target: { name, kind: 'floor', base, pid: child.pid }, child };
}

/** `own`: the processes started for this scenario (N1, floor, edges), stopped by the caller afterwards. */
async function runScenario(stack: Stack, children: Children, args: Args, sc: Scenario, own: Child[], log: (s: string) => void): Promise<ScenarioResult> {
  const spec = THROUGHPUT[sc];
  const targets: Target[] = [];
  if (args.n1) {
    const n = await stack.startProxy('N1', `N1-floor-${sc}`);
    own.push(n.child);
    targets.push({ name: 'N1', kind: 'N1', base: n.url, pid: n.child.pid });
  }
  const edges: Target[] = [];
  for (const e of args.edges) {
    const edge = await startEdge(children, `${e.name}-${sc}`, { root: e.dir, port: await unusedPort(), adminPort: await unusedPort(), upstream: stack.origin.url, backend: `${stack.middleware.url}/auth`, extraFlags: EDGE_FLAGS[sc] }, stack.pinning.sutPrefix());
    own.push(edge.child);
    edges.push({ name: e.name, kind: 'edge', base: edge.url, pid: edge.child.pid });
  }
  // The floor answers what the first edge answers: the 403 of a denied token, or a rewritten playlist.
  const answer = await rawGet(`${edges[0]!.base}${sc === 'c' ? spec.path : `/play/ch1/index.m3u8?token=ok-floor-${sc}`}`);
  if (answer.status !== (sc === 'c' ? 403 : 200)) throw new Error(`${sc}: the edge answered ${answer.status}`);
  if (args.floor) {
    const floor = await startFloor(stack, children, sc, answer);
    own.push(floor.child);
    targets.push(floor.target);
    if (sc === 'd' && args.floorRequest) {
      const promiseApi = await startFloor(stack, children, sc, answer, 'floor-request', 'auth-request');
      own.push(promiseApi.child);
      targets.push(promiseApi.target);
    }
  }
  targets.push(...edges);

  const markers = new Map<string, string>();
  async function urlFor(t: Target): Promise<string> {
    if (t.kind === 'edge' && spec.edgeSession !== undefined) {
      let marker = markers.get(t.name);
      if (marker === undefined || (await rawGet(`${t.base}${spec.edgeSession.hammer}?edge_session=${marker}`)).status !== 200) {
        const first = await rawGet(`${t.base}${spec.edgeSession.open}`);
        marker = MARKER.exec(first.body.toString())?.[1];
        if (marker === undefined) throw new Error(`${sc}/${t.name}: no marker (status ${first.status})`);
        markers.set(t.name, marker);
      }
      return `${t.base}${spec.edgeSession.hammer}?edge_session=${marker}`;
    }
    return `${t.base}${spec.path}`;
  }
  let nonce = 0;
  const wrk = (url: string, durationS: number) => {
    nonce++;
    return startWrk(children, {
      url,
      threads: Math.max(1, stack.pinning.loadCores.length),
      connections: args.connections,
      durationS,
      script: spec.uniqueToken ? stack.wrk.uniqueToken : stack.wrk.plain,
      scriptArgs: spec.uniqueToken ? [new URL(url).pathname, `f${sc}${Date.now().toString(36)}r${nonce}`] : undefined,
    });
  };
  for (const t of targets) {
    log(`  warm-up ${t.name}`);
    await wrk(await urlFor(t), 2).result;
    await sleep(500);
  }
  const expected = sc === 'c' ? 403 : 200;
  const runs: Run[] = [];
  for (let round = 1; round <= args.runs; round++) {
    // ABBA: every other round runs the targets in reverse, so a drift of the machine's load favours none.
    for (const t of round % 2 === 0 ? [...targets].reverse() : targets) {
      const url = await urlFor(t);
      const mw0 = await stack.middleware.stats<MiddlewareStats>();
      const tree = processTree(t.pid);
      const cpu0 = userSystem(tree);
      const { result: w, sample } = await measure(stack.pinning, t.pid, () => {
        const r = wrk(url, args.durationS);
        return { pid: r.child.pid, done: r.result };
      }, stack.loadSidePids());
      const cpu1 = userSystem(tree);
      const mw1 = await stack.middleware.stats<MiddlewareStats>();
      const run = toRun(t.name, round, w, sample, expected, mw1.calls - mw0.calls, { user: cpu1.user - cpu0.user, system: cpu1.system - cpu0.system });
      runs.push(run);
      log(`  round ${round} ${t.name.padEnd(8)} ${fmt(run.reqPerSec, 0).padStart(7)} req/s  p99 ${fmt(run.p99Ms, 2)} ms  SUT ${fmt(sample.sutCpuPct, 0)} %  ${fmt(run.cpuUsPerReq, 1)} µs/req${sample.noisy ? ` noisy(+${fmt(sample.foreignOnSutCorePct, 0)} %)` : ''}${run.valid ? '' : ` INVALID: ${run.why}`}`);
      await sleep(500);
    }
  }
  return { runs, targets: targets.map((t) => t.name), answerBytes: answer.body.length };
}

function toRun(target: string, round: number, w: WrkResult, sample: Sample, expected: number, middlewareCalls: number, cpu: { user: number; system: number }): Run {
  const socketErrors = w.connectErrors + w.readErrors + w.writeErrors + w.timeouts;
  const wrong = expected >= 400 ? w.requests - w.statusErrors : w.statusErrors;
  const why = [socketErrors > 0 ? `${socketErrors} socket errors` : '', wrong > 0 ? `${wrong} not ${expected}` : ''].filter((x) => x !== '').join(', ');
  return {
    target,
    round,
    reqPerSec: w.requests / (w.durationUs / 1e6),
    p50Ms: w.p50Us / 1000,
    p99Ms: w.p99Us / 1000,
    cpuUsPerReq: w.requests === 0 ? 0 : ((sample.sutCpuPct / 100) * sample.elapsedS * 1e6) / w.requests,
    userUsPerReq: w.requests === 0 ? 0 : (cpu.user * 1e6) / w.requests,
    systemUsPerReq: w.requests === 0 ? 0 : (cpu.system * 1e6) / w.requests,
    requests: w.requests,
    valid: why === '' && w.requests > 0,
    why,
    middlewareCalls,
    sample,
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function fmt(n: number, digits: number): string {
  return Number.isFinite(n) ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '–';
}

interface ScenarioResult {
  runs: Run[];
  targets: string[];
  answerBytes: number;
}

function table(sc: Scenario, result: ScenarioResult): string {
  const lines = [`### (${sc}) ${THROUGHPUT[sc].title.replace(/^\([a-d]\) /, '')} (answer body ${result.answerBytes} bytes)`, '', '| target | req/s | p99 ms | SUT core % | CPU µs/req | user + system µs/req | best run µs/req | runs (µs/req) | checks |', '|---|---|---|---|---|---|---|---|---|'];
  const med: Record<string, { us: number; rps: number; min: number }> = {};
  for (const name of result.targets) {
    const all = result.runs.filter((r) => r.target === name);
    const valid = all.filter((r) => r.valid);
    const us = median(valid.map((r) => r.cpuUsPerReq));
    const rps = median(valid.map((r) => r.reqPerSec));
    // Other load on a shared machine only adds to a run's CPU time: the best run is the steadiest estimate of the cost.
    const min = Math.min(...valid.map((r) => r.cpuUsPerReq));
    med[name] = { us, rps, min };
    const checks = [all.length - valid.length > 0 ? `INVALID ${all.length - valid.length}/${all.length}` : '', all.some((r) => r.sample.noisy) ? `noisy ${all.filter((r) => r.sample.noisy).length}/${all.length}` : '', all.some((r) => r.sample.loadBound) ? `load-bound ${all.filter((r) => r.sample.loadBound).length}/${all.length}` : ''].filter((x) => x !== '').join(', ');
    lines.push(`| ${name} | ${fmt(rps, 0)} | ${fmt(median(valid.map((r) => r.p99Ms)), 2)} | ${fmt(median(valid.map((r) => r.sample.sutCpuPct)), 0)} | **${fmt(us, 1)}** | ${fmt(median(valid.map((r) => r.userUsPerReq)), 1)} + ${fmt(median(valid.map((r) => r.systemUsPerReq)), 1)} | ${fmt(min, 1)} | ${all.map((r) => fmt(r.cpuUsPerReq, 1)).join(', ')} | ${checks} |`);
  }
  lines.push('');
  // Ratios in requests per CPU-second (N1 µs / X µs): what each would serve with a core to itself.
  // Paired by round (the two ran seconds apart): steadier than the ratio of medians on a shared machine.
  const paired = (a: string, b: string): number[] => {
    const out: number[] = [];
    for (const r of result.runs.filter((x) => x.target === a && x.valid)) {
      const other = result.runs.find((x) => x.target === b && x.round === r.round && x.valid);
      if (other !== undefined) out.push(other.cpuUsPerReq / r.cpuUsPerReq);
    }
    return out;
  };
  const ratio = (a: string, b: string): string => {
    if (med[a] === undefined || med[b] === undefined) return '';
    const rounds = paired(a, b);
    return `- ${a} / ${b}: **${fmt(med[b].us / med[a].us, 2)}×** in requests per CPU-second (${fmt(med[a].rps / med[b].rps, 2)}× in req/s); paired by round: median ${fmt(median(rounds), 2)}× (${rounds.map((x) => fmt(x, 2)).join(', ')})`;
  };
  const edges = result.targets.filter((t) => t !== 'N1' && !t.startsWith('floor'));
  const out = [ratio('floor', 'N1'), ratio('floor-request', 'N1'), ...edges.map((e) => ratio(e, 'N1')), ...edges.map((e) => ratio(e, 'floor'))];
  for (let i = 1; i < edges.length; i++) out.push(`${ratio(edges[i]!, edges[0]!)}; best runs: **${fmt(med[edges[0]!]!.min / med[edges[i]!]!.min, 2)}×**`);
  lines.push(...out.filter((x) => x !== ''));
  return lines.join('\n');
}

function applyNice(nice: number): string {
  if (nice === 0) return 'nice 0';
  try {
    os.setPriority(nice);
    setAutogroupNice('self', nice);
    return `nice and autogroup ${nice}, every bench process alike`;
  } catch (err) {
    return `nice 0 (could not set ${nice}: ${(err as Error).message})`;
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const pinning = planPinning();
  pinSelf(pinning);
  const priority = applyNice(args.nice);
  const machine = machineInfo();
  const started = new Date();
  const out = (s: string): void => void process.stdout.write(`${s}\n`);
  const log = (s: string): void => void process.stderr.write(`${s}\n`);
  out(`# Floor bench, ${started.toISOString()}\n\n${machine.cpuModel}, ${machine.cpus} cores · ${machine.kernel} · Node ${machine.node} · nginx ${machine.nginx} · ${machine.wrk}. ${pinning.describe()}; ${priority}. Load average ${loadAverage().map((x) => x.toFixed(2)).join(' ')}. ${args.runs} interleaved rounds × ${args.durationS} s, ${args.connections} connections. Edges: ${args.edges.map((e) => `${e.name} = ${e.dir}`).join(', ')}.\n`);
  const children = new Children(args.nice);
  const stack = await startStack(children, pinning, ROOT);
  const results: Partial<Record<Scenario, ScenarioResult>> = {};
  const tables: string[] = [];
  try {
    for (const sc of args.scenarios) {
      log(`scenario ${sc}`);
      const own: Child[] = [];
      try {
        results[sc] = await runScenario(stack, children, args, sc, own, log);
      } finally {
        await Promise.all(own.map((c) => c.stop()));
      }
      tables.push(table(sc, results[sc]));
      out(`${tables.at(-1)!}\n`);
    }
  } finally {
    await stack.close();
  }
  const cmd = `npx tsx bench/floor.ts ${process.argv.slice(2).join(' ')}`.trim();
  out(`Load average at end: ${loadAverage().map((x) => x.toFixed(2)).join(' ')}. Command: \`${cmd}\`.`);
  if (args.json !== undefined) {
    await mkdir(join(ROOT, 'bench/results'), { recursive: true });
    const file = isAbsolute(args.json) ? args.json : join(ROOT, 'bench/results', args.json);
    await writeFile(file, JSON.stringify({ date: started.toISOString(), args, machine, command: cmd, results, markdown: tables.join('\n\n') }, null, 2));
    out(`JSON: ${file}`);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`floor bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
