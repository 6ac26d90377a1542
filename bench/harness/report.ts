// Markdown tables (one per scenario, rows direct / N1 / N2 / edge, medians of the interleaved runs),
// the ratios edge/N1, edge/N2, edge/direct from the same run, and the issue's targets checked.
import type { TargetName } from './scenarios.js';
import { fmt, type ThroughputResult, type ThroughputRun } from './throughput.js';
import type { HlsResult, TsResult } from './viewers.js';

export type ScenarioResult = ThroughputResult | TsResult | HlsResult;

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const MB = 1e6;
const ROW_ORDER: readonly TargetName[] = ['direct', 'N1', 'N2', 'edge', 'edge+malloc', 'edge+redis', 'edge-w2'];

/** The denominators of a target's ratios: nginx and direct; for a variant of the edge (edge-w2, edge+malloc, edge+redis), the plain edge first. */
function denominators(num: TargetName): readonly TargetName[] {
  return num === 'edge' ? ['N1', 'N2', 'direct'] : ['edge', 'N1', 'N2', 'direct'];
}

function count(runs: readonly { sample: { loadBound: boolean; noisy: boolean; pinnedOk: boolean } }[], valid?: readonly boolean[]): string {
  const n = runs.length;
  const flags: string[] = [];
  const lb = runs.filter((r) => r.sample.loadBound).length;
  const noisy = runs.filter((r) => r.sample.noisy).length;
  const unpinned = runs.filter((r) => !r.sample.pinnedOk).length;
  const invalid = valid === undefined ? 0 : valid.filter((v) => !v).length;
  if (lb > 0) flags.push(`load-bound ${lb}/${n}`);
  if (noisy > 0) flags.push(`noisy ${noisy}/${n}`);
  if (unpinned > 0) flags.push(`NOT PINNED ${unpinned}/${n}`);
  if (invalid > 0) flags.push(`INVALID ${invalid}/${n}`);
  return flags.length === 0 ? 'ok' : flags.join(', ');
}

/** "busy (ours)" per run: the load core's busy %, and the part of it the bench's own load side used. */
function loadCol(runs: readonly { sample: { loadCoresPct: number[]; loadOwnPct: number } }[]): string {
  return runs.map((x) => `${fmt(Math.max(...x.sample.loadCoresPct), 0)} (${fmt(x.sample.loadOwnPct, 0)})`).join(' / ');
}

function pct(xs: readonly number[]): string {
  return fmt(median(xs), 0);
}

/** The metric a throughput scenario is judged on. */
function primary(id: ThroughputResult['id']): { key: 'reqPerSec' | 'mbPerSec'; unit: string } {
  return id === 'b' ? { key: 'mbPerSec', unit: 'MB/s' } : { key: 'reqPerSec', unit: 'req/s' };
}

export interface Ratio {
  scenario: string;
  num: TargetName;
  den: TargetName;
  metric: string;
  /** Ratio of the medians. */
  value: number;
  /** Ratios within each round (same round = closest in time). */
  perRound: number[];
}

/** Requests per CPU-second of `num` over `den`: what the ratio would be if each had its core to itself. */
export function cpuRatios(r: ThroughputResult): Ratio[] {
  const out: Ratio[] = [];
  const valid = (t: TargetName): ThroughputRun[] => r.runs.filter((x) => x.target === t && x.valid);
  for (const num of r.targets.filter((t) => t.startsWith('edge'))) {
    for (const den of denominators(num).filter((d) => d !== 'direct')) {
      const a = valid(num);
      const b = valid(den);
      if (a.length === 0 || b.length === 0) continue;
      const perRound = a.flatMap((x) => b.filter((y) => y.round === x.round).map((y) => y.cpuUsPerReq / x.cpuUsPerReq));
      out.push({ scenario: r.id, num, den, metric: 'requests per CPU-second', value: median(b.map((x) => x.cpuUsPerReq)) / median(a.map((x) => x.cpuUsPerReq)), perRound });
    }
  }
  return out;
}

export function throughputRatios(r: ThroughputResult): Ratio[] {
  const { key, unit } = primary(r.id);
  const byTarget = (t: TargetName): ThroughputRun[] => r.runs.filter((x) => x.target === t && x.valid);
  const out: Ratio[] = [];
  for (const num of r.targets.filter((t) => t.startsWith('edge'))) {
    for (const den of denominators(num)) {
      if (!r.targets.includes(den)) continue;
      const a = byTarget(num);
      const b = byTarget(den);
      if (a.length === 0 || b.length === 0) continue;
      const perRound = a.flatMap((x) => b.filter((y) => y.round === x.round).map((y) => x[key] / y[key]));
      out.push({ scenario: r.id, num, den, metric: unit, value: median(a.map((x) => x[key])) / median(b.map((x) => x[key])), perRound });
    }
  }
  return out;
}

export function throughputTable(r: ThroughputResult, settings: { connections: number; durationS: number }): string {
  const lines: string[] = [];
  const { unit } = primary(r.id);
  const rounds = Math.max(0, ...r.runs.map((x) => x.round));
  lines.push(`### ${r.title}`, '');
  lines.push(`wrk, ${settings.connections} connections, ${settings.durationS} s per run, ${rounds} interleaved rounds (${r.targets.join(', ')}); medians of the valid runs. ${r.note}`, '');
  lines.push('| target | req/s | MB/s | p50 ms | p99 ms | SUT RSS MB max (idle) | SUT core % | SUT CPU µs/req | load core % per run (ours) | wrk % | other on SUT core % | middleware calls/run | runs (req/s) | checks |');
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const t of ROW_ORDER.filter((x) => r.targets.includes(x))) {
    const all = r.runs.filter((x) => x.target === t);
    const runs = all.filter((x) => x.valid);
    const use = runs.length > 0 ? runs : all;
    const idle = r.idleRss[t];
    lines.push(
      `| ${t.startsWith('edge') ? `**${t}**` : t} | ${fmt(median(use.map((x) => x.reqPerSec)), 0)} | ${fmt(median(use.map((x) => x.mbPerSec)), 1)} | ${fmt(median(use.map((x) => x.p50Ms)), 2)} | ${fmt(median(use.map((x) => x.p99Ms)), 2)} | ${fmt(Math.max(...use.map((x) => x.sample.sutRssMax)) / MB, 0)} (${idle === undefined ? '?' : fmt(idle / MB, 0)}) | ${pct(use.map((x) => x.sample.sutCpuPct))} | ${fmt(median(use.map((x) => x.cpuUsPerReq)), 0)} | ${loadCol(use)} | ${pct(use.map((x) => x.sample.loadGenCpuPct))} | ${pct(use.map((x) => x.sample.foreignOnSutCorePct))} | ${fmt(median(use.map((x) => x.middlewareCalls)), 0)} | ${all.map((x) => fmt(x.reqPerSec, 0)).join(', ')} | ${count(all, all.map((x) => x.valid))} |`,
    );
  }
  lines.push('');
  for (const ratio of throughputRatios(r)) {
    lines.push(`- **${ratio.num} / ${ratio.den}** (${ratio.metric}): **${ratio.value.toFixed(2)}** (per round: ${ratio.perRound.map((x) => x.toFixed(2)).join(', ')})`);
  }
  for (const ratio of cpuRatios(r)) {
    lines.push(`- ${ratio.num} / ${ratio.den} in ${ratio.metric} (CPU efficiency, robust to other load on the SUT core): ${ratio.value.toFixed(2)} (per round: ${ratio.perRound.map((x) => x.toFixed(2)).join(', ')})`);
  }
  const edge = r.runs.filter((x) => x.target === 'edge' && x.valid);
  const n1 = r.runs.filter((x) => x.target === 'N1' && x.valid);
  if (r.id === 'a' && edge.length > 0 && n1.length > 0) {
    lines.push(`- p99: edge ${fmt(median(edge.map((x) => x.p99Ms)), 2)} ms vs N1 ${fmt(median(n1.map((x) => x.p99Ms)), 2)} ms`);
  }
  if (edge.length > 0) {
    lines.push(`- edge RSS per run (start → max → end, MB): ${edge.map((x) => `${fmt(x.sample.sutRssStart / MB, 0)} → ${fmt(x.sample.sutRssMax / MB, 0)} → ${fmt(x.sample.sutRssEnd / MB, 0)}`).join('; ')}`);
  }
  if (r.crossCheck.length > 0) {
    lines.push('', `Cross-check, autocannon (one process, ${settings.connections} connections, ${settings.durationS} s) against wrk's median on the same targets:`, '');
    lines.push('| target | autocannon req/s | wrk req/s | autocannon / wrk | autocannon p99 ms | autocannon % | load core % (ours) | checks |', '|---|---|---|---|---|---|---|---|');
    for (const c of r.crossCheck) {
      const w = median(r.runs.filter((x) => x.target === c.target && x.valid).map((x) => x.reqPerSec));
      lines.push(`| ${c.target} | ${fmt(c.autocannon.reqPerSec, 0)} | ${fmt(w, 0)} | ${(c.autocannon.reqPerSec / w).toFixed(2)} | ${fmt(c.autocannon.p99Ms, 0)} | ${fmt(c.sample.loadGenCpuPct, 0)} | ${loadCol([c])} | ${count([c])} |`);
    }
  }
  lines.push('', `Ratios are of ${unit} unless said otherwise.`, '');
  return lines.join('\n');
}

export function tsTable(r: TsResult): string {
  const s = r.settings;
  const lines = [`### ${r.title}`, ''];
  lines.push(
    `${s.viewers} viewers on ${s.channels.length} channels for ${s.durationS} s (ramp ${fmt(s.rampS, 1)} s, dips counted after ${fmt(s.warmupS, 1)} s), ${s.bitsPerSecond / 1e6} Mbit/s per channel; viewer #7 stops reading after ${fmt(s.stallAfterS, 1)} s. Origin: ${r.originDescription}. A dip = a 1-s window below 50 % of the channel bitrate. N2 is a pass-through here: nginx cannot fan out MPEG-TS (proxy_cache cannot share an endless body), so every viewer is an origin connection.`,
    '',
  );
  lines.push('| target | viewers ok (cut early) | MB/s (all viewers) | SUT core % | SUT RSS MB max (idle) | origin connections max (per channel) | stalled viewer dropped | viewers with a dip (windows) | worst window / bitrate | middleware calls | load core % per run (ours) | checks |');
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const t of ['N2', 'edge'] as const) {
    const runs = r.runs.filter((x) => x.target === t);
    if (runs.length === 0) continue;
    const perChannel = runs.map((x) => Math.max(0, ...Object.values(x.origin.channels).map((c) => c.maxOpen)));
    lines.push(
      `| ${t === 'edge' ? '**edge**' : 'N2 (pass-through)'} | ${runs.map((x) => `${x.viewers.connected} (${x.viewers.endedEarly})`).join(', ')} | ${fmt(median(runs.map((x) => x.viewers.aggregateBytesPerSecond / MB)), 1)} | ${pct(runs.map((x) => x.sample.sutCpuPct))} | ${fmt(Math.max(...runs.map((x) => x.sample.sutRssMax)) / MB, 0)} (${fmt((r.idleRss[t] ?? 0) / MB, 0)}) | ${runs.map((x) => x.origin.maxOpen).join(', ')} (${perChannel.join(', ')}) | ${runs.map((x) => (x.viewers.stalled.dropped ? `yes, ${fmt(x.viewers.stalled.droppedAfterStallS ?? 0, 1)} s` : `no (server end ${x.viewers.stalled.tcpState === '01' ? 'ESTABLISHED' : x.viewers.stalled.tcpState})`)).join('; ')} | ${runs.map((x) => `${x.viewers.viewersWithDip} (${x.viewers.dipWindows})`).join(', ')} | ${runs.map((x) => (x.viewers.worstWindowRatio ?? 0).toFixed(2)).join(', ')} | ${runs.map((x) => x.middlewareCalls).join(', ')} | ${loadCol(runs)} | ${count(runs)} |`,
    );
  }
  const e = r.runs.filter((x) => x.target === 'edge');
  const n = r.runs.filter((x) => x.target === 'N2');
  if (e.length > 0 && n.length > 0) lines.push('', `- **edge / N2 CPU** at the same load: **${(median(e.map((x) => x.sample.sutCpuPct)) / median(n.map((x) => x.sample.sutCpuPct))).toFixed(2)}**`);
  lines.push('');
  return lines.join('\n');
}

export function hlsTable(r: HlsResult): string {
  const s = r.settings;
  const lines = [`### ${r.title}`, ''];
  lines.push(
    `${s.viewers} players of channel \`${s.channel}\` for ${s.durationS} s (ramp ${fmt(s.rampS, 1)} s): master, then the media playlist every ${s.targetDurationS / 2} s (target duration ${s.targetDurationS} s, a new ~1 MiB segment every ${s.targetDurationS} s, written by a timer), each new segment once. Origin requests counted from the origin's access log for the segments published during the run. Through N2 the players append their token to every URI.`,
    '',
  );
  lines.push('| target | viewers ok | segments fetched | MB/s | origin requests per segment (mean / max) | origin playlist req/s | SUT core % | CPU ms per viewer per s | late segments | segment p50 / p99 ms | SUT RSS MB max (idle) | load core % per run (ours) | checks |');
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const t of ['N2', 'edge'] as const) {
    const runs = r.runs.filter((x) => x.target === t);
    if (runs.length === 0) continue;
    lines.push(
      `| ${t === 'edge' ? '**edge**' : 'N2'} | ${runs.map((x) => x.viewers.viewersStarted).join(', ')} | ${runs.map((x) => x.viewers.segments).join(', ')} | ${fmt(median(runs.map((x) => x.viewers.bytesPerSecond / MB)), 1)} | ${runs.map((x) => `${x.origin.requestsPerSegmentMean.toFixed(1)} / ${x.origin.requestsPerSegmentMax}`).join('; ')} | ${fmt(median(runs.map((x) => x.origin.playlistRequestsPerSecond)), 1)} | ${pct(runs.map((x) => x.sample.sutCpuPct))} | ${fmt(median(runs.map((x) => x.cpuMsPerViewerSecond)), 3)} | ${runs.map((x) => x.viewers.lateSegments).join(', ')} | ${runs.map((x) => `${fmt(x.viewers.segmentP50Ms ?? 0, 0)} / ${fmt(x.viewers.segmentP99Ms ?? 0, 0)}`).join('; ')} | ${fmt(Math.max(...runs.map((x) => x.sample.sutRssMax)) / MB, 0)} (${fmt((r.idleRss[t] ?? 0) / MB, 0)}) | ${loadCol(runs)} | ${count(runs)} |`,
    );
  }
  lines.push('');
  return lines.join('\n');
}

export interface TargetCheck {
  target: string;
  measured: string;
  met: boolean | null;
}

/** The issue's targets, judged on this run (null: not measured in this run). */
export function checkTargets(results: readonly ScenarioResult[]): TargetCheck[] {
  const out: TargetCheck[] = [];
  const tp = (id: string): ThroughputResult | undefined => results.find((r): r is ThroughputResult => r.kind === 'throughput' && r.id === id);
  const ratio = (r: ThroughputResult | undefined, num: TargetName, den: TargetName): number | undefined => (r === undefined ? undefined : throughputRatios(r).find((x) => x.num === num && x.den === den)?.value);
  const push = (target: string, value: number | undefined, min: number): void => {
    out.push({ target, measured: value === undefined ? 'not run' : value.toFixed(2), met: value === undefined ? null : value >= min });
  };
  push('(b) segments edge/N1 MB/s ≥ 1.0', ratio(tp('b'), 'edge', 'N1'), 1);
  push('(b) segments edge/direct MB/s ≥ 0.8', ratio(tp('b'), 'edge', 'direct'), 0.8);
  push('(a) playlists edge/N1 req/s ≥ 1.0', ratio(tp('a'), 'edge', 'N1'), 1);
  const a = tp('a');
  if (a !== undefined) {
    const p = (t: TargetName): number => median(a.runs.filter((x) => x.target === t && x.valid).map((x) => x.p99Ms));
    out.push({ target: "(a) edge p99 ≤ N1's", measured: `${fmt(p('edge'), 2)} vs ${fmt(p('N1'), 2)} ms`, met: p('edge') <= p('N1') });
    const edge = a.runs.filter((x) => x.target === 'edge');
    const idle = a.idleRss['edge'] ?? NaN;
    const maxRss = Math.max(...edge.map((x) => x.sample.sutRssMax));
    out.push({ target: '(a) edge RSS under load ≤ 2× idle', measured: `${fmt(maxRss / MB, 0)} MB vs idle ${fmt(idle / MB, 0)} MB (${(maxRss / idle).toFixed(2)}×)`, met: maxRss <= 2 * idle });
    const ends = edge.map((x) => x.sample.sutRssEnd / MB);
    const flat = ends.length < 2 || Math.max(...ends) - Math.min(...ends) <= 0.1 * Math.min(...ends);
    out.push({ target: '(a) edge RSS flat across runs (±10 %)', measured: `end of each run: ${ends.map((x) => fmt(x, 0)).join(', ')} MB`, met: ends.length < 2 ? null : flat });
  }
  push('(c) denied edge/N1 req/s ≥ 1.0', ratio(tp('c'), 'edge', 'N1'), 1);
  push('(d) new session edge/N1 req/s ≥ 1.0', ratio(tp('d'), 'edge', 'N1'), 1);
  const e = results.find((r): r is TsResult => r.kind === 'ts');
  if (e !== undefined) {
    const er = e.runs.filter((x) => x.target === 'edge');
    const perChannel = Math.max(...er.map((x) => Math.max(0, ...Object.values(x.origin.channels).map((c) => c.maxOpen))));
    out.push({ target: '(e) ONE origin connection per channel', measured: `max ${perChannel} per channel, ${Math.max(...er.map((x) => x.origin.maxOpen))} in all`, met: perChannel <= 1 });
    out.push({ target: '(e) the stalled viewer is dropped', measured: er.map((x) => (x.viewers.stalled.dropped ? 'dropped' : 'not dropped')).join(', '), met: er.every((x) => x.viewers.stalled.dropped) });
    out.push({
      target: '(e) no other viewer stalls (dips) or is cut',
      measured: er.map((x) => `${x.viewers.viewersWithDip} viewers with dips, ${x.viewers.endedEarly} cut`).join('; '),
      met: er.every((x) => x.viewers.viewersWithDip === 0 && x.viewers.endedEarly === 0),
    });
  }
  const f = results.find((r): r is HlsResult => r.kind === 'hls');
  if (f !== undefined) {
    const fr = f.runs.filter((x) => x.target === 'edge');
    const max = Math.max(...fr.map((x) => x.origin.requestsPerSegmentMax));
    out.push({ target: '(f) one origin request per segment', measured: `mean ${fr.map((x) => x.origin.requestsPerSegmentMean.toFixed(1)).join(', ')}, max ${max}`, met: max <= 1 });
  }
  return out;
}

export function targetsTable(checks: readonly TargetCheck[]): string {
  const lines = ['### The issue\'s targets, on this run', '', '| target | measured | met |', '|---|---|---|'];
  for (const c of checks) lines.push(`| ${c.target} | ${c.measured} | ${c.met === null ? '–' : c.met ? 'yes' : '**no**'} |`);
  return `${lines.join('\n')}\n`;
}
