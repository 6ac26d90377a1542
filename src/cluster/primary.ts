/**
 * The primary of `--workers N`: serves no player. It forks the workers
 * (supervisor.ts), holds what they share (primary-state.ts, through
 * fleet-host.ts), and runs the one admin listener: /metrics summed over the
 * workers (aggregate.ts), the admin API over all of them (admin-api.ts),
 * /readyz ready when every worker is, the status page. main.ts hands it the
 * signals: stop() drains every worker, reload() re-configures them.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { StatusSampler } from '../admin/sampler.js';
import { createAdminHandler } from '../admin/server.js';
import type { EdgeConfig } from '../config/schema.js';
import { guardRequests } from '../crash-guard.js';
import { PrimaryMetrics } from '../metrics/primary.js';
import { answerClientError, refuseConnect } from '../proxy/client-error.js';
import { createPrimaryApi } from './admin-api.js';
import { MetricsAggregator } from './aggregate.js';
import { FleetHost } from './fleet-host.js';
import { PrimaryState, type Slot } from './primary-state.js';
import { STOP_MARGIN_MS, Supervisor } from './supervisor.js';
import { workerNodeName } from './workers.js';

/** /readyz waits this long for every worker's own readiness. */
const READY_TIMEOUT_MS = 1000;
/** A reload waits this long for every worker to apply it. */
const RELOAD_TIMEOUT_MS = 5000;
const REQUEST_HEADERS_TIMEOUT_MS = 10_000;

/** Settings only the primary reads: a change needs a restart of the whole edge. */
const PRIMARY_SETTINGS = ['workers', 'admin.listen', 'admin.token'] as const;

export interface PrimaryOptions {
  /** The validated configuration the edge starts with. */
  readonly config: EdgeConfig;
  /** The parsed YAML document it was built from (undefined: none); every worker builds its own from it. */
  readonly file: unknown;
  /** Worker processes (`auto` already resolved). */
  readonly count: number;
  /** The marker secret made at start when none is configured: the workers must share one. */
  readonly secret: string | undefined;
  readonly log: Logger;
}

export interface EdgePrimary {
  readonly metrics: PrimaryMetrics;
  /** Forks the workers, waits until all listen, then opens the admin listener. Rejects with a WorkerStartError when a worker cannot start. */
  start(): Promise<{ url: string; adminUrl: string }>;
  /** SIGHUP: every worker applies `file` (already validated into `next`). */
  reload(next: EdgeConfig, file: unknown): Promise<void>;
  /** SIGTERM/SIGINT: every worker drains and exits, then the admin listener closes. Idempotent. */
  stop(): Promise<void>;
}

export function createPrimary(options: PrimaryOptions): EdgePrimary {
  const { config, count, log } = options;
  const startFile = options.file;
  let currentFile = options.file;
  const nodeName = config.node.name;
  let draining = false;
  /** The public URL, as the workers report it (the port is the one they share). */
  let url = '';

  const state = new PrimaryState({
    edgeName: (slot) => workerNodeName(nodeName, slot),
    // As the registry keeps a closed session resumable: until its decision's expiry and the stale grace; under --recheck never, the grace.
    resumableUntil: (expiresAt, now) => (config.auth.recheck === 'never' ? now : expiresAt) + config.auth.staleGraceMs,
  });
  const metrics = new PrimaryMetrics(() => ({ configured: count, running: supervisor.running, ready: supervisor.ready }));
  const supervisor: Supervisor = new Supervisor({
    count,
    log,
    metrics,
    // A restarted worker gets the document the edge started with (its restart-only settings are its siblings'), then the reloads since.
    configFor: (slot) => ({ t: 'config', slot, file: startFile, secret: options.secret, ends: host.liveEnds() }),
    onFleetMessage: (slot, message) => void host.handle(slot, message),
    onReady: (slot, restarted, workerUrl, pid) => {
      url = workerUrl;
      log.info({ worker: slot, pid }, restarted ? 'worker restarted and listening' : 'worker listening');
      if (currentFile !== startFile) void reloadWorker(slot, currentFile);
    },
    onExit: (slot) => {
      host.workerExited(slot);
      aggregator.workerExited(slot);
    },
  });
  const host = new FleetHost({ state, send: (slot, m) => supervisor.send(slot, m), slots: () => supervisor.slots() });
  const askAll = supervisor.askAll.bind(supervisor);
  // With Redis the workers publish there, not here: edge_sessions_active stays the sum of their tables.
  const table = config.store.url === undefined ? 'primary' : 'redis';
  const aggregator = new MetricsAggregator({ askAll, primary: metrics.registry, sessionsByKind: () => (table === 'primary' ? state.countByKind() : undefined) });
  const collect = (): Promise<Registry> => aggregator.collect();
  const sampler = new StatusSampler({ registry: collect });

  const isReady = async (): Promise<boolean> => {
    if (draining || supervisor.ready < count) return false;
    const answers = await askAll({ op: 'ready' }, READY_TIMEOUT_MS);
    return answers.size === count && [...answers.values()].every((a) => a?.op === 'ready' && a.ready);
  };
  const workers = (): { configured: number; running: number; ready: number } => ({ configured: count, running: supervisor.running, ready: supervisor.ready });
  const adminServer: Server = createServer(
    { headersTimeout: REQUEST_HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_HEADERS_TIMEOUT_MS * 3, requireHostHeader: false },
    guardRequests('admin', createAdminHandler({ registry: collect, adminToken: config.admin.token, isReady, sampler, api: createPrimaryApi({ state, askAll, askOne: supervisor.askOne.bind(supervisor), sampler, workers, table }) }), { log, metrics }),
  );
  adminServer.on('clientError', answerClientError);
  adminServer.on('connect', refuseConnect);

  async function reloadWorker(slot: Slot, file: unknown): Promise<void> {
    const answer = await supervisor.ask(slot, { op: 'reload', file }, RELOAD_TIMEOUT_MS);
    if (answer?.op !== 'reload') log.error({ worker: slot }, 'worker did not apply the configuration in time: it keeps the one it had');
    else if (answer.error !== null) log.error({ worker: slot, error: answer.error }, 'worker rejected the configuration: it keeps the one it had');
  }

  let stopping: Promise<void> | undefined;

  return {
    metrics,
    async start() {
      log.info({ workers: count, node: nodeName, ...(options.secret !== undefined && { sessionSecret: 'made at start (session.secret unset): markers outlive a worker, not a restart of the edge' }) }, 'starting workers');
      try {
        await supervisor.start();
      } catch (err) {
        draining = true;
        await supervisor.stop(STOP_MARGIN_MS);
        host.close();
        throw err;
      }
      await new Promise<void>((resolve, reject) => {
        adminServer.once('error', reject);
        adminServer.listen(config.admin.listen.port, config.admin.listen.host, () => {
          adminServer.off('error', reject);
          resolve();
        });
      }).catch(async (err: unknown) => {
        draining = true;
        await supervisor.stop(config.shutdown.graceMs + config.shutdown.drainTimeoutMs + STOP_MARGIN_MS);
        host.close();
        throw err;
      });
      sampler.start();
      const adminUrl = urlOf(adminServer.address() as AddressInfo);
      log.info({ workers: count, url, adminUrl }, 'astra-auth-edge listening: every worker ready');
      return { url, adminUrl };
    },
    async reload(next, file) {
      currentFile = file;
      log.level = next.log.level;
      const needsRestart = PRIMARY_SETTINGS.filter((k) => JSON.stringify(pick(config, k)) !== JSON.stringify(pick(next, k)));
      if (needsRestart.length > 0) log.warn({ settings: needsRestart }, 'these changed settings take effect only after a restart');
      const slots = supervisor.slots();
      await Promise.all(slots.map((slot) => reloadWorker(slot, file)));
      log.info({ workers: slots.length }, 'configuration sent to every worker');
    },
    stop() {
      stopping ??= (async () => {
        draining = true;
        const budget = config.shutdown.graceMs + config.shutdown.drainTimeoutMs + STOP_MARGIN_MS;
        log.info({ workers: supervisor.running, timeoutMs: budget }, 'stopping: every worker drains');
        await supervisor.stop(budget);
        host.close();
        sampler.close();
        await new Promise<void>((resolve) => {
          adminServer.close(() => resolve());
          adminServer.closeAllConnections();
        });
        log.info('astra-auth-edge stopped');
      })();
      return stopping;
    },
  };
}

function pick(config: EdgeConfig, path: (typeof PRIMARY_SETTINGS)[number]): unknown {
  if (path === 'workers') return config.workers;
  // The token is compared, never logged: only the setting's name goes in the warning.
  return path === 'admin.listen' ? config.admin.listen : config.admin.token;
}

function urlOf(address: AddressInfo): string {
  return `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
}
