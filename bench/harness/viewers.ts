// Scenarios (e) and (f): many long-lived viewers, simulated by one client process on the load
// core (bench/procs/ts-viewers.ts, hls-viewers.ts), against the edge and against N2 where nginx can
// play the part. Rounds are interleaved like (a)-(d).
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { sleep } from './children.js';
import { startEdge } from './edge.js';
import { LiveChannel } from './fixtures.js';
import { measure, type Sample } from './measure.js';
import { processTree, rssBytes } from './proc.js';
import { EDGE_FLAGS, HLS_TITLE, TS_TITLE, type HlsScenarioSettings, type TsScenarioSettings } from './scenarios.js';
import { type MiddlewareStats, type Stack } from './stack.js';
import { unusedPort } from '../../test/helpers/ports.js';

type StreamTarget = 'edge' | 'N2';

interface Sut {
  name: StreamTarget;
  base: string;
  pid: number;
}

async function startSuts(stack: Stack, id: 'e' | 'f', upstream: string): Promise<{ suts: Sut[]; edgeArgv: readonly string[] }> {
  const edge = await startEdge(
    stack.children,
    `edge-${id}`,
    { root: stack.root, port: await unusedPort(), adminPort: await unusedPort(), upstream, backend: `${stack.middleware.url}/auth`, extraFlags: EDGE_FLAGS[id] },
    stack.pinning.sutPrefix(),
  );
  const n2 = await stack.startProxy('N2', `N2-${id}`, upstream);
  return {
    suts: [
      { name: 'edge', base: edge.url, pid: edge.child.pid },
      { name: 'N2', base: n2.url, pid: n2.child.pid },
    ],
    edgeArgv: edge.argv,
  };
}

function runViewerProcess<T>(stack: Stack, script: string, options: object): { pid: number; done: Promise<T> } {
  const child = stack.children.spawn(script, process.execPath, ['--import', 'tsx', join(stack.root, 'bench/procs', script), JSON.stringify(options)], { cwd: stack.root, stdio: ['pipe', 'pipe', 'pipe'] });
  const done = child.exited.then((code) => {
    void child.stop();
    const line = child.output().split('\n').find((l) => l.startsWith('VIEWERS_JSON '));
    if (line === undefined) throw new Error(`${script} exited with ${code} and printed no result:\n${child.output().slice(0, 2000)}`);
    return JSON.parse(line.slice('VIEWERS_JSON '.length)) as T;
  });
  return { pid: child.pid, done };
}

// ---------------------------------------------------------------- (e) MPEG-TS

export interface TsViewersResult {
  viewers: number;
  connected: number;
  statuses: Record<string, number>;
  endedEarly: number;
  measuredS: number;
  aggregateBytesPerSecond: number;
  bytesTotal: number;
  viewersWithDip: number;
  dipWindows: number;
  worstWindowRatio: number | null;
  stalled: { index: number; stoppedReadingAfterS: number | null; dropped: boolean; droppedAfterStallS: number | null; tcpState: string; bytes: number };
}

interface TsOriginStats {
  open: number;
  maxOpen: number;
  total: number;
  bytesWritten: number;
  bytesSkipped: number;
  channels: Record<string, { open: number; maxOpen: number }>;
}

export interface TsRun {
  target: StreamTarget;
  round: number;
  viewers: TsViewersResult;
  origin: TsOriginStats;
  middlewareCalls: number;
  sample: Sample;
}

export interface TsResult {
  kind: 'ts';
  id: 'e';
  title: string;
  settings: TsScenarioSettings;
  originDescription: string;
  edgeArgv: readonly string[];
  idleRss: Partial<Record<StreamTarget, number>>;
  runs: TsRun[];
}

export async function runTsViewers(stack: Stack, st: TsScenarioSettings, runs: number, log: (l: string) => void): Promise<TsResult> {
  const origin = await stack.tsOrigin(st.bitsPerSecond);
  const { suts, edgeArgv } = await startSuts(stack, 'e', origin.url);
  const idleRss: Partial<Record<StreamTarget, number>> = {};
  for (const s of suts) idleRss[s.name] = rssBytes(processTree(s.pid));
  const out: TsRun[] = [];
  let nonce = 0;
  for (let round = 1; round <= runs; round++) {
    for (const sut of suts) {
      await fetch(`${origin.url}/__reset`).then((r) => r.arrayBuffer());
      const mw0 = await stack.middleware.stats<MiddlewareStats>();
      const { result: viewers, sample } = await measure(stack.pinning, sut.pid, () =>
        runViewerProcess<TsViewersResult>(stack, 'ts-viewers.ts', {
          base: sut.base,
          viewers: st.viewers,
          channels: st.channels,
          durationS: st.durationS,
          rampS: st.rampS,
          warmupS: st.warmupS,
          stallIndex: 7,
          stallAfterS: st.stallAfterS,
          bitsPerSecond: st.bitsPerSecond,
          tokenPrefix: `ok-ts${Date.now().toString(36)}r${++nonce}`,
        }),
        stack.loadSidePids(),
      );
      const originStats = (await (await fetch(`${origin.url}/__stats`)).json()) as TsOriginStats;
      const mw1 = await stack.middleware.stats<MiddlewareStats>();
      out.push({ target: sut.name, round, viewers, origin: originStats, middlewareCalls: mw1.calls - mw0.calls, sample });
      log(
        `  round ${round} ${sut.name.padEnd(4)} ${viewers.connected}/${viewers.viewers} viewers, ${(viewers.aggregateBytesPerSecond / 1e6).toFixed(1)} MB/s, origin conns max ${originStats.maxOpen}, SUT ${sample.sutCpuPct.toFixed(0)}%, stalled dropped: ${viewers.stalled.dropped}, dips: ${viewers.viewersWithDip}, load core ${sample.loadCoresPct.map((p) => p.toFixed(0)).join('/')}% (ours ${sample.loadOwnPct.toFixed(0)}%)${sample.loadBound ? ' LOAD-BOUND' : ''}`,
      );
      // Let the origin see every connection close before the next run (bounded).
      for (let i = 0; i < 50; i++) {
        const now = (await (await fetch(`${origin.url}/__stats`)).json()) as TsOriginStats;
        if (now.open === 0) break;
        await sleep(200);
      }
      await sleep(1_000);
    }
  }
  return {
    kind: 'ts',
    id: 'e',
    title: TS_TITLE,
    settings: st,
    originDescription: `a Node MPEG-TS live origin (bench/procs/ts-origin.ts) on the load core: ${stack.media.source}, paced at ${st.bitsPerSecond / 1e6} Mbit/s per connection`,
    edgeArgv,
    idleRss,
    runs: out,
  };
}

// ---------------------------------------------------------------- (f) HLS

export interface HlsViewersResult {
  viewersStarted: number;
  viewersFailed: number;
  playlists: number;
  playlistErrors: number;
  segments: number;
  segmentErrors: number;
  bytes: number;
  lateSegments: number;
  statuses: Record<string, number>;
  elapsedS: number;
  bytesPerSecond: number;
  segmentP50Ms: number | null;
  segmentP99Ms: number | null;
}

export interface OriginCounts {
  /** Segments published during the run that anyone fetched. */
  segments: number;
  requestsPerSegmentMean: number;
  requestsPerSegmentMax: number;
  playlistRequestsPerSecond: number;
}

export interface HlsRun {
  target: StreamTarget;
  round: number;
  viewers: HlsViewersResult;
  origin: OriginCounts;
  middlewareCalls: number;
  /** SUT CPU per viewer: milliseconds of CPU per viewer per second. */
  cpuMsPerViewerSecond: number;
  sample: Sample;
}

export interface HlsResult {
  kind: 'hls';
  id: 'f';
  title: string;
  settings: HlsScenarioSettings;
  edgeArgv: readonly string[];
  idleRss: Partial<Record<StreamTarget, number>>;
  runs: HlsRun[];
}

async function readFrom(file: string, offset: number): Promise<string> {
  const size = (await stat(file).catch(() => ({ size: 0 }))).size;
  if (size <= offset) return '';
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(size - offset);
    await fh.read(buf, 0, buf.length, offset);
    return buf.toString();
  } finally {
    await fh.close();
  }
}

function originCounts(log: string, channel: string, firstNew: number, elapsedS: number): OriginCounts {
  const perSegment = new Map<number, number>();
  let playlists = 0;
  const seg = new RegExp(`^/play/${channel}/seg-(\\d+)\\.ts$`);
  for (const line of log.split('\n')) {
    const [, uri, status] = line.split(' ');
    if (uri === undefined || status !== '200') continue;
    if (uri === `/play/${channel}/index.m3u8`) playlists++;
    const m = seg.exec(uri);
    if (m !== null && Number(m[1]) >= firstNew) perSegment.set(Number(m[1]), (perSegment.get(Number(m[1])) ?? 0) + 1);
  }
  const counts = [...perSegment.values()];
  return {
    segments: counts.length,
    requestsPerSegmentMean: counts.length === 0 ? 0 : counts.reduce((a, b) => a + b, 0) / counts.length,
    requestsPerSegmentMax: counts.length === 0 ? 0 : Math.max(...counts),
    playlistRequestsPerSecond: playlists / elapsedS,
  };
}

export async function runHlsViewers(stack: Stack, st: HlsScenarioSettings, runs: number, log: (l: string) => void): Promise<HlsResult> {
  const live = new LiveChannel(join(stack.tmp, 'www'), st.targetDurationS);
  await live.start();
  try {
    const { suts, edgeArgv } = await startSuts(stack, 'f', stack.origin.url);
    const idleRss: Partial<Record<StreamTarget, number>> = {};
    for (const s of suts) idleRss[s.name] = rssBytes(processTree(s.pid));
    const out: HlsRun[] = [];
    let nonce = 0;
    for (let round = 1; round <= runs; round++) {
      for (const sut of suts) {
        const offset = (await stat(stack.liveLog).catch(() => ({ size: 0 }))).size;
        // Segments that appear from now on: every viewer who fetches them is counted at the origin.
        const firstNew = live.newest + 1;
        const mw0 = await stack.middleware.stats<MiddlewareStats>();
        const { result: viewers, sample } = await measure(stack.pinning, sut.pid, () =>
          runViewerProcess<HlsViewersResult>(stack, 'hls-viewers.ts', {
            base: sut.base,
            channel: st.channel,
            viewers: st.viewers,
            durationS: st.durationS,
            rampS: st.rampS,
            appendToken: sut.name !== 'edge',
            tokenPrefix: `ok-hls${Date.now().toString(36)}r${++nonce}`,
          }),
          stack.loadSidePids(),
        );
        const mw1 = await stack.middleware.stats<MiddlewareStats>();
        const origin = originCounts(await readFrom(stack.liveLog, offset), st.channel, firstNew, sample.elapsedS);
        const run: HlsRun = { target: sut.name, round, viewers, origin, middlewareCalls: mw1.calls - mw0.calls, cpuMsPerViewerSecond: (sample.sutCpuPct * 10) / st.viewers, sample };
        out.push(run);
        log(
          `  round ${round} ${sut.name.padEnd(4)} ${viewers.viewersStarted}/${st.viewers} viewers, ${viewers.segments} segments, ${(viewers.bytesPerSecond / 1e6).toFixed(1)} MB/s, origin requests/segment ${origin.requestsPerSegmentMean.toFixed(1)} (max ${origin.requestsPerSegmentMax}), SUT ${sample.sutCpuPct.toFixed(0)}%, late ${viewers.lateSegments}, load core ${sample.loadCoresPct.map((p) => p.toFixed(0)).join('/')}% (ours ${sample.loadOwnPct.toFixed(0)}%)${sample.loadBound ? ' LOAD-BOUND' : ''}`,
        );
        await sleep(2_000);
      }
    }
    return { kind: 'hls', id: 'f', title: HLS_TITLE, settings: st, edgeArgv, idleRss, runs: out };
  } finally {
    await live.stop();
  }
}
