// What a test process holds right now (descriptors, sockets, handles, memory), and a bounded
// wait for it to come back to a baseline. The hardening battery uses it after floods, aborts
// and faults: "nothing leaks" is asserted, not assumed.
//
// The edge under test runs in the test's own process (test/helpers/edge.ts), so /proc/self is
// the edge plus its test peers: take the baseline after the peers are up, compare after the load.
import { readdir, readlink } from 'node:fs/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { sleep } from './wait.js';

export interface ResourceSnapshot {
  /** Open file descriptors of this process. */
  readonly fds: number;
  /** Of which sockets. */
  readonly sockets: number;
  /** process.getActiveResourcesInfo(): handles and requests keeping the loop alive, by type. */
  readonly handles: Readonly<Record<string, number>>;
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
}

let gcFn: (() => void) | undefined;

/** A full GC, when the runtime lets us have one (vitest workers run without --expose-gc). */
export function collectGarbage(): void {
  if (gcFn === undefined) {
    const g = (globalThis as { gc?: () => void }).gc;
    if (typeof g === 'function') gcFn = g;
    else {
      setFlagsFromString('--expose-gc');
      gcFn = runInNewContext('gc') as () => void;
    }
  }
  gcFn();
}

export async function snapshot(): Promise<ResourceSnapshot> {
  let fds = 0;
  let sockets = 0;
  const entries = await readdir('/proc/self/fd').catch(() => [] as string[]);
  for (const fd of entries) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (target === '') continue; // closed between readdir and readlink (the readdir's own fd, for one)
    fds++;
    if (target.startsWith('socket:')) sockets++;
  }
  const handles: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) handles[type] = (handles[type] ?? 0) + 1;
  const mem = process.memoryUsage();
  return { fds, sockets, handles, rssBytes: mem.rss, heapUsedBytes: mem.heapUsed };
}

export interface BaselineSlack {
  /** Extra descriptors tolerated (keep-alive pools may keep a few). Default 8. */
  readonly fds?: number;
  /** Extra sockets tolerated. Default 8. */
  readonly sockets?: number;
  /** Extra heap tolerated after a GC, bytes. Default 32 MiB. */
  readonly heapBytes?: number;
  /** Extra RSS tolerated, bytes (RSS shrinks slowly: glibc keeps freed pages). Default 128 MiB. */
  readonly rssBytes?: number;
  /** How long to wait for things to settle. Default 5000 ms. */
  readonly timeoutMs?: number;
}

/**
 * Resolves with the settled snapshot once descriptors, sockets, heap and RSS are within `slack`
 * of `baseline`; rejects with both snapshots when they do not settle in time.
 */
export async function backToBaseline(baseline: ResourceSnapshot, slack: BaselineSlack = {}): Promise<ResourceSnapshot> {
  const limits = { fds: slack.fds ?? 8, sockets: slack.sockets ?? 8, heapBytes: slack.heapBytes ?? 32 * 1024 * 1024, rssBytes: slack.rssBytes ?? 128 * 1024 * 1024 };
  const deadline = Date.now() + (slack.timeoutMs ?? 5000);
  let now: ResourceSnapshot;
  for (let attempt = 0; attempt < 1000; attempt++) {
    collectGarbage();
    now = await snapshot();
    const ok =
      now.fds <= baseline.fds + limits.fds &&
      now.sockets <= baseline.sockets + limits.sockets &&
      now.heapUsedBytes <= baseline.heapUsedBytes + limits.heapBytes &&
      now.rssBytes <= baseline.rssBytes + limits.rssBytes;
    if (ok) return now;
    if (Date.now() >= deadline) break;
    await sleep(100);
  }
  throw new Error(`resources did not return to baseline:\n  baseline ${describe(baseline)}\n  now      ${describe(now!)}`);
}

export function describe(s: ResourceSnapshot): string {
  const mb = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `fds=${s.fds} sockets=${s.sockets} heap=${mb(s.heapUsedBytes)} rss=${mb(s.rssBytes)} handles=${JSON.stringify(s.handles)}`;
}
