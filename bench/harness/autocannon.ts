// autocannon as a cross-check of wrk: the same URL, the same connections, one autocannon process
// on the load core (its CLI in its own process, so its CPU can be sampled). On this machine one
// autocannon process saturates its core well below what nginx serves: the cross-check shows how
// much a Node load generator understates the servers (the README's old table had this problem).
import { join } from 'node:path';
import type { Children, Child } from './children.js';

export interface AutocannonResult {
  reqPerSec: number;
  bytesPerSec: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
}

export function startAutocannon(children: Children, root: string, url: string, connections: number, durationS: number): { child: Child; result: Promise<AutocannonResult> } {
  const cli = join(root, 'node_modules/autocannon/autocannon.js');
  const child = children.spawn('autocannon', process.execPath, [cli, '-c', String(connections), '-d', String(durationS), '-j', url], { stdio: ['ignore', 'pipe', 'pipe'] });
  const result = child.exited.then((code) => {
    void child.stop();
    const line = child.output().split('\n').find((l) => l.startsWith('{'));
    if (line === undefined) throw new Error(`autocannon exited with ${code} and printed no JSON:\n${child.output().slice(0, 2000)}`);
    const r = JSON.parse(line) as { requests: { average: number }; throughput: { average: number }; latency: { p50: number; p99: number }; non2xx: number; errors: number; timeouts: number };
    return { reqPerSec: r.requests.average, bytesPerSec: r.throughput.average, p50Ms: r.latency.p50, p99Ms: r.latency.p99, non2xx: r.non2xx, errors: r.errors + r.timeouts };
  });
  return { child, result };
}
