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
import { createApp, type EdgeApp } from '../app.js';
import { buildConfig } from '../config/load.js';
import type { EdgeConfig } from '../config/schema.js';
import { surviveUncaught } from '../crash-guard.js';
import { EdgeError } from '../errors.js';
import { createLogger } from '../log.js';
import { redactText } from '../redact.js';
import { IpcFleet } from '../session/ipc.js';
import { STORE_TIERS } from '../session/store.js';
import type { FleetPage } from '../session/fleet.js';
import { viewOf, type SessionFilter, type TablePosition } from '../session/table.js';
import { envelope, parseFromPrimary, type FromPrimary, type FromWorker, type MetricJson, type Op, type OpAnswer } from './protocol.js';
import { bridgeRegistry } from './registry-bridge.js';
import { hostNodeName } from './workers.js';

/** A worker that has not received its configuration this long after its hello exits. */
export const CONFIG_WAIT_MS = 30_000;

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
  let fleet: IpcFleet | undefined;
  let secret: string | undefined;
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
  const configFrom = (file: unknown): EdgeConfig => {
    const sources = { file, fileName: options.fileName, env: options.env, flags: options.flags };
    const config = buildConfig(sources);
    return secret === undefined || config.session.secret !== undefined ? config : buildConfig({ ...sources, flags: { ...options.flags, 'session.secret': secret } });
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
        const byTier = Object.fromEntries(STORE_TIERS.map((t) => [t, store?.stats(t) ?? { entries: 0, evictions: 0 }]));
        return { op: 'stats', entries: store?.size ?? 0, evictions: store?.evictions ?? 0, byTier };
      }
      case 'metrics':
        return { op: 'metrics', metrics: app === undefined ? [] : ((await app.metrics.registry.getMetricsAsJSON()) as unknown as MetricJson[]) };
      case 'ready':
        return { op: 'ready', ready: !stopping && app !== undefined && (await app.isReady().catch(() => false)) };
      case 'reload':
        try {
          const needsRestart = app?.reload(configFrom(op.file)) ?? [];
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
    let config: EdgeConfig;
    try {
      config = configFrom(message.file);
    } catch (err) {
      const code = err instanceof EdgeError && err.code === 'EDGE_ERR_CONFIG' ? EXIT_CONFIG : EXIT_RUNTIME;
      send({ t: 'failed', exitCode: code, message: redactText((err as Error).message) });
      return code;
    }
    log = createLogger(config.log.level).child({ worker: message.slot });
    const nodeName = `${hostNodeName(config)}/w${message.slot}`;
    const ipc = new IpcFleet({ nodeName, send, log, localList: (filter, after, limit) => localPage(app, nodeName, filter, after, limit) });
    fleet = ipc;
    const edge = createApp(config, { log, adminListener: false, fleet: ipc });
    app = edge;
    surviveUncaught(options.process, { log, metrics: edge.metrics });
    const bridge = bridgeRegistry(edge.sessions, ipc);
    if (message.ends.length > 0) ipc.receive({ t: 'ended', ends: message.ends });
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
    await edge.close();
    bridge.close();
    await ipc.close();
    return 0;
  }

  return { stop, done: run() };
}

/** This worker's own sessions as a fleet page (what `list` falls back to when the primary does not answer). */
function localPage(app: EdgeApp | undefined, edge: string, filter: SessionFilter, after: TablePosition | undefined, limit: number): FleetPage {
  if (app === undefined) return { sessions: [], total: 0, next: undefined, complete: false };
  const page = app.sessions.table.page(filter, after, limit);
  return { sessions: page.sessions.map((s) => ({ ...viewOf(s), edge })), total: page.total, next: page.next, complete: false };
}
