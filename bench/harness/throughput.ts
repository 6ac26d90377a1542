// Scenarios (a)-(d): wrk against each target in turn, interleaved round by round
// (N1, N2, edge, direct, N1, N2, edge, direct, …), every run sampled (measure.ts) and validated
// (every response had the expected status, no socket errors), middleware calls counted per run.
import { startAutocannon, type AutocannonResult } from './autocannon.js';
import { sleep } from './children.js';
import { MALLOC_ENV, startEdge } from './edge.js';
import { measure, type Sample } from './measure.js';
import { processTree, rssBytes } from './proc.js';
import type { Pinning } from './machine.js';
import { EDGE_FLAGS, TWO_WORKERS_FLAGS, type TargetName, type ThroughputScenario } from './scenarios.js';
import { type MiddlewareStats, type Stack } from './stack.js';
import { startWrk, type WrkResult } from './wrk.js';
import { unusedPort } from '../../test/helpers/ports.js';

export interface ThroughputSettings {
  durationS: number;
  runs: number;
  connections: number;
  warmupS: number;
  /** Run the autocannon cross-check after the wrk rounds. */
  crossCheck: boolean;
  /**
   * Where the edges run and how runs are judged, when not the SUT core of `stack.pinning`
   * (the workers A/B: harness/workers.ts). nginx and direct always use the stack's.
   */
  sut?: { readonly prefix: readonly string[]; readonly pinning: Pinning; readonly flags?: readonly string[] };
}

export interface ThroughputRun {
  target: TargetName;
  round: number;
  reqPerSec: number;
  /** Response bytes (headers + body) per second, in MB (10^6 bytes). */
  mbPerSec: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  statusErrors: number;
  socketErrors: number;
  valid: boolean;
  invalidReason?: string;
  middlewareCalls: number;
  /** SUT CPU time per request, µs: barely moved by other load on the machine, unlike req/s. */
  cpuUsPerReq: number;
  sample: Sample;
}

export interface CrossCheckRun {
  target: TargetName;
  autocannon: AutocannonResult;
  sample: Sample;
}

export interface ThroughputResult {
  kind: 'throughput';
  id: ThroughputScenario['id'];
  title: string;
  note: string;
  url: Record<string, string>;
  edgeArgv: readonly string[];
  targets: readonly TargetName[];
  /** RSS of each SUT after start (and the session opened), before any load. */
  idleRss: Partial<Record<TargetName, number>>;
  runs: ThroughputRun[];
  crossCheck: CrossCheckRun[];
}

interface Target {
  name: TargetName;
  base: string;
  pid: number;
  isEdge: boolean;
}

/** GET on loopback: status and body text. */
async function get(url: string): Promise<{ status: number; text: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, text: await res.text() };
}

/** edge+redis must measure the edge WITH Redis: one that fell back to its local state would flatter it. */
async function expectStoreUp(adminUrl: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    if (/^edge_store_up(\{[^}]*\})? 1$/m.test((await get(`${adminUrl}/metrics`)).text)) return;
    await sleep(100);
  }
  throw new Error(`edge+redis: ${adminUrl}/metrics does not show edge_store_up 1 after 5 s`);
}

const MARKER = /edge_session=([A-Za-z0-9_-]+)/;

export async function runThroughput(stack: Stack, sc: ThroughputScenario, s: ThroughputSettings, log: (line: string) => void): Promise<ThroughputResult> {
  const targets: Target[] = [];
  let edgeArgv: readonly string[] = [];
  const names = [...sc.targets];
  for (const name of sc.targets) {
    if (name === 'direct') {
      targets.push({ name, base: stack.originDirect.url, pid: stack.originDirect.child.pid, isEdge: false });
    } else if (name === 'N1' || name === 'N2') {
      const n = await stack.startProxy(name, `${name}-${sc.id}`);
      targets.push({ name, base: n.url, pid: n.child.pid, isEdge: false });
    } else {
      const store = name === 'edge+redis' ? await stack.redis() : undefined;
      if (name === 'edge+redis' && store === undefined) {
        log('  edge+redis left out: no redis-server on this machine (apt-get install redis-server)');
        names.splice(names.indexOf(name), 1);
        continue;
      }
      const edge = await startEdge(
        stack.children,
        `${name}-${sc.id}`,
        {
          root: stack.root,
          port: await unusedPort(),
          adminPort: await unusedPort(),
          upstream: stack.origin.url,
          backend: `${stack.middleware.url}/auth`,
          extraFlags: [...EDGE_FLAGS[sc.id], ...(s.sut?.flags ?? []), ...(name === 'edge-w2' ? TWO_WORKERS_FLAGS : []), ...(store === undefined ? [] : ['--store', store.url])],
          env: name === 'edge+malloc' ? MALLOC_ENV : {},
        },
        s.sut?.prefix ?? stack.pinning.sutPrefix(),
      );
      if (store !== undefined) await expectStoreUp(edge.adminUrl);
      if (name === 'edge') edgeArgv = edge.argv;
      targets.push({ name, base: edge.url, pid: edge.child.pid, isEdge: true });
    }
  }

  const markers = new Map<TargetName, string>();
  /** The URL wrk hammers on `t`, after making sure the session (edge) or the auth cache (nginx) is there. */
  async function prepare(t: Target): Promise<string> {
    if (t.isEdge && sc.edgeSession !== undefined) {
      const known = markers.get(t.name);
      if (known !== undefined && (await get(`${t.base}${sc.edgeSession.hammer}?edge_session=${known}`)).status === 200) {
        return `${t.base}${sc.edgeSession.hammer}?edge_session=${known}`;
      }
      const first = await get(`${t.base}${sc.edgeSession.open}`);
      const marker = MARKER.exec(first.text)?.[1];
      if (first.status !== 200 || marker === undefined) throw new Error(`${sc.id}/${t.name}: no session marker (status ${first.status}):\n${first.text.slice(0, 500)}`);
      markers.set(t.name, marker);
      return `${t.base}${sc.edgeSession.hammer}?edge_session=${marker}`;
    }
    const url = `${t.base}${sc.path}`;
    if (!sc.uniqueToken) {
      const r = await get(url);
      if (r.status !== sc.expectedStatus(t.name)) throw new Error(`${sc.id}/${t.name}: ${url} answered ${r.status}, expected ${sc.expectedStatus(t.name)}`);
    }
    return url;
  }

  let nonce = 0;
  function wrkFor(url: string, durationS: number) {
    nonce++;
    return startWrk(stack.children, {
      url,
      threads: Math.max(1, stack.pinning.loadCores.length),
      connections: s.connections,
      durationS,
      script: sc.uniqueToken ? stack.wrk.uniqueToken : stack.wrk.plain,
      scriptArgs: sc.uniqueToken ? [new URL(url).pathname, `${sc.id}${Date.now().toString(36)}r${nonce}`] : undefined,
    });
  }

  const idleRss: Partial<Record<TargetName, number>> = {};
  const urls: Record<string, string> = {};
  for (const t of targets) {
    const url = await prepare(t);
    urls[t.name] = url.replace(/edge_session=[^&]+/, 'edge_session=<marker>');
    idleRss[t.name] = rssBytes(processTree(t.pid));
    log(`  warm-up ${t.name} (${s.warmupS} s)`);
    await wrkFor(url, s.warmupS).result;
    await sleep(500);
  }

  const runs: ThroughputRun[] = [];
  for (let round = 1; round <= s.runs; round++) {
    for (const t of targets) {
      const url = await prepare(t);
      const mw0 = await stack.middleware.stats<MiddlewareStats>();
      const { result: w, sample } = await measure(t.isEdge ? (s.sut?.pinning ?? stack.pinning) : stack.pinning, t.pid, () => {
        const run = wrkFor(url, s.durationS);
        return { pid: run.child.pid, done: run.result };
      }, stack.loadSidePids());
      const mw1 = await stack.middleware.stats<MiddlewareStats>();
      const run = toRun(t.name, round, w, sample, mw1.calls - mw0.calls, sc.expectedStatus(t.name));
      runs.push(run);
      log(
        `  round ${round} ${t.name.padEnd(11)} ${fmt(run.reqPerSec, 0).padStart(8)} req/s ${fmt(run.mbPerSec, 1).padStart(7)} MB/s p99 ${fmt(run.p99Ms, 1)} ms  SUT ${fmt(sample.sutCpuPct, 0)}% (${fmt(run.cpuUsPerReq, 0)} µs/req)  wrk ${fmt(sample.loadGenCpuPct, 0)}%  load core ${sample.loadCoresPct.map((p) => fmt(p, 0)).join('/')}% (ours ${fmt(sample.loadOwnPct, 0)}%)${sample.loadBound ? ' LOAD-BOUND' : ''}${sample.noisy ? ` NOISY(+${fmt(sample.foreignOnSutCorePct, 0)}%)` : ''}${run.valid ? '' : ` INVALID: ${run.invalidReason}`}`,
      );
      await sleep(1_000);
    }
  }

  const crossCheck: CrossCheckRun[] = [];
  if (s.crossCheck) {
    for (const t of targets.filter((x) => x.name === 'N1' || x.name === 'edge')) {
      const url = await prepare(t);
      const { result, sample } = await measure(stack.pinning, t.pid, () => {
        const run = startAutocannon(stack.children, stack.root, url, s.connections, s.durationS);
        return { pid: run.child.pid, done: run.result };
      }, stack.loadSidePids());
      crossCheck.push({ target: t.name, autocannon: result, sample });
      log(`  cross-check autocannon ${t.name.padEnd(6)} ${fmt(result.reqPerSec, 0)} req/s  load core ${sample.loadCoresPct.map((p) => fmt(p, 0)).join('/')}%`);
      await sleep(1_000);
    }
  }

  return { kind: 'throughput', id: sc.id, title: sc.title, note: sc.note, url: urls, edgeArgv, targets: names, idleRss, runs, crossCheck };
}

function toRun(target: TargetName, round: number, w: WrkResult, sample: Sample, middlewareCalls: number, expected: number): ThroughputRun {
  const seconds = w.durationUs / 1e6;
  const socketErrors = w.connectErrors + w.readErrors + w.writeErrors + w.timeouts;
  // wrk counts status > 399 as errors: a 403 scenario expects every response to be one.
  const wrongStatus = expected >= 400 ? w.requests - w.statusErrors : w.statusErrors;
  const invalid = [socketErrors > 0 ? `${socketErrors} socket errors/timeouts` : '', wrongStatus > 0 ? `${wrongStatus} responses not ${expected}` : '', w.requests === 0 ? 'no requests' : ''].filter((x) => x !== '');
  return {
    target,
    round,
    reqPerSec: w.requests / seconds,
    mbPerSec: w.bytes / seconds / 1e6,
    p50Ms: w.p50Us / 1000,
    p99Ms: w.p99Us / 1000,
    requests: w.requests,
    statusErrors: w.statusErrors,
    socketErrors,
    valid: invalid.length === 0,
    ...(invalid.length > 0 ? { invalidReason: invalid.join(', ') } : {}),
    middlewareCalls,
    cpuUsPerReq: w.requests === 0 ? 0 : ((sample.sutCpuPct / 100) * sample.elapsedS * 1e6) / w.requests,
    sample,
  };
}

export function fmt(n: number, digits: number): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
