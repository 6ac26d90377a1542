/**
 * What every configured middleware gets around it: a cap on calls in flight
 * (backend.concurrency: a flood of new sessions queues instead of knocking the
 * middleware over, Nimble's "Concurrency"), a bounded queue, its timeouts and
 * its metrics.
 *
 * Two waits, two meanings (hardening issue, item 4):
 * - In the queue, a call waits at most backend.timeout for a slot. One that
 *   gets none in time, or finds the queue full, is SHED (EDGE_ERR_OVERLOADED):
 *   it never reached the middleware, so it says nothing about the middleware.
 *   The viewer gets 503 with Retry-After, never the default action (when it
 *   did, the edge's own queue turned 1,681 of 2,000 denies into allows).
 * - On the wire, a call has backend.timeout to answer. One that does not is
 *   EDGE_ERR_BACKEND_TIMEOUT: the middleware is unavailable and the default
 *   action applies.
 * A caller therefore waits at most 2 × backend.timeout ({@link callerBoundMs}).
 *
 * What keeps the middleware's load at backend.concurrency (item 5): a slot is
 * held until the middleware's HTTP exchange is over, not until the edge stops
 * waiting for it.
 * - A caller that stops waiting (its timeout, another backend's allow) gets
 *   its answer at once, but the request is not aborted: it runs on in its slot
 *   and its late answer is counted (edge_auth_backend_late_total) and dropped.
 *   Aborting would free nothing at the middleware: undici's abort of a request
 *   on the wire destroys its socket (node_modules/undici/lib/dispatcher/
 *   client-h1.js, `abort` → util.destroy(socket)), and a middleware (a PHP
 *   script, most app servers) goes on working on a request whose client went
 *   away. That is how 116 calls were in flight against a cap of 32.
 * - `inner.check` settles only when the exchange is over: MiddlewareClient.get
 *   resolves once the body was read to its end or discarded (`dump`), and
 *   rejects once undici failed the request (its socket destroyed).
 * - A call that never ends is abandoned at {@link ABANDON_AFTER_TIMEOUTS} ×
 *   backend.timeout: aborted, so its socket is destroyed and the middleware
 *   sees the connection close, and only then is the slot free. undici's own
 *   headersTimeout/bodyTimeout are set to the same limit (backends/index.ts):
 *   at backend.timeout undici itself would cut the connection and leave the
 *   middleware working.
 * - One slot is one connection: the undici Pool sends one request per
 *   connection (pipelining 1) and backend.connections ≥ backend.concurrency
 *   (config/load.ts), so a call holding a slot is on the wire at once instead
 *   of waiting in the Pool's own queue while its time runs.
 * - Not covered: a middleware that keeps working after the hard limit closed
 *   its connection (hung, not slow); and, after SIGHUP replaced a backend, the
 *   old one's late calls, which run out (within the same limit) beside the
 *   new one's cap.
 * Shutdown (`cancel`) aborts everything at once.
 *
 * Per call: one CallAbort (the HTTP backends' cancel: backends/client.ts;
 * any other backend gets an AbortController's signal) and one timer (backend.timeout, re-armed for the rest of the
 * hard limit only when a call outlives it); a listener on the caller's
 * signal only when the caller passed one (the Authorizer passes none: this
 * backend bounds its callers, and shutdown comes through `cancel`).
 */
import { EdgeError } from '../errors.js';
import type { BackendLoad, BackendOutcome, EdgeMetrics } from '../metrics/metrics.js';
import { CallAbort, type AuthBackend, type AuthRequest, type BackendVerdict } from './types.js';

/**
 * A call its caller stopped waiting for keeps its slot until the middleware
 * answers, for at most this many backend.timeouts from when it was sent; then
 * its connection is closed. Far above any middleware that is merely slow (the
 * issue's 3 s middleware against the default 1 s), and a hung one cannot hold
 * the slots for ever.
 */
export const ABANDON_AFTER_TIMEOUTS = 10;

/** Past this many waiting calls a new one is shed at once: the queue is bounded too. */
export const MAX_QUEUED_CALLS = 10_000;

const OUTCOME: Readonly<Record<string, BackendOutcome>> = {
  EDGE_ERR_BACKEND_TIMEOUT: 'timeout',
  EDGE_ERR_BACKEND_REFUSED: 'refused',
  EDGE_ERR_BACKEND_RESET: 'refused',
  EDGE_ERR_BACKEND_HTTP_5XX: 'http_5xx',
  EDGE_ERR_BACKEND_INVALID: 'invalid',
};

/** The hard limit of one middleware exchange (see ABANDON_AFTER_TIMEOUTS). */
export function abandonAfterMs(timeoutMs: number): number {
  return timeoutMs * ABANDON_AFTER_TIMEOUTS;
}

/** The longest a caller waits: backend.timeout for a slot, then backend.timeout for the answer. */
export function callerBoundMs(timeoutMs: number): number {
  return 2 * timeoutMs;
}

export interface GuardOptions {
  readonly timeoutMs: number;
  readonly concurrency: number;
}

/** Abort reason for calls the edge no longer needs: another backend already allowed, or shutdown. */
export class CallCancelled extends Error {
  constructor(why: string) {
    super(why);
    this.name = 'CallCancelled';
  }
}

/** A call the edge shed (never sent): EDGE_ERR_OVERLOADED, with the Retry-After its viewer gets. */
export class CallShed extends EdgeError {
  constructor(
    message: string,
    readonly retryAfterS: number,
  ) {
    super('EDGE_ERR_OVERLOADED', message);
  }
}

/** Abort reason of a call that outlived the hard limit. */
class CallAbandoned extends Error {}

interface Waiter {
  grant(): void;
  leave(err: Error): void;
}

export class GuardedBackend implements AuthBackend, BackendLoad {
  readonly name: string;
  /** A caller waits at most callerBoundMs, and `cancel` ends every call. */
  readonly boundsCallers = true;
  private slots = 0;
  /** Insertion-ordered: the first is served first; a waiter that gives up leaves in O(1). */
  private readonly queue = new Set<Waiter>();
  /** Every call holding a slot, so shutdown can abort them. */
  private readonly calls = new Set<{ abort(reason: unknown): void }>();
  private readonly abandonMs: number;
  private readonly retryAfterS: number;
  private readonly watch: { unwatch(): void };
  private closing: Promise<void> | undefined;
  private onIdle: (() => void) | undefined;

  constructor(
    private readonly inner: AuthBackend,
    private readonly options: GuardOptions,
    private readonly metrics: EdgeMetrics,
  ) {
    this.name = inner.name;
    this.abandonMs = abandonAfterMs(options.timeoutMs);
    // A shed call waited backend.timeout for a slot: about as long as the queue needs to move on.
    this.retryAfterS = Math.max(1, Math.ceil(options.timeoutMs / 1000));
    metrics.backendConfigured(this.name);
    this.watch = metrics.watchBackendLoad(this);
  }

  get inFlight(): number {
    return this.slots;
  }

  get queued(): number {
    return this.queue.size;
  }

  check(request: AuthRequest, parent?: AbortSignal): Promise<BackendVerdict> {
    // A free slot (the usual case): sent at once, without the queue's promise and the await's extra turn.
    if (parent?.aborted !== true && this.slots < this.options.concurrency && this.queue.size === 0) {
      this.slots++;
      return this.send(request, parent);
    }
    return this.checkQueued(request, parent);
  }

  private async checkQueued(request: AuthRequest, parent: AbortSignal | undefined): Promise<BackendVerdict> {
    try {
      await this.acquire(parent);
      if (parent?.aborted === true) {
        // Aborted between the grant and here: the slot goes to the next waiter, unused.
        this.release();
        throw this.whyLeft(parent, 'gave up as a slot came free');
      }
    } catch (err) {
      if (err instanceof CallShed) this.metrics.backendCallShed(this.name);
      throw err;
    }
    return this.send(request, parent);
  }

  /** A slot, or a rejection: CallShed when none came free in time or the queue is full, CallCancelled when the caller cancelled. */
  private acquire(parent: AbortSignal | undefined): Promise<void> {
    if (parent?.aborted === true) return Promise.reject(this.whyLeft(parent, 'gave up before queueing'));
    if (this.slots < this.options.concurrency) {
      this.slots++;
      return Promise.resolve();
    }
    if (this.queue.size >= MAX_QUEUED_CALLS) return Promise.reject(new CallShed(`${this.name}: ${MAX_QUEUED_CALLS} calls already waiting`, this.retryAfterS));
    return new Promise((resolve, reject) => {
      const done = (): void => {
        this.queue.delete(waiter);
        clearTimeout(timer);
        parent?.removeEventListener('abort', onAbort);
      };
      const waiter: Waiter = {
        grant: () => {
          done();
          this.slots++;
          resolve();
        },
        leave: (err) => {
          done();
          reject(err);
          this.idleCheck();
        },
      };
      const onAbort = (): void => waiter.leave(this.whyLeft(parent!, 'gave up while queued'));
      const timer = setTimeout(
        () => waiter.leave(new CallShed(`${this.name}: no free slot within ${this.options.timeoutMs} ms (backend.concurrency ${this.options.concurrency}, ${this.queue.size} waiting)`, this.retryAfterS)),
        this.options.timeoutMs,
      );
      parent?.addEventListener('abort', onAbort, { once: true });
      this.queue.add(waiter);
    });
  }

  /** Why a caller left before its call was sent: its cancellation, or else (the Authorizer's outer bound) a shed. */
  private whyLeft(parent: AbortSignal, what: string): Error {
    return parent.reason instanceof CallCancelled ? parent.reason : new CallShed(`${this.name}: caller ${what}`, this.retryAfterS);
  }

  /**
   * Sends the call in the slot acquired. The caller gets the answer, or a
   * timeout after backend.timeout, or its own cancellation; the call itself
   * keeps the slot until the exchange is over (or abandoned).
   */
  private send(request: AuthRequest, parent: AbortSignal | undefined): Promise<BackendVerdict> {
    const sent = performance.now();
    // The HTTP backends are cut through a CallAbort; any other through the signal of an AbortController.
    const call = this.inner.checkAbortable !== undefined ? new CallAbort() : new AbortController();
    this.calls.add(call);
    return new Promise((resolve, reject) => {
      let waiting = true;
      let over = false;
      const stopWaiting = (): void => {
        waiting = false;
        parent?.removeEventListener('abort', onParent);
      };
      const timedOut = (cause?: unknown): void => {
        stopWaiting();
        this.metrics.backendCall(this.name, 'timeout', (performance.now() - sent) / 1000);
        reject(new EdgeError('EDGE_ERR_BACKEND_TIMEOUT', `${this.name}: no answer within ${this.options.timeoutMs} ms`, { cause }));
      };
      // One timer: the caller's backend.timeout, then (a call still on the wire) the rest of the hard limit.
      let timer = setTimeout(() => {
        if (waiting) timedOut();
        if (!over) timer = setTimeout(() => call.abort(new CallAbandoned(`${this.name}: no answer within ${this.abandonMs} ms, connection closed`)), this.abandonMs - this.options.timeoutMs);
      }, this.options.timeoutMs);
      const onParent = (): void => {
        // A call we cancelled (another backend already allowed, shutdown) is not a failure of this one.
        if (parent!.reason instanceof CallCancelled) {
          stopWaiting();
          reject(parent!.reason);
        } else timedOut(parent!.reason);
      };
      parent?.addEventListener('abort', onParent, { once: true });

      const end = (): boolean => {
        over = true;
        clearTimeout(timer);
        this.calls.delete(call);
        this.release();
        return waiting;
      };
      (call instanceof CallAbort ? this.inner.checkAbortable!(request, call) : this.inner.check(request, call.signal)).then(
        (verdict) => {
          if (!end()) return this.metrics.backendCallLate(this.name, 'answered');
          stopWaiting();
          this.metrics.backendCall(this.name, verdict.allow ? 'allow' : 'deny', (performance.now() - sent) / 1000, verdict.allow ? undefined : verdict.reason);
          resolve(verdict);
        },
        (err: unknown) => {
          const stillWaiting = end();
          const why = call instanceof CallAbort ? call.reason : (call.signal.reason as unknown);
          if (!stillWaiting) {
            if (!(why instanceof CallCancelled)) this.metrics.backendCallLate(this.name, why instanceof CallAbandoned ? 'abandoned' : 'failed');
            return;
          }
          stopWaiting();
          if (why instanceof CallCancelled) return reject(why);
          const e = err instanceof EdgeError ? err : new EdgeError('EDGE_ERR_BACKEND_RESET', (err as Error).message, { cause: err });
          this.metrics.backendCall(this.name, OUTCOME[e.code] ?? 'invalid', (performance.now() - sent) / 1000);
          reject(e);
        },
      );
    });
  }

  private release(): void {
    this.slots--;
    const next = this.queue.values().next();
    if (next.done !== true) next.value.grant();
    else this.idleCheck();
  }

  private idleCheck(): void {
    if (this.slots === 0 && this.queue.size === 0) this.onIdle?.();
  }

  /** Shutdown: every waiting call and every call on the wire (late ones too) is cancelled at once. */
  cancel(): void {
    const cancelled = new CallCancelled('edge shutting down');
    for (const waiter of [...this.queue]) waiter.leave(cancelled);
    for (const call of this.calls) call.abort(cancelled);
  }

  /** Once every call is over (each within the hard limit; at once after `cancel`), closes the connections. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.slots > 0 || this.queue.size > 0) await new Promise<void>((resolve) => (this.onIdle = resolve));
      this.watch.unwatch();
      await this.inner.close();
    })();
    return this.closing;
  }
}
