/**
 * `--workers`: how many, and the names they go by in the fleet. Small and
 * without processes, so main.ts and the worker can use it without loading
 * the primary.
 */
import { MAX_WORKERS } from '../config/options.js';
import type { Slot } from './primary-state.js';

/** `auto` is one per core the process may use (os.availableParallelism: cgroup and affinity limits included), at most MAX_WORKERS. */
export function resolveWorkers(setting: number | 'auto', availableParallelism: number): number {
  return setting === 'auto' ? Math.max(1, Math.min(MAX_WORKERS, availableParallelism)) : setting;
}

/** A worker in the fleet's session table (the EDGE column): the edge's node.name and the worker's slot, `edge-3:8080/w2`. */
export function workerNodeName(nodeName: string, slot: Slot): string {
  return `${nodeName}/w${slot}`;
}
