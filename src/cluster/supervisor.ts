/**
 * The primary's workers (`--workers N`): forks one per slot, hands each its
 * configuration when it says hello, restarts one that dies (with a backoff,
 * and at most MAX_RESTARTS_PER_MINUTE per slot, so a crash loop shows in the
 * log and in edge_worker_restarts_total instead of burning a core), asks
 * them things (ops: kick, metrics, readiness, reload) and stops them.
 *
 * Workers share the public port through Node's cluster module: the primary
 * accepts connections and hands them out in turn (round-robin, Node's
 * default on Linux), so no worker starves while another holds every
 * connection of a burst.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import type { PrimaryMetrics } from '../metrics/primary.js';
import { envelope, parseFromWorker, type FromPrimary, type FromWorker, type Op, type OpAnswer } from './protocol.js';
import type { Slot } from './primary-state.js';

/** First restart delay; doubled per restart of the slot in the last minute. */
export const RESTART_DELAY_MS = 100;
export const MAX_RESTART_DELAY_MS = 30_000;
/** Restarts of one slot within a minute at most; past it the next waits until the oldest is a minute old. */
export const MAX_RESTARTS_PER_MINUTE = 10;
const MINUTE_MS = 60_000;
/** A worker that has not said hello, then ready, within this long is killed (and, after start, restarted). */
export const WORKER_START_TIMEOUT_MS = 30_000;
/** After a stop, workers still running this long past the drain they were given are killed. */
export const STOP_MARGIN_MS = 5000;

/**
 * How long to wait before restarting a slot that restarted at the times
 * `recent` (ms, oldest first): exponential, capped; and never a restart
 * that would make more than MAX_RESTARTS_PER_MINUTE in a minute.
 */
export function restartDelay(recent: readonly number[], now: number): number {
  const inWindow = recent.filter((t) => t > now - MINUTE_MS);
  const backoff = Math.min(MAX_RESTART_DELAY_MS, RESTART_DELAY_MS * 2 ** inWindow.length);
  if (inWindow.length < MAX_RESTARTS_PER_MINUTE) return backoff;
  const oldest = inWindow[inWindow.length - MAX_RESTARTS_PER_MINUTE]!;
  return Math.max(backoff, oldest + MINUTE_MS - now);
}

/** Why the workers could not start: the first failure, with the exit code main.ts should use. */
export class WorkerStartError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

export interface SupervisorOptions {
  readonly count: number;
  readonly log: Logger;
  readonly metrics: PrimaryMetrics;
  /** The answer to a worker's hello: its slot, the configuration document and the shared secret. */
  readonly configFor: (slot: Slot) => FromPrimary;
  /** The fleet's messages (admit, find, list, batch). */
  readonly onFleetMessage: (slot: Slot, message: FromWorker) => void;
  /** A worker (process `pid`) is listening at `url` (first start or restart). */
  readonly onReady: (slot: Slot, restarted: boolean, url: string, pid: number | undefined) => void;
  /** A worker exited (whatever the reason). */
  readonly onExit: (slot: Slot) => void;
  readonly now?: () => number;
}

interface SlotState {
  worker: Worker | undefined;
  ready: boolean;
  /** Restart times, oldest first (the last minute's matter). */
  restarts: number[];
  startTimer: NodeJS.Timeout | undefined;
  restartTimer: NodeJS.Timeout | undefined;
  /** The worker sent `failed` before exiting: its exit code and reason. */
  failure: { exitCode: number; message: string } | undefined;
  everReady: boolean;
}

interface PendingOp {
  readonly slot: Slot;
  readonly resolve: (answer: OpAnswer | undefined) => void;
  readonly timer: NodeJS.Timeout;
}

export class Supervisor {
  private readonly options: SupervisorOptions;
  private readonly now: () => number;
  private readonly slotStates = new Map<Slot, SlotState>();
  private readonly ops = new Map<number, PendingOp>();
  private nextOpId = 1;
  private stopping = false;
  private starting: { resolve: () => void; reject: (err: WorkerStartError) => void } | undefined;
  private exitWaiters: (() => void)[] = [];

  constructor(options: SupervisorOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
    // 'advanced': structured clone, so numbers such as NaN (an empty gauge) survive the trip; the args and exec are the primary's own.
    cluster.setupPrimary({ serialization: 'advanced' });
  }

  /** Forks every worker; resolves when all listen, rejects with the first failure (the others are stopped by the caller). */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.starting = { resolve, reject };
      for (let slot = 1; slot <= this.options.count; slot++) {
        this.slotStates.set(slot, { worker: undefined, ready: false, restarts: [], startTimer: undefined, restartTimer: undefined, failure: undefined, everReady: false });
        this.fork(slot);
      }
    });
  }

  /** Slots with a worker process now. */
  slots(): Slot[] {
    const out: Slot[] = [];
    for (const [slot, s] of this.slotStates) if (s.worker !== undefined) out.push(slot);
    return out;
  }

  get running(): number {
    return this.slots().length;
  }

  get ready(): number {
    let n = 0;
    for (const s of this.slotStates.values()) if (s.ready) n++;
    return n;
  }

  get configured(): number {
    return this.options.count;
  }

  send(slot: Slot, message: FromPrimary): void {
    const worker = this.slotStates.get(slot)?.worker;
    if (worker === undefined || !worker.isConnected()) return;
    try {
      worker.send(envelope(message));
    } catch {
      // The worker is exiting: its exit handler cleans up.
    }
  }

  /** Asks one worker; undefined when it does not answer in time (or is gone). */
  ask(slot: Slot, op: Op, timeoutMs: number): Promise<OpAnswer | undefined> {
    const worker = this.slotStates.get(slot)?.worker;
    if (worker === undefined || !worker.isConnected()) return Promise.resolve(undefined);
    const id = this.nextOpId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.ops.delete(id);
        resolve(undefined);
      }, timeoutMs);
      timer.unref();
      this.ops.set(id, { slot, resolve, timer });
      this.send(slot, { t: 'op', id, ...op });
    });
  }

  /** Asks the running workers one after the other until one answers. */
  async askOne(op: Op, timeoutMs: number): Promise<OpAnswer | undefined> {
    for (const slot of this.slots()) {
      const answer = await this.ask(slot, op, timeoutMs);
      if (answer !== undefined) return answer;
    }
    return undefined;
  }

  /** Asks every running worker at once: slot → answer (undefined: none in time). */
  async askAll(op: Op, timeoutMs: number): Promise<Map<Slot, OpAnswer | undefined>> {
    const slots = this.slots();
    const answers = await Promise.all(slots.map((slot) => this.ask(slot, op, timeoutMs)));
    return new Map(slots.map((slot, i) => [slot, answers[i]]));
  }

  /**
   * Tells every worker to drain and exit; resolves when all have exited, or
   * after `timeoutMs` (then the rest are killed). No restarts from here on.
   */
  async stop(timeoutMs: number): Promise<void> {
    this.stopping = true;
    for (const s of this.slotStates.values()) {
      if (s.restartTimer !== undefined) clearTimeout(s.restartTimer);
      s.restartTimer = undefined;
    }
    for (const slot of this.slots()) this.send(slot, { t: 'stop' });
    const allExited = (): boolean => this.running === 0;
    if (allExited()) return;
    const exited = new Promise<void>((resolve) => this.exitWaiters.push(resolve));
    const deadline = new Promise<'late'>((resolve) => setTimeout(() => resolve('late'), timeoutMs).unref());
    if ((await Promise.race([exited, deadline])) === 'late' && !allExited()) {
      this.options.log.warn({ workers: this.slots() }, 'workers still running after the drain: killed');
      for (const s of this.slotStates.values()) s.worker?.process.kill('SIGKILL');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
    }
  }

  private fork(slot: Slot): void {
    const state = this.slotStates.get(slot)!;
    state.ready = false;
    state.failure = undefined;
    const worker = cluster.fork();
    state.worker = worker;
    state.startTimer = setTimeout(() => {
      this.options.log.error({ worker: slot, timeoutMs: WORKER_START_TIMEOUT_MS }, 'worker did not start in time: killed');
      worker.process.kill('SIGKILL');
    }, WORKER_START_TIMEOUT_MS);
    state.startTimer.unref();
    worker.on('message', (raw: unknown) => {
      const message = parseFromWorker(raw);
      if (message === undefined) return; // not ours, or malformed: dropped (protocol.ts)
      this.onMessage(slot, worker, message);
    });
    worker.once('exit', (code: number | null, signal: NodeJS.Signals | null) => this.onExit(slot, worker, code, signal));
  }

  private onMessage(slot: Slot, worker: Worker, message: FromWorker): void {
    const state = this.slotStates.get(slot)!;
    if (state.worker !== worker) return;
    switch (message.t) {
      case 'hello':
        this.send(slot, this.options.configFor(slot));
        return;
      case 'ready': {
        if (state.startTimer !== undefined) clearTimeout(state.startTimer);
        state.startTimer = undefined;
        const restarted = state.everReady;
        state.ready = true;
        state.everReady = true;
        this.options.onReady(slot, restarted, message.url, worker.process.pid);
        if (this.starting !== undefined && this.ready === this.options.count) {
          this.starting.resolve();
          this.starting = undefined;
        }
        return;
      }
      case 'failed':
        state.failure = { exitCode: message.exitCode, message: message.message };
        return;
      case 'answer': {
        const op = this.ops.get(message.id);
        if (op === undefined || op.slot !== slot) return;
        this.ops.delete(message.id);
        clearTimeout(op.timer);
        op.resolve(message.answer);
        return;
      }
      default:
        this.options.onFleetMessage(slot, message);
    }
  }

  private onExit(slot: Slot, worker: Worker, code: number | null, signal: NodeJS.Signals | null): void {
    const state = this.slotStates.get(slot)!;
    if (state.worker !== worker) return;
    if (state.startTimer !== undefined) clearTimeout(state.startTimer);
    state.startTimer = undefined;
    state.worker = undefined;
    state.ready = false;
    for (const [id, op] of this.ops) {
      if (op.slot !== slot) continue;
      this.ops.delete(id);
      clearTimeout(op.timer);
      op.resolve(undefined);
    }
    this.options.onExit(slot);
    if (this.stopping) {
      this.options.log.info({ worker: slot, code, signal }, 'worker stopped');
      if (this.running === 0) for (const resolve of this.exitWaiters.splice(0)) resolve();
      return;
    }
    if (this.starting !== undefined && !state.everReady) {
      // A worker that cannot start (configuration, port in use) will not start on a retry either: the edge does not start.
      const failure = state.failure ?? { exitCode: 1, message: `worker ${slot} exited during start (${signal ?? `code ${code}`})` };
      this.starting.reject(new WorkerStartError(failure.message, failure.exitCode));
      this.starting = undefined;
      return;
    }
    const now = this.now();
    state.restarts = state.restarts.filter((t) => t > now - MINUTE_MS);
    const delay = restartDelay(state.restarts, now);
    state.restarts.push(now + delay);
    this.options.metrics.workerRestarted();
    const loop = state.restarts.length >= MAX_RESTARTS_PER_MINUTE;
    this.options.log[loop ? 'error' : 'warn'](
      { worker: slot, code, signal, restartInMs: delay, restartsLastMinute: state.restarts.length, ...(state.failure !== undefined && { reason: state.failure.message }) },
      loop ? `worker crash loop: restarts held to ${MAX_RESTARTS_PER_MINUTE} a minute; meanwhile the other workers serve its viewers` : 'worker exited unexpectedly: restarting it; its HLS viewers continue on the other workers, its MPEG-TS viewers reconnect',
    );
    state.restartTimer = setTimeout(() => {
      state.restartTimer = undefined;
      if (!this.stopping) this.fork(slot);
    }, delay);
    state.restartTimer.unref();
  }
}
