/**
 * The backend types by name, and the assembly of the configured list: each
 * middleware guarded (its own timeout, concurrency cap, metrics), several
 * asked in parallel. Adding a type is a file in this folder and a line in
 * BACKEND_FACTORIES; the proxy never changes.
 */
import type { BackendEntry, BackendType } from '../../config/schema.js';
import type { EdgeMetrics } from '../../metrics/metrics.js';
import { abandonAfterMs, callerBoundMs, GuardedBackend } from '../guarded.js';
import { ParallelBackend } from '../parallel.js';
import type { AuthBackend } from '../types.js';
import type { MiddlewareBackend } from './call.js';
import type { MiddlewareClientOptions } from './client.js';
import { FlussonicBackend } from './flussonic.js';
import { HttpBackend } from './http.js';
import { IptvportalBackend } from './iptvportal.js';
import { SmartyBackend } from './smarty.js';
import { StalkerBackend } from './stalker.js';

type Factory = (client: MiddlewareClientOptions & { name: string }, entry: BackendEntry) => MiddlewareBackend;

export const BACKEND_FACTORIES: Readonly<Record<BackendType, Factory>> = {
  http: (client) => new HttpBackend(client),
  stalker: (client) => new StalkerBackend(client),
  smarty: (client, entry) => new SmartyBackend(client, { sendName: entry.sendName, sendIp: entry.sendIp }),
  iptvportal: (client) => new IptvportalBackend(client),
  flussonic: (client) => new FlussonicBackend(client),
};

/** One configured middleware, unguarded: the edge wraps it (createBackends); `check` uses it as it is. */
export function createBackend(entry: BackendEntry): MiddlewareBackend {
  const client = {
    name: entry.name,
    url: entry.url,
    timeoutMs: entry.timeoutMs,
    exchangeLimitMs: abandonAfterMs(entry.timeoutMs),
    maxBodyBytes: entry.maxBodyBytes,
    connections: entry.connections,
    ...(entry.ca !== undefined && { caFile: entry.ca }),
  };
  return BACKEND_FACTORIES[entry.type](client, entry);
}

/** The middleware the Authorizer asks, or undefined when none is configured. */
export function createBackends(entries: readonly BackendEntry[], metrics: EdgeMetrics): AuthBackend | undefined {
  const guarded = entries.map((entry) => new GuardedBackend(createBackend(entry), { timeoutMs: entry.timeoutMs, concurrency: entry.concurrency }, metrics));
  if (guarded.length === 0) return undefined;
  return guarded.length === 1 ? guarded[0] : new ParallelBackend(guarded);
}

/** The Authorizer's outer bound: the slowest backend's wait for a slot and for its answer, plus a little for the bookkeeping. */
export function overallTimeoutMs(entries: readonly BackendEntry[]): number {
  return Math.max(0, ...entries.map((e) => callerBoundMs(e.timeoutMs))) + 50;
}
