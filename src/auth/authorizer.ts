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
 * - When the edge could not even ask (the middleware's queue full or too
 *   slow: auth/guarded.ts), that is the edge's own congestion, not an outage:
 *   no decision is made and the default action does NOT apply. A new session
 *   gets 503 with Retry-After and is forgotten (its viewer's next request asks
 *   again); a granted one keeps its stale decision and asks again later.
 */
import type { Logger } from 'pino';
import { EdgeError } from '../errors.js';
import type { AuthConfig, DefaultAction } from '../config/schema.js';
import type { EdgeMetrics } from '../metrics/metrics.js';
import type { LocalRules, RuleResult } from './rules.js';
import { verifySecureToken, type SecureTokenResult } from './securetoken.js';
import { CallCancelled, CallShed } from './guarded.js';
import type { Session } from '../session/session.js';
import type { SessionRegistry } from '../session/registry.js';
import type { AuthBackend, AuthRequest, Decision } from './types.js';
import { RateLimitedLog } from '../log.js';
import { redactText } from '../redact.js';

/** One log line per this interval while the middleware stays unavailable (or the edge keeps shedding). */
const UNAVAILABLE_LOG_INTERVAL_MS = 10_000;

export const REASON_UNAVAILABLE = 'middleware_unavailable';
export const REASON_SHED = 'edge_overloaded';
export const REASON_NO_BACKEND = 'no_backend_configured';

/** What decides before any middleware is asked (reloadable as a whole). */
export interface LocalPolicy {
  readonly rules: LocalRules | undefined;
  readonly securetoken: { readonly secret: string | undefined; readonly bindIp: boolean };
}

export interface AuthorizerOptions {
  /** The middleware(s), already guarded (timeout, concurrency, metrics): see auth/backends/index.ts. */
  readonly backend: AuthBackend | undefined;
  readonly local?: LocalPolicy;
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
  private local: LocalPolicy | undefined;
  private auth: AuthConfig;
  private backendTimeoutMs: number;
  private readonly sessions: SessionRegistry;
  private readonly metrics: EdgeMetrics;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly unavailableLog: RateLimitedLog;
  private readonly shedLog: RateLimitedLog;
  private readonly inflight = new Set<AbortController>();
  /** Backends replaced by a reload, until their calls are over: shutdown cancels them too. */
  private readonly retiring = new Set<AuthBackend>();
  private closed = false;
  /** The one-shot token warning is logged once per process. */
  private oneShotWarned = false;

  constructor(options: AuthorizerOptions) {
    this.backend = options.backend;
    this.local = options.local;
    this.auth = options.auth;
    this.backendTimeoutMs = options.backendTimeoutMs;
    this.sessions = options.sessions;
    this.metrics = options.metrics;
    this.log = options.log;
    this.now = options.now ?? Date.now;
    this.unavailableLog = new RateLimitedLog(UNAVAILABLE_LOG_INTERVAL_MS, this.now);
    this.shedLog = new RateLimitedLog(UNAVAILABLE_LOG_INTERVAL_MS, this.now);
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

  /** Starts a background re-check unless one is running; under `--recheck never` a held allow is held again instead. */
  recheck(session: Session): void {
    if (session.pending !== undefined || this.closed) return;
    if (this.sessions.holdsForLife(session.decision)) {
      this.sessions.holdAgain(session);
      return;
    }
    void this.ask(session, 'update');
  }

  private ask(session: Session, requestType: 'new' | 'update'): Promise<Decision> {
    const previous = session.decision;
    const pending = this.decide(session, requestType).then((decision) => {
      session.pending = undefined;
      if (decision.source === 'shed') this.sessions.shed(session, requestType === 'update', (decision.retryAfterS ?? 1) * 1000);
      else {
        if (requestType === 'update') this.watchOneShot(session, previous, decision);
        this.sessions.apply(session, decision, requestType === 'update');
        // The stored (compacted) decision: later requests of the session get this very object.
        if (session.decision !== undefined && session.decision.decidedAt === decision.decidedAt) return session.decision;
      }
      return decision;
    });
    session.pending = pending;
    return pending;
  }

  /**
   * Local rules first (documented order in auth/rules.ts), then an Astra
   * securetoken, then the middleware. Never rejects: a failure to decide
   * becomes the default action's decision.
   */
  private async decide(session: Session, requestType: 'new' | 'update'): Promise<Decision> {
    const local = decideLocally(this.local, session, this.backend !== undefined, this.now());
    if (local.decided !== undefined) return { ...local.decided, source: 'rule', decidedAt: this.now() };
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
    const backend = this.backend;
    // A backend that bounds its callers (GuardedBackend, and several of them) needs no timer or signal
    // of ours per call: it settles within its own bound, and close() cancels it (backend.cancel()).
    const controller = backend.boundsCallers === true ? undefined : new AbortController();
    const timer = controller === undefined ? undefined : setTimeout(() => controller.abort(new EdgeError('EDGE_ERR_BACKEND_TIMEOUT')), this.backendTimeoutMs);
    if (controller !== undefined) this.inflight.add(controller);
    try {
      const verdict = await backend.check(request, controller?.signal);
      // Several middlewares name the one that decided (auth/parallel.ts); one is the backend itself.
      return { backend: backend.name, ...verdict, source: 'backend', decidedAt: this.now() };
    } catch (err) {
      // Shutting down: not an outage, nothing to log.
      if (this.closed) return this.fallback(session, REASON_UNAVAILABLE);
      if (err instanceof CallShed) return this.shed(session, requestType, err);
      const code = err instanceof EdgeError ? err.code : 'EDGE_ERR_BACKEND_RESET';
      this.unavailableLog.maybe((suppressed) =>
        this.log.warn(
          { err: { code, message: redactText((err as Error).message) }, suppressed, defaultAction: this.auth.defaultAction, channel: session.channel },
          `middleware unavailable (${code}): check --backend and the middleware; meanwhile ${defaultActionMeans(this.auth.defaultAction)}`,
        ),
      );
      return this.fallback(session, REASON_UNAVAILABLE, code);
    } finally {
      if (controller !== undefined) {
        clearTimeout(timer);
        this.inflight.delete(controller);
      }
    }
  }

  /**
   * One-shot tokens (operator issue, part 3): a middleware that issues tokens valid for seconds (as
   * Ministra does) and sends no TTL header gets re-checked at --allow-ttl with a token that is dead by
   * then, and every session ends at its first re-check. The sign: the session's first re-check, with
   * the same token, denied by the middleware that allowed it without a TTL header (X-AuthDuration,
   * Cache-Control max-age), while the viewer plays. Logged once per process, with the fix.
   */
  private watchOneShot(session: Session, previous: Decision | undefined, decision: Decision): void {
    if (this.oneShotWarned || decision.allow || decision.source !== 'backend') return;
    if (previous?.allow !== true || previous.source !== 'backend' || previous.ttlMs !== undefined || session.checks !== 2) return;
    this.oneShotWarned = true;
    this.log.warn(
      { channel: session.channel, reason: decision.reason, allowedForMs: decision.decidedAt - previous.decidedAt, allowTtlMs: this.auth.allowTtlMs, recheck: this.auth.recheck },
      'a session allowed by the middleware without a TTL header was denied at its first re-check, same token: the middleware looks like it issues one-shot tokens (valid for seconds, as Ministra\'s), and every session will end at its first re-check. Fix: --recheck never (the first answer holds while the session is used), or, for Ministra, --backend-type stalker (its X-AuthDuration sets how long an answer holds)',
    );
  }

  /** No decision: the edge could not ask the middleware in time (auth/guarded.ts). Never the default action. */
  private shed(session: Session, requestType: 'new' | 'update', err: CallShed): Decision {
    this.metrics.checkShed(requestType === 'new' ? 'new' : 'recheck');
    this.shedLog.maybe((suppressed) =>
      this.log.warn(
        { err: { code: err.code, message: err.message }, suppressed, channel: session.channel },
        'middleware queue full (EDGE_ERR_OVERLOADED): new sessions get 503 with Retry-After and granted ones keep playing; the middleware was not asked, so no default action applies. If the middleware can take more, raise --backend-concurrency',
      ),
    );
    return { allow: false, reason: REASON_SHED, source: 'shed', decidedAt: this.now(), retryAfterS: err.retryAfterS };
  }

  /**
   * The default action, for a middleware that is down (`failure`: its EDGE_ERR_BACKEND_* code) or
   * not configured. Counted per request served on it (edge_auth_failure_mode_allowed_total), by
   * the request handler: not here.
   */
  private fallback(session: Session, reason: string, failure?: string): Decision {
    const decidedAt = this.now();
    const ttlMs = this.auth.unavailableTtlMs;
    const action = this.auth.defaultAction;
    if (action === 'allow' || (action === 'keep-granted' && session.granted)) {
      // A granted session keeps what the middleware told us about it (name, user), not why it decided then.
      const previous = session.decision?.allow === true ? session.decision : undefined;
      return { ...previous, allow: true, reason, source: 'default', decidedAt, ttlMs, defaultAction: action, failure };
    }
    return { allow: false, reason, source: 'default', decidedAt, ttlMs, defaultAction: action, ...(failure !== undefined && { failure }) };
  }

  /** SIGHUP: new decisions use the new backend and TTLs; the old backend closes once its calls are done. */
  reconfigure(next: { backend?: AuthBackend | undefined; local?: LocalPolicy; auth: AuthConfig; backendTimeoutMs: number }): void {
    if (next.local !== undefined) this.local = next.local;
    if ('backend' in next && next.backend !== this.backend) {
      const old = this.backend;
      this.backend = next.backend;
      if (old !== undefined) {
        this.retiring.add(old);
        void old.close().finally(() => this.retiring.delete(old));
      }
    }
    this.auth = next.auth;
    this.backendTimeoutMs = next.backendTimeoutMs;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const controller of this.inflight) controller.abort(new CallCancelled('edge shutting down'));
    for (const old of this.retiring) old.cancel?.();
    this.backend?.cancel?.();
    await this.backend?.close();
  }
}

/** The local policy's answer for a new session, step by step. */
export interface LocalOutcome {
  /** The first local rule that matched (auth/rules.ts), or undefined. */
  readonly rule: RuleResult;
  /** The securetoken check, when securetoken is configured and no rule decided. */
  readonly securetoken: SecureTokenResult | undefined;
  /** What decides, or undefined: the middleware is asked (or, with none, the default action applies). */
  readonly decided: { readonly allow: boolean; readonly reason: string; readonly ttlMs?: number } | undefined;
}

const NOTHING_LOCAL: LocalOutcome = Object.freeze({ rule: undefined, securetoken: undefined, decided: undefined });

/**
 * Local rules first (documented order in auth/rules.ts), then an Astra
 * securetoken. Pure: the Authorizer and `astra-auth-edge check` both decide
 * with it, so the check shows exactly what the edge does.
 */
export function decideLocally(
  local: LocalPolicy | undefined,
  input: { readonly clientIp: string; readonly token: string | undefined; readonly userAgent: string; readonly channel: string },
  hasBackend: boolean,
  now: number,
): LocalOutcome {
  if (local === undefined) return NOTHING_LOCAL;
  const rule = local.rules?.evaluate(input);
  if (rule !== undefined) return { rule, securetoken: undefined, decided: rule };
  if (local.securetoken.secret === undefined) return NOTHING_LOCAL;
  const securetoken = verifySecureToken(input.token, input, { secret: local.securetoken.secret, bindIp: local.securetoken.bindIp }, now);
  // A token that is no securetoken at all goes on to the middleware, if there is one.
  const passOn = securetoken.reason === 'securetoken_malformed' && hasBackend;
  return { rule: undefined, securetoken, decided: passOn ? undefined : securetoken };
}

/** What the default action does, in the words an operator reads in a log line. */
export function defaultActionMeans(action: DefaultAction): string {
  switch (action) {
    case 'allow':
      return 'the edge allows viewers by default (--default-action allow)';
    case 'deny':
      return 'the edge refuses new viewers and ends every playing session for good at its next re-check (--default-action deny; keep-granted would keep them playing)';
    case 'keep-granted':
      return 'granted sessions keep playing and new viewers are refused (--default-action keep-granted)';
  }
}
