/**
 * A worker of `--workers N`: one edge app on the shared public port, without
 * an admin listener (the primary has the one), in a fleet with its siblings
 * through the primary (session/ipc.ts). Its life:
 *
 *   hello → config (slot, the YAML document, the shared secret, the ends in
 *   force) → build the config as main.ts would → createApp → listen → ready
 *   … ops (kick, get, stats, metrics, ready, reload) …
 *   stop (or SIGTERM/SIGINT, which main.ts turns into stop()) → drain → exit 0
 *
 * A config error exits 2 and a listen error 1, after telling the primary
 * (`failed`), which then does not start at all.
 */
import type { Logger } from 'pino';
import { handleApi } from '../admin/api.js';
import { StatusSampler } from '../admin/sampler.js';
import { createApp, type EdgeApp } from '../app.js';
import { buildConfig } from '../config/load.js';
import type { EdgeConfig } from '../config/schema.js';
import { surviveUncaught } from '../crash-guard.js';
import { ERROR_CODES, EdgeError } from '../errors.js';
import { createLogger } from '../log.js';
import { redactText } from '../redact.js';
import { IpcFleet } from '../session/ipc.js';
import { STORE_TIERS } from '../session/store.js';
import { localPage } from '../session/solo.js';
import type { FleetPage } from '../session/fleet.js';
import { viewOf } from '../session/table.js';
import { envelope, parseFromPrimary, type FromPrimary, type FromWorker, type MetricJson, type Op, type OpAnswer } from './protocol.js';
import { workerNodeName } from './workers.js';

/** A worker that has not received its configuration this long after its hello exits. */
export const CONFIG_WAIT_MS = 30_000;

const NO_PAGE: FleetPage = Object.freeze({ sessions: [], total: 0, next: undefined, complete: false });

const EXIT_RUNTIME = 1;
const EXIT_CONFIG = 2;

/** The worker's end of the channel (main.ts passes `process`). */
export interface WorkerChannel {
  send(message: unknown): boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
}

export interface WorkerOptions {
  readonly channel: WorkerChannel;
  /** Where uncaught exceptions are caught (main.ts passes `process`). */
  readonly process: NodeJS.EventEmitter;
  /** The same sources main.ts builds a config from; the file comes from the primary. */
  readonly fileName: string | undefined;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly flags: Readonly<Record<string, unknown>>;
}

export interface EdgeWorker {
  /** Drain and stop (the primary's `stop`, or SIGTERM/SIGINT). Idempotent. */
  stop(): void;
  /** Resolves with the exit code once stopped. */
  readonly done: Promise<number>;
}

export function runWorker(options: WorkerOptions): EdgeWorker {
  let stopRequested: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (stopRequested = resolve));
  let stopping = false;
  let app: EdgeApp | undefined;
  /** The API's sampler dependency, never started: the session routes a worker answers do not read it. */
  let sampler: StatusSampler | undefined;
  let fleet: IpcFleet | undefined;
  let secret: string | undefined;
  let slot = 0;
  let log: Logger | undefined;
  let gotConfig: (m: Extract<FromPrimary, { t: 'config' }>) => void = () => undefined;
  const configured = new Promise<Extract<FromPrimary, { t: 'config' }> | undefined>((resolve) => {
    gotConfig = resolve;
    setTimeout(() => resolve(undefined), CONFIG_WAIT_MS).unref();
    void stopped.then(() => resolve(undefined));
  });
  const send = (message: FromWorker): boolean => {
    try {
      return options.channel.send(envelope(message));
    } catch {
      return false; // the channel is closed: the primary is gone
    }
  };
  /**
   * The config as main.ts builds it, plus what makes this process a worker: the primary's secret
   * when none is configured (markers must verify on every worker), and a node name of its own.
   */
  const configFrom = (file: unknown, slot: number): EdgeConfig => {
    const sources = { file, fileName: options.fileName, env: options.env, flags: options.flags };
    const config = buildConfig(sources);
    const flags: Record<string, unknown> = { ...options.flags, 'node.name': workerNodeName(config.node.name, slot) };
    if (secret !== undefined && config.session.secret === undefined) flags['session.secret'] = secret;
    return buildConfig({ ...sources, flags });
  };

  async function answer(op: Op): Promise<OpAnswer> {
    switch (op.op) {
      case 'kick':
        return { op: 'kick', found: app?.sessions.kick(op.sessionId) ?? false };
      case 'get': {
        const session = app?.sessions.table.get(op.sessionId) ?? app?.sessions.store.get(op.sessionId);
        return { op: 'get', view: session === undefined ? null : viewOf(session) };
      }
      case 'stats': {
        const store = app?.sessions.store;
        const table = app?.sessions.table;
        const byTier = Object.fromEntries(STORE_TIERS.map((t) => [t, store?.stats(t) ?? { entries: 0, evictions: 0 }]));
        return { op: 'stats', entries: store?.size ?? 0, evictions: store?.evictions ?? 0, byTier, sessions: table?.size ?? 0, byKind: table?.countByKind() ?? { hls: 0, mpegts: 0 }, byChannel: table?.countByChannel() ?? {} };
      }
      case 'api': {
        if (app === undefined || sampler === undefined) return { op: 'api', status: ERROR_CODES.EDGE_ERR_WORKERS_UNAVAILABLE.status, body: { error: 'EDGE_ERR_WORKERS_UNAVAILABLE', message: 'the worker is starting' } };
        // The session routes only (the primary answers the rest): they use the registry and its fleet, not the sampler.
        const a = await handleApi(op.method, op.path, new URLSearchParams(op.query), { sessions: app.sessions, sampler });
        return 'page' in a ? { op: 'api', status: 200, page: a.page } : { op: 'api', status: a.status, body: a.body };
      }
      case 'metrics':
        return { op: 'metrics', metrics: app === undefined ? [] : ((await app.metrics.registry.getMetricsAsJSON()) as unknown as MetricJson[]) };
      case 'ready':
        return { op: 'ready', ready: !stopping && app !== undefined && (await app.isReady().catch(() => false)) };
      case 'reload':
        try {
          const needsRestart = app?.reload(configFrom(op.file, slot)) ?? [];
          return { op: 'reload', needsRestart, error: null };
        } catch (err) {
          // Config errors are redacted where they are made; this catches any other error text quoting a URL.
          return { op: 'reload', needsRestart: null, error: redactText((err as Error).message) };
        }
    }
  }

  options.channel.on('message', (raw) => {
    const message = parseFromPrimary(raw);
    if (message === undefined) return;
    switch (message.t) {
      case 'config':
        gotConfig(message);
        return;
      case 'stop':
        stop();
        return;
      case 'op':
        void answer(message).then(
          (a) => send({ t: 'answer', id: message.id, answer: a }),
          (err: unknown) => log?.error({ op: message.op, error: (err as Error).message }, 'worker could not answer the primary'),
        );
        return;
      default:
        fleet?.receive(message);
    }
  });

  function stop(): void {
    if (stopping) return;
    stopping = true;
    stopRequested();
  }

  async function run(): Promise<number> {
    send({ t: 'hello' });
    const message = await configured;
    if (message === undefined) return stopping ? 0 : EXIT_RUNTIME;
    secret = message.secret;
    slot = message.slot;
    let config: EdgeConfig;
    try {
      config = configFrom(message.file, slot);
    } catch (err) {
      const code = err instanceof EdgeError && err.code === 'EDGE_ERR_CONFIG' ? EXIT_CONFIG : EXIT_RUNTIME;
      send({ t: 'failed', exitCode: code, message: redactText((err as Error).message) });
      return code;
    }
    log = createLogger(config.log.level).child({ worker: message.slot });
    // With --store redis:// the workers share Redis like any edges of a fleet; otherwise their primary.
    const nodeName = config.node.name;
    const ipc =
      config.store.url !== undefined
        ? undefined
        : new IpcFleet({ nodeName, send, log, localList: (filter, after, limit) => (app === undefined ? NO_PAGE : localPage(app.sessions.table, nodeName, filter, after, limit, false)) });
    fleet = ipc;
    const edge = createApp(config, { log, adminListener: false, fleet: ipc });
    app = edge;
    sampler = new StatusSampler({ registry: edge.metrics.registry });
    surviveUncaught(options.process, { log, metrics: edge.metrics });
    if (message.ends.length > 0) ipc?.receive({ t: 'ended', ends: message.ends });
    try {
      const { url } = await edge.listen();
      send({ t: 'ready', url });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      send({ t: 'failed', exitCode: EXIT_RUNTIME, message: `cannot listen: ${e.message} (check --listen)` });
      await edge.close(0);
      return EXIT_RUNTIME;
    }
    await stopped;
    log.info('stopping: draining connections');
    // The app closes its fleet (the IpcFleet) last: the primary hears this worker's sessions leave.
    await edge.close();
    return 0;
  }

  return { stop, done: run() };
}
