/**
 * cache → coalesce → backend → failure policy, in one place (STYLE §2).
 *
 * - A fresh decision on the session answers synchronously (no promise, no
 *   allocation): that is every playlist and segment request after the first.
 * - Concurrent requests of a session that has no decision yet share one
 *   middleware call (`session.pending`).
 * - An expired allow is served while a background re-check runs (serve while
 *   revalidating): the stream never stalls on the middleware. A deny from the
 *   re-check ends the session.
 * - When the middleware cannot decide, the default action applies: `allow`
 *   (Astra), `deny`, or `keep-granted` (Flussonic: granted sessions keep
 *   playing, new ones are refused).
 */
import type { Logger } from 'pino';
import { EdgeError } from '../errors.js';
import type { AuthConfig, DefaultAction } from '../config/schema.js';
import type { BackendOutcome, EdgeMetrics } from '../metrics/metrics.js';
import type { Session } from '../session/session.js';
import type { SessionRegistry } from '../session/registry.js';
import type { AuthBackend, AuthRequest, Decision } from './types.js';
import { RateLimitedLog } from '../log.js';

const BACKEND_OUTCOME: Readonly<Record<string, BackendOutcome>> = {
  EDGE_ERR_BACKEND_TIMEOUT: 'timeout',
  EDGE_ERR_BACKEND_REFUSED: 'refused',
  EDGE_ERR_BACKEND_RESET: 'refused',
  EDGE_ERR_BACKEND_HTTP_5XX: 'http_5xx',
  EDGE_ERR_BACKEND_INVALID: 'invalid',
};

/** One log line per this interval while the middleware stays unavailable. */
const UNAVAILABLE_LOG_INTERVAL_MS = 10_000;

export const REASON_UNAVAILABLE = 'middleware_unavailable';
export const REASON_NO_BACKEND = 'no_backend_configured';

export interface AuthorizerOptions {
  readonly backend: AuthBackend | undefined;
  readonly auth: AuthConfig;
  /** Whole-call limit of one middleware request (backend.timeout). */
  readonly backendTimeoutMs: number;
  readonly sessions: SessionRegistry;
  readonly metrics: EdgeMetrics;
  readonly log: Logger;
  readonly now?: () => number;
}

export class Authorizer {
  // Replaced as a whole on SIGHUP (reconfigure); calls in flight finish with what they started with.
  private backend: AuthBackend | undefined;
  private auth: AuthConfig;
  private backendTimeoutMs: number;
  private readonly sessions: SessionRegistry;
  private readonly metrics: EdgeMetrics;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly unavailableLog: RateLimitedLog;
  private readonly inflight = new Set<AbortController>();
  private closed = false;

  constructor(options: AuthorizerOptions) {
    this.backend = options.backend;
    this.auth = options.auth;
    this.backendTimeoutMs = options.backendTimeoutMs;
    this.sessions = options.sessions;
    this.metrics = options.metrics;
    this.log = options.log;
    this.now = options.now ?? Date.now;
    this.unavailableLog = new RateLimitedLog(UNAVAILABLE_LOG_INTERVAL_MS, this.now);
  }

  get defaultAction(): DefaultAction {
    return this.auth.defaultAction;
  }

  /**
   * The decision for a request of `session`: synchronous when the store
   * holds a usable one, a promise when the middleware must be asked.
   */
  authorize(session: Session, now: number): Decision | Promise<Decision> {
    const decision = session.decision;
    if (decision !== undefined) {
      // An ended session (kicked, denied) keeps its last decision: the caller refuses it, no one asks again.
      if (now < session.expiresAt || session.endReason !== undefined) return decision;
      // Expired allow still in the store (within auth.staleGrace): serve it, re-check behind.
      if (decision.allow && session.endReason === undefined) {
        this.recheck(session);
        return decision;
      }
    }
    if (session.pending !== undefined) return session.pending;
    return this.ask(session, 'new');
  }

  /** Starts a background re-check unless one is running. */
  recheck(session: Session): void {
    if (session.pending !== undefined || this.closed) return;
    void this.ask(session, 'update');
  }

  private ask(session: Session, requestType: 'new' | 'update'): Promise<Decision> {
    const pending = this.decide(session, requestType).then((decision) => {
      session.pending = undefined;
      this.sessions.apply(session, decision, requestType === 'update');
      return decision;
    });
    session.pending = pending;
    return pending;
  }

  /** Never rejects: a failure to decide becomes the default action's decision. */
  private async decide(session: Session, requestType: 'new' | 'update'): Promise<Decision> {
    if (this.backend === undefined) return this.fallback(session, REASON_NO_BACKEND);
    const request: AuthRequest = {
      sessionId: session.id,
      channel: session.channel,
      clientIp: session.clientIp,
      path: session.path,
      query: session.query,
      userAgent: session.userAgent,
      host: session.host,
      kind: session.kind,
      requestType,
      token: session.token,
      requestNumber: session.checks++,
      streamClients: this.sessions.table.onChannel(session.channel),
      totalClients: this.sessions.table.size,
      referer: session.referer,
    };
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new EdgeError('EDGE_ERR_BACKEND_TIMEOUT')), this.backendTimeoutMs);
    this.inflight.add(controller);
    const started = performance.now();
    try {
      const verdict = await this.backend.check(request, controller.signal);
      this.metrics.backendCall(this.backend.name, verdict.allow ? 'allow' : 'deny', (performance.now() - started) / 1000);
      return { ...verdict, source: 'backend', decidedAt: this.now() };
    } catch (err) {
      const code = err instanceof EdgeError ? err.code : 'EDGE_ERR_BACKEND_RESET';
      this.metrics.backendCall(this.backend.name, BACKEND_OUTCOME[code] ?? 'invalid', (performance.now() - started) / 1000);
      this.unavailableLog.maybe((suppressed) =>
        this.log.warn(
          { err: { code, message: (err as Error).message }, suppressed, defaultAction: this.auth.defaultAction, channel: session.channel },
          `middleware unavailable (${code}): applying default action "${this.auth.defaultAction}"`,
        ),
      );
      return this.fallback(session, REASON_UNAVAILABLE);
    } finally {
      clearTimeout(timer);
      this.inflight.delete(controller);
    }
  }

  /** The default action, for a middleware that is down or not configured. */
  private fallback(session: Session, reason: string): Decision {
    const decidedAt = this.now();
    const ttlMs = this.auth.unavailableTtlMs;
    const action = this.auth.defaultAction;
    if (action === 'allow' || (action === 'keep-granted' && session.granted)) {
      if (reason === REASON_UNAVAILABLE) this.metrics.failureModeAllowed.inc();
      // A granted session keeps what the middleware told us about it (name, user).
      const previous = session.decision?.allow === true ? session.decision : undefined;
      return { ...previous, allow: true, reason, source: 'default', decidedAt, ttlMs };
    }
    return { allow: false, reason, source: 'default', decidedAt, ttlMs };
  }

  /** SIGHUP: new decisions use the new backend and TTLs; the old backend closes once its calls are done. */
  reconfigure(next: { backend?: AuthBackend | undefined; auth: AuthConfig; backendTimeoutMs: number }): void {
    if ('backend' in next && next.backend !== this.backend) {
      const old = this.backend;
      this.backend = next.backend;
      void old?.close();
    }
    this.auth = next.auth;
    this.backendTimeoutMs = next.backendTimeoutMs;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const controller of this.inflight) controller.abort(new EdgeError('EDGE_ERR_BACKEND_RESET', 'edge shutting down'));
    await this.backend?.close();
  }
}
