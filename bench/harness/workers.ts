// `--workers-ab`: the edge as one process against the edge with `--workers 2`, on the throughput
// scenarios (a) and (b), interleaved rounds as everywhere else, in two placements:
//  - one core: both pinned to the SUT core. Two workers cannot be faster there; what it shows is
//    what the extra process costs (the primary hands every connection to a worker, the workers
//    publish their sessions to it);
//  - every core: both may run on every core of the machine, the load generator, origin and
//    middleware staying on the load core(s) as always. On a 2-core machine this is what an
//    operator's "2 workers" gets when the load comes from the same box: the second worker can
//    only take CPU from the load generator.
// Nothing here pretends to be the scaling on a server: see WHAT_IT_HIDES, printed with the tables.
import type { Pinning } from './machine.js';
import { THROUGHPUT } from './scenarios.js';
import type { Stack } from './stack.js';
import { runThroughput, type ThroughputResult, type ThroughputSettings } from './throughput.js';
import { throughputRatios, throughputTable } from './report.js';

export type Placement = 'one core' | 'every core';

export interface WorkersAbResult {
  readonly placement: Placement;
  readonly result: ThroughputResult;
}

/** Said plainly with every run of the A/B, and in bench/README.md. */
export const WHAT_IT_HIDES = [
  'What a 2-core machine with the load generator on it hides: the edge with 2 workers can no longer be pinned alone on a core of its own.',
  'In "one core" both edges share the SUT core, so 2 workers cannot gain and the ratio is the cost of the extra process (the primary accepts and hands out every connection).',
  'In "every core" the second worker competes with wrk, the origin and the middleware for the other core: the ratio says how much of that core the edge could take from its own load, not how the edge scales.',
  'On a server with a core per worker and the load coming from elsewhere, CPU-bound work (a: a playlist rewrite per request) is expected to scale with the workers until the origin, the network or the primary\'s accept loop is the limit; that is not measured here.',
].join(' ');

/**
 * Both edges sign their markers with the same kind of secret: 2 workers need one (the primary
 * makes it when none is set), and a signed marker is a longer playlist URI than a plain session ID.
 */
const SAME_MARKERS: readonly string[] = ['--session-secret', 'bench-workers-ab-0123456789abcdef'];

function placementOf(pinning: Pinning, placement: Placement): NonNullable<ThroughputSettings['sut']> {
  if (placement === 'one core' || !pinning.enabled) return { prefix: pinning.sutPrefix(), pinning, flags: SAME_MARKERS };
  const all = [...pinning.sutCores, ...pinning.loadCores].sort((a, b) => a - b);
  // Judged as unpinned: there is no core of its own to check for other processes.
  const judged: Pinning = { ...pinning, enabled: false, sutCores: all, describe: () => `edge on cores ${all.join(',')}, load on ${pinning.loadCores.join(',')}` };
  return { prefix: ['taskset', '-c', all.join(',')], pinning: judged, flags: SAME_MARKERS };
}

export async function runWorkersAb(stack: Stack, ids: readonly ('a' | 'b')[], settings: ThroughputSettings, log: (line: string) => void): Promise<{ results: WorkersAbResult[]; markdown: string }> {
  const results: WorkersAbResult[] = [];
  const tables: string[] = [`## 1 worker vs 2 workers (\`--workers 2\`)`, '', WHAT_IT_HIDES, ''];
  const placements: readonly Placement[] = stack.pinning.enabled ? ['one core', 'every core'] : ['every core'];
  for (const placement of placements) {
    for (const id of ids) {
      const base = THROUGHPUT[id];
      const sc = { ...base, targets: ['edge', 'edge-w2'] as const, title: `${base.title}: 1 worker vs 2 workers, ${placement}` };
      log(`workers A/B ${id}, ${placement}`);
      const result = await runThroughput(stack, sc, { ...settings, crossCheck: false, sut: placementOf(stack.pinning, placement) }, log);
      results.push({ placement, result });
      const ratio = throughputRatios(result).find((r) => r.num === 'edge-w2' && r.den === 'edge');
      tables.push(throughputTable(result, settings));
      if (ratio !== undefined) tables.push(`**2 workers / 1 worker, ${placement}, (${id}): ${ratio.value.toFixed(2)}** (${ratio.metric}; per round: ${ratio.perRound.map((x) => x.toFixed(2)).join(', ')})`, '');
    }
  }
  return { results, markdown: tables.join('\n') };
}
