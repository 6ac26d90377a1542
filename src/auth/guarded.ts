/**
 * What every configured middleware gets around it: a cap on calls in flight
 * (a flood of new sessions queues instead of knocking the middleware over,
 * Nimble's "Concurrency"), its own timeout covering the wait in the queue and
 * the call, and its metrics. A queued call whose time runs out is
 * "unavailable" like any timeout.
 */
import { EdgeError } from '../errors.js';
import type { BackendOutcome, EdgeMetrics } from '../metrics/metrics.js';
import type { AuthBackend, AuthRequest, BackendVerdict } from './types.js';

/** A queued call with less time than this left is not sent when its turn comes. */
const MIN_USEFUL_CALL_MS = 100;

/** Past this many waiting calls a new one is unavailable at once: the queue is bounded too. */
export const MAX_QUEUED_CALLS = 10_000;

const OUTCOME: Readonly<Record<string, BackendOutcome>> = {
  EDGE_ERR_BACKEND_TIMEOUT: 'timeout',
  EDGE_ERR_BACKEND_REFUSED: 'refused',
  EDGE_ERR_BACKEND_RESET: 'refused',
  EDGE_ERR_BACKEND_HTTP_5XX: 'http_5xx',
  EDGE_ERR_BACKEND_INVALID: 'invalid',
};

export interface GuardOptions {
  readonly timeoutMs: number;
  readonly concurrency: number;
}

export class GuardedBackend implements AuthBackend {
  readonly name: string;
  private inFlight = 0;
  private readonly queue: (() => void)[] = [];

  constructor(
    private readonly inner: AuthBackend,
    private readonly options: GuardOptions,
    private readonly metrics: EdgeMetrics,
  ) {
    this.name = inner.name;
    metrics.backendConfigured(this.name);
  }

  async check(request: AuthRequest, parent: AbortSignal): Promise<BackendVerdict> {
    const started = performance.now();
    const signal = AbortSignal.any([parent, AbortSignal.timeout(this.options.timeoutMs)]);
    try {
      await this.acquire(signal, started + this.options.timeoutMs);
      try {
        const verdict = await this.inner.check(request, signal);
        this.metrics.backendCall(this.name, verdict.allow ? 'allow' : 'deny', (performance.now() - started) / 1000, verdict.allow ? undefined : verdict.reason);
        return verdict;
      } finally {
        this.release();
      }
    } catch (err) {
      const e = signal.aborted && !(err instanceof EdgeError && err.code !== 'EDGE_ERR_BACKEND_TIMEOUT') ? new EdgeError('EDGE_ERR_BACKEND_TIMEOUT', `${this.name}: no answer within ${this.options.timeoutMs} ms`, { cause: err }) : err;
      const code = e instanceof EdgeError ? e.code : 'EDGE_ERR_BACKEND_RESET';
      // A call we cancelled (another backend already allowed, the edge is shutting down) is not a failure of this one.
      if (!(parent.aborted && parent.reason instanceof CallCancelled)) this.metrics.backendCall(this.name, OUTCOME[code] ?? 'invalid', (performance.now() - started) / 1000);
      throw e instanceof EdgeError ? e : new EdgeError('EDGE_ERR_BACKEND_RESET', (e as Error).message, { cause: e });
    }
  }

  /**
   * A slot, or a rejection when `signal` aborts while waiting. A waiter whose
   * deadline has (nearly) passed by the time a slot frees is not sent: its
   * abort timer may not have run yet (timers fire one by one), and a call that
   * is already too late would only load the middleware.
   */
  private acquire(signal: AbortSignal, deadline: number): Promise<void> {
    if (this.inFlight < this.options.concurrency) {
      this.inFlight++;
      return Promise.resolve();
    }
    if (this.queue.length >= MAX_QUEUED_CALLS) return Promise.reject(new EdgeError('EDGE_ERR_BACKEND_TIMEOUT', `${this.name}: ${MAX_QUEUED_CALLS} calls already waiting`));
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.queue.indexOf(grant);
        if (i !== -1) this.queue.splice(i, 1);
        reject(new EdgeError('EDGE_ERR_BACKEND_TIMEOUT', `${this.name}: waited ${this.options.timeoutMs} ms for a free slot (backend.concurrency ${this.options.concurrency})`));
      };
      const grant = (): void => {
        signal.removeEventListener('abort', onAbort);
        // Too little time left to be worth a call (a call rarely answers in less): count it as timed out.
        if (deadline - performance.now() < Math.min(MIN_USEFUL_CALL_MS, this.options.timeoutMs / 4)) {
          reject(new EdgeError('EDGE_ERR_BACKEND_TIMEOUT', `${this.name}: waited ${this.options.timeoutMs} ms for a free slot (backend.concurrency ${this.options.concurrency})`));
          this.queue.shift()?.();
          return;
        }
        this.inFlight++;
        resolve();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.queue.push(grant);
    });
  }

  private release(): void {
    this.inFlight--;
    this.queue.shift()?.();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Abort reason for calls the edge no longer needs: another backend already allowed, or shutdown. */
export class CallCancelled extends Error {
  constructor(why: string) {
    super(why);
    this.name = 'CallCancelled';
  }
}
