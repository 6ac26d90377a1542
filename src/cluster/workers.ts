/**
 * `--workers`: how many, and the names they go by in the fleet. Small and
 * without processes, so main.ts and the worker can use it without loading
 * the primary.
 */
import { hostname } from 'node:os';
import { MAX_WORKERS } from '../config/options.js';
import type { EdgeConfig } from '../config/schema.js';

/** `auto` is one per core the process may use (os.availableParallelism: cgroup and affinity limits included), at most MAX_WORKERS. */
export function resolveWorkers(setting: number | 'auto', availableParallelism: number): number {
  return setting === 'auto' ? Math.max(1, Math.min(MAX_WORKERS, availableParallelism)) : setting;
}

/** This host in the fleet: its name and public port; each worker is `<that>/w<slot>`. */
export function hostNodeName(config: EdgeConfig): string {
  return `${hostname()}:${config.listen.port}`;
}
