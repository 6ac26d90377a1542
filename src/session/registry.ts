/**
 * Session identity and lifecycle.
 *
 * Identity: a request belongs to a live session when it carries that
 * session's marker for the same channel, or when it has the same channel,
 * token, client IP and User-Agent as a live session (a player reloading the
 * original URL, an MPEG-TS reconnect: Flussonic keys sessions the same way,
 * PROTOCOLS §5). Anything else (no marker, an unknown, expired, tampered or
 * foreign-channel marker) opens a new session, which the middleware decides.
 *
 * Lifecycle: a session lives in the store (its decision, its marker) for as
 * long as its decision holds. It is *open* (in the table, counted against the
 * per-user limits) while it is used: an HLS session until it has been idle
 * for session.idleTimeout, an MPEG-TS session while its connection is up. A
 * session that closed that way can be resumed while its decision holds (a
 * paused player, a reconnect). A session that is *ended* (a deny from a
 * re-check, a kick, X-Unique, the limit policy) stays in the store as a
 * tombstone: its marker answers 403 until it would have expired anyway.
 */
import type { Logger } from 'pino';
import type { Decision } from '../auth/types.js';
import type { AuthConfig, LimitsConfig } from '../config/schema.js';
import type { EdgeMetrics, SessionCloseReason } from '../metrics/metrics.js';
import type { CloseNotifier } from './close-notifier.js';
import type { FleetEnd, FleetSessionView, FleetState } from './fleet.js';
import { Interner, flatCopy } from './intern.js';
import { SESSION_ID_LENGTH, Session, SessionIds, isSameJoin, isWellFormedSessionId, joinKeyOf, type Closable, type SessionOrigin } from './session.js';
import { markerSessionId, type MarkerClaims, type MarkerKeys } from './marker.js';
import { SoloFleet } from './solo.js';
import type { SessionStore } from './store.js';
import { SessionTable, viewOf } from './table.js';

/** Why a session left the table. Bounded: these are metric label values. */
export type CloseReason = SessionCloseReason;

/** Reasons that end a session for good (its marker is refused afterwards). */
const ENDING: ReadonlySet<CloseReason> = new Set(['kicked', 'denied', 'unique', 'limit']);

/**
 * What a tombstone of a session held by another edge is made of: the fleet
 * told this edge the session ended (session/fleet.ts `onEnd`), and all it
 * knows is the ID. Its marker is refused here whatever channel it names.
 */
const ELSEWHERE: SessionOrigin = { channel: '', kind: 'hls', clientIp: '', userAgent: '', host: '', path: '', query: '', token: undefined, referer: '' };
/** No join key hashes to it (joinKeyOf is never negative): a remote tombstone takes no join slot. */
const NO_JOIN_KEY = -1;
/** A remote tombstone's decision: one, so that its marker is refused from the store and the middleware is never asked. */
const ENDED_ELSEWHERE: Decision = Object.freeze({ allow: false, reason: 'ended_elsewhere', source: 'rule', decidedAt: 0 });

/** A holder re-tells the fleet about an end only when its own tombstone outlives the fleet's by more than this. */
const TOMBSTONE_SLACK_MS = 1000;

/** Where a kick through the admin API found the session. */
export type KickResult = 'kicked' | 'ended' | 'unknown';

export interface SessionRegistryOptions {
  readonly store: SessionStore;
  readonly auth: AuthConfig;
  readonly limits: LimitsConfig;
  readonly idleTimeoutMs: number;
  /** session.maxStreams: open MPEG-TS connections per session; one more closes the oldest. 0 or unset = no limit. */
  readonly maxStreamsPerSession?: number;
  readonly log: Logger;
  readonly metrics: EdgeMetrics;
  readonly notifier?: CloseNotifier;
  /**
   * What the fleet shares (session/fleet.ts): limits, the session table, ends.
   * Default: a fleet of one (session/solo.ts), today's single-process behaviour.
   */
  readonly fleet?: FleetState;
  /** The table of open sessions, when the fleet was built on it (default: a new one). */
  readonly table?: SessionTable;
  /** Called when a session holding only open streams reaches its decision's expiry. */
  readonly onExpiry: (session: Session) => void;
  /** With session.secret: markers are signed, and a valid marker of another edge rebuilds its session here. */
  readonly markers?: MarkerKeys;
  readonly now?: () => number;
}

export class SessionRegistry {
  readonly store: SessionStore;
  readonly table: SessionTable;
  readonly fleet: FleetState;
  /** New sessions waiting for the fleet's word on their user's limit: a second request of one shares the wait. */
  private readonly admitting = new Map<Session, Promise<boolean>>();
  /** Shared copies of the strings many sessions have in common (intern.ts). */
  private readonly strings = new Interner();
  private readonly ids = new SessionIds();
  private options: SessionRegistryOptions;
  private readonly now: () => number;
  private sweeper: NodeJS.Timeout;

  constructor(options: SessionRegistryOptions) {
    this.options = options;
    this.store = options.store;
    this.table = options.table ?? new SessionTable();
    this.fleet = options.fleet ?? new SoloFleet('local', this.table);
    this.now = options.now ?? Date.now;
    this.sweeper = this.startSweeper();
    this.fleet.onEnd((end) => this.endedElsewhere(end));
  }

  /** Idle HLS sessions are found by a sweep, not a timer per session: one timer for the whole table. */
  private startSweeper(): NodeJS.Timeout {
    const timer = setInterval(() => this.sweepIdle(), Math.max(50, Math.min(1000, this.options.idleTimeoutMs / 4)));
    timer.unref();
    return timer;
  }

  /** SIGHUP: TTLs, limits and the idle timeout apply from now on; open sessions stay open. */
  reconfigure(next: Pick<SessionRegistryOptions, 'auth' | 'limits' | 'idleTimeoutMs' | 'maxStreamsPerSession'>): void {
    this.options = { ...this.options, ...next };
    clearInterval(this.sweeper);
    this.sweeper = this.startSweeper();
  }

  /**
   * The session a marker names, if it is one of ours and for this channel;
   * with signed markers, the claims of a valid one this process does not
   * hold (the caller adopts it with the request's facts: `adopt`). Local
   * first: a marker this process issued is recognised by string equality,
   * no crypto; only a marker it has not seen is verified. The tombstone of
   * a session another edge of the fleet held matches any channel: an ended
   * session's marker is refused everywhere.
   */
  byMarker(marker: string, channel: string): Session | MarkerClaims | undefined {
    const keys = this.options.markers;
    if (keys === undefined || marker.length === SESSION_ID_LENGTH) {
      if (!isWellFormedSessionId(marker)) return undefined;
      const session = this.store.get(marker);
      return session !== undefined && (session.channel === channel || isElsewhere(session)) ? session : undefined;
    }
    const id = markerSessionId(marker);
    if (id === undefined) return undefined;
    const held = this.store.get(id);
    if (held !== undefined && isElsewhere(held)) return held;
    if (held !== undefined && held.marker === marker) return held.channel === channel ? held : undefined;
    const verdict = keys.verify(marker);
    if (!verdict.ok || verdict.claims.channel !== channel || verdict.claims.sessionId !== id) return undefined;
    // An older marker of a session held here (issued before its last re-check), or a tombstone: the session decides.
    if (held !== undefined) return held.channel === channel ? held : undefined;
    // Past its expiry and the stale grace, a marker is no pass: the request is a new session (the rules of today).
    if (verdict.claims.expiresAt * 1000 + this.options.auth.staleGraceMs <= this.now()) return undefined;
    return verdict.claims;
  }

  /**
   * A session issued by another edge, rebuilt from its verified marker
   * without asking the middleware: its decision holds until the marker's
   * expiry, then it is re-checked the way the issuing edge would, with the
   * original path and query (the token) the marker carries. The client's
   * address, User-Agent, Host and Referer are this request's.
   */
  adopt(claims: MarkerClaims, marker: string, facts: Pick<SessionOrigin, 'kind' | 'clientIp' | 'userAgent' | 'host' | 'referer' | 'token'>, now: number): Session {
    const origin: SessionOrigin = { channel: claims.channel, kind: facts.kind, clientIp: facts.clientIp, userAgent: facts.userAgent, host: facts.host, path: claims.path, query: claims.query, token: facts.token, referer: facts.referer };
    const session = new Session(claims.sessionId, this.compact(origin), now);
    const decidedAt = claims.issuedAt * 1000;
    const user = claims.userId === '' ? undefined : claims.userId;
    session.decision = this.stored({
      allow: true,
      reason: 'marker',
      source: 'marker',
      decidedAt,
      ttlMs: Math.max(0, claims.expiresAt * 1000 - decidedAt),
      sessionName: user,
      userId: user,
      maxSessions: claims.maxSessions === 0 ? undefined : claims.maxSessions,
      unique: claims.unique ? true : undefined,
    });
    session.expiresAt = claims.expiresAt * 1000;
    session.granted = true;
    session.marker = marker;
    this.store.put(session, Math.max(0, session.expiresAt - now) + this.options.auth.staleGraceMs);
    this.options.metrics.sessionAdopted();
    return session;
  }

  /** With session.secret: a marker for `session` as its current decision stands (re-signed at each decision). */
  private sign(session: Session, decision: Decision): void {
    const keys = this.options.markers;
    if (keys === undefined) return;
    const user = decision.userId ?? decision.sessionName;
    const signed = keys.sign({
      sessionId: session.id,
      channel: session.channel,
      issuedAt: Math.floor(decision.decidedAt / 1000),
      expiresAt: Math.ceil(session.expiresAt / 1000),
      unique: decision.unique === true,
      maxSessions: decision.maxSessions ?? 0,
      userId: user ?? '',
      path: session.path,
      query: session.query,
    });
    // Fields too long for a marker (a 64 KiB query): the session stays this edge's own (its plain ID).
    session.marker = signed ?? session.id;
  }

  /** The live session a request with this origin joins (same channel, token, IP, User-Agent), if this process holds one. */
  findJoin(origin: SessionOrigin): Session | undefined {
    const existing = this.store.getByJoinKey(joinKeyOf(origin));
    return existing !== undefined && isSameJoin(existing, origin) ? existing : undefined;
  }

  /** Joins the live session with the same join key, or opens a new one. */
  joinOrOpen(origin: SessionOrigin, now: number): Session {
    const joinKey = joinKeyOf(origin);
    const existing = this.store.getByJoinKey(joinKey);
    if (existing !== undefined && isSameJoin(existing, origin)) return existing;
    const session = new Session(this.ids.next(), this.compact(origin), now, joinKey);
    // Until its first decision lands, a session lives as long as a middleware call may take.
    this.store.put(session, this.options.auth.staleGraceMs);
    return session;
  }

  /**
   * What a stored session keeps of the request that opened it: what a
   * re-check sends, as strings that point into nothing (a sliced `req.url`
   * or a header kept the whole request alive, item 6), the repeated ones
   * shared.
   */
  private compact(origin: SessionOrigin): SessionOrigin {
    const strings = this.strings;
    const query = flatCopy(origin.query);
    const token = origin.token;
    const at = token === undefined ? -1 : query.indexOf(token);
    return {
      channel: strings.intern(origin.channel),
      kind: origin.kind,
      clientIp: flatCopy(origin.clientIp),
      userAgent: strings.intern(origin.userAgent),
      host: strings.intern(origin.host),
      path: strings.intern(origin.path),
      query,
      // The token is part of the query: a slice of the copy costs no second copy.
      token: token === undefined ? undefined : at === -1 ? flatCopy(token) : query.slice(at, at + token.length),
      referer: strings.intern(origin.referer),
    };
  }

  /**
   * The decision as the session keeps it: one fixed shape, shared strings.
   * Decisions arrive built by object spread, which gives each object a hidden
   * class of its own in V8 (~200 bytes per stored session, measured with a
   * heap snapshot).
   */
  private stored(d: Decision): Decision {
    const strings = this.strings;
    return {
      allow: d.allow,
      reason: strings.intern(d.reason),
      source: d.source,
      decidedAt: d.decidedAt,
      ttlMs: d.ttlMs,
      location: d.location === undefined ? undefined : strings.intern(d.location),
      sessionName: d.sessionName === undefined ? undefined : strings.intern(d.sessionName),
      userId: d.userId === undefined ? undefined : strings.intern(d.userId),
      maxSessions: d.maxSessions,
      unique: d.unique,
      // Why (admin "why" view): small numbers and strings that already exist (a backend's name, a code).
      status: d.status,
      backend: d.backend,
      retryAfterS: d.retryAfterS,
      defaultAction: d.defaultAction,
      failure: d.failure,
    };
  }

  /** Records a decision on the session and sets how long the store keeps it. */
  apply(session: Session, d: Decision, isRecheck: boolean): void {
    const decision = this.stored(d);
    session.decision = decision;
    const ttlMs = this.ttlOf(decision);
    session.expiresAt = decision.decidedAt + ttlMs;
    if (session.endReason !== undefined) return; // kicked while the middleware was deciding
    if (decision.allow) {
      session.granted = true;
      this.sign(session, decision);
      this.store.put(session, ttlMs + this.options.auth.staleGraceMs);
      this.scheduleRecheck(session);
      // Its listing shows the new decision (and its marker, renewed); a pending session is published when it opens.
      if (session.active) this.fleet.publish(session);
      return;
    }
    if (isRecheck || session.active || session.streams.size > 0) {
      this.end(session, 'denied', decision.reason);
      return;
    }
    // A deny is remembered for its TTL: the marker and the join key get 403 from the store, not from the middleware.
    if (ttlMs > 0) this.store.put(session, ttlMs);
    else this.store.delete(session);
  }

  /**
   * A check the edge shed (auth/guarded.ts): no decision, nothing stored. A
   * session that never had a decision leaves the store (its viewer's next
   * request opens a fresh one and asks again). A granted one keeps its stale
   * decision and asks again at its next request; one that only holds open
   * streams sends none, so its timer asks again in `retryMs`.
   */
  shed(session: Session, isRecheck: boolean, retryMs: number): void {
    if (session.decision === undefined && !session.active && session.streams.size === 0) {
      this.store.delete(session);
      return;
    }
    if (isRecheck) this.scheduleRecheck(session, retryMs);
  }

  private ttlOf(decision: Decision): number {
    if (this.holdsForLife(decision)) return this.options.auth.maxTtlMs;
    if (decision.ttlMs !== undefined) return Math.min(decision.ttlMs, this.options.auth.maxTtlMs);
    return decision.allow ? this.options.auth.allowTtlMs : this.options.auth.denyTtlMs;
  }

  /**
   * Puts an allowed session in the table (first request, or resumed after
   * idling), applying the per-user limits (PROTOCOLS §2, §5): X-Unique ends
   * the user's other sessions; over X-Max-Sessions (or
   * limits.maxSessionsPerUser) the new one is refused or the oldest closed.
   * Returns false when the session is refused.
   *
   * In a fleet the limit is the fleet's: a promise while it answers (a
   * bounded wait on a request that already waited for the middleware), which
   * every request of the session shares. Without a limit, or while the fleet
   * is unreachable, the answer is immediate and the limits are this edge's.
   */
  activate(session: Session): boolean | Promise<boolean> {
    if (session.active) return true;
    const d = session.decision;
    const user = d?.userId ?? d?.sessionName;
    const key = user === undefined ? undefined : this.options.limits.soft ? `${user}\n${session.channel}` : user;
    // No limit (the usual case): the user index is not even looked at; the table's add is O(1) (item 9).
    const max = d?.maxSessions ?? this.options.limits.maxSessionsPerUser;
    const unique = d?.unique === true;
    if (key === undefined || (!unique && max <= 0)) return this.open(session, key);
    if (!this.fleet.connected) return this.activateLocally(session, key, max, unique);
    let admission = this.admitting.get(session);
    if (admission === undefined) {
      admission = this.fleet
        .admit({ userKey: key, sessionId: session.id, max, unique, policy: this.options.limits.policy, openedAt: session.openedAt, ttlMs: this.options.idleTimeoutMs })
        .catch(() => undefined)
        .then((answer) => {
          this.admitting.delete(session);
          if (session.active) return true; // opened locally meanwhile (the fleet went away during the wait)
          if (session.endReason !== undefined) {
            // Kicked while the fleet decided: it does not count.
            if (answer?.admitted === true) this.fleet.release(key, session.id);
            return false;
          }
          if (answer === undefined) return this.activateLocally(session, key, max, unique);
          if (!answer.admitted) return false;
          const reason: CloseReason = unique ? 'unique' : 'limit';
          for (const id of answer.end) this.endAnywhere(id, reason);
          return this.open(session, key);
        });
      this.admitting.set(session, admission);
    }
    return admission;
  }

  /** This edge's own limits: no fleet, or none reachable (then per edge). */
  private activateLocally(session: Session, key: string, max: number, unique: boolean): boolean {
    if (unique) {
      for (const other of [...this.table.ofUser(key)]) this.end(other, 'unique');
    } else if (this.table.countOfUser(key) >= max) {
      if (this.options.limits.policy === 'refuse') return false;
      // The user's sessions are kept oldest first: the first ones are those to close, no sort.
      let excess = this.table.countOfUser(key) - max + 1;
      const oldest: Session[] = [];
      for (const other of this.table.ofUser(key)) {
        oldest.push(other);
        if (--excess === 0) break;
      }
      for (const other of oldest) this.end(other, 'limit');
    }
    return this.open(session, key);
  }

  /** A session the fleet's limit closes, wherever it is: here (cut now), or on another edge (through the fleet). */
  private endAnywhere(id: string, reason: CloseReason): void {
    const local = this.store.get(id);
    if (local !== undefined && !isElsewhere(local)) {
      this.end(local, reason);
      return;
    }
    if (local !== undefined) return; // already ended elsewhere
    const end: FleetEnd = { sessionId: id, reason, untilMs: this.now() + this.remoteTombstoneMs() };
    this.fleet.end(end);
    this.rememberEnded(end);
  }

  /**
   * How long the tombstone of a session held by another edge lives when this
   * edge ends it (its decision's expiry is known only there): as long as an
   * allow holds before a re-check, plus the grace. The holding edge makes it
   * longer if its decision lasts longer (see endedElsewhere).
   */
  private remoteTombstoneMs(): number {
    const auth = this.options.auth;
    return (auth.recheck === 'never' ? auth.maxTtlMs : auth.allowTtlMs) + auth.staleGraceMs;
  }

  private open(session: Session, key: string | undefined): true {
    const d = session.decision;
    this.table.add(session, key);
    if (this.holdsForLife(d)) this.holdWhileOpen(session);
    // A session that was open before and comes back (an MPEG-TS reconnect, an HLS player back from
    // idling) is resumed, not opened again: one `session opened` per session, in the log and the counter.
    const resumed = session.activations > 0;
    session.activations++;
    session.activatedAt = resumed ? this.now() : session.openedAt;
    session.bytesAtActivation = session.bytes;
    if (resumed) this.options.metrics.sessionResumed();
    else this.options.metrics.sessionOpened();
    this.fleet.publish(session);
    // Built only when it is written: a new session on every request (scenario d) would pay for it at level warn.
    if (this.options.log.isLevelEnabled('info')) this.options.log.info(
      { session: session.tag, channel: session.channel, kind: session.kind, name: d?.sessionName ?? d?.userId, ip: session.clientIp, source: d?.source, ...(resumed && { resumes: session.activations - 1 }) },
      resumed ? 'session resumed' : 'session opened',
    );
    return true;
  }

  /**
   * Takes a session out of the table (idle, disconnected, evicted, shutdown); its decision stays usable.
   * The close reports this open period (`durationMs`, `bytes`: since `session opened` or `session
   * resumed`, i.e. one MPEG-TS connection) apart from the session's totals (`session*`).
   */
  deactivate(session: Session, reason: CloseReason): void {
    if (!this.table.remove(session)) return;
    this.fleet.unpublish(session.id);
    if (session.userKey !== undefined) this.fleet.release(session.userKey, session.id);
    this.options.metrics.sessionClosed(reason);
    const now = this.now();
    const figures = {
      durationMs: now - session.activatedAt,
      bytes: session.bytes - session.bytesAtActivation,
      sessionDurationMs: now - session.openedAt,
      sessionBytes: session.bytes,
      requests: session.requests,
      resumes: session.activations - 1,
    };
    if ((reason === 'idle' || reason === 'disconnected') && this.holdsForLife(session.decision)) this.keepResumable(session);
    if (this.options.log.isLevelEnabled('info')) this.options.log.info({ session: session.tag, channel: session.channel, kind: session.kind, reason, ...figures }, 'session closed');
    this.options.notifier?.notify({ event: 'close', reason, closedAt: new Date(now).toISOString(), ...viewOf(session), ...figures });
  }

  /**
   * Ends a session for good: its streams are cut, it leaves the table, and
   * it stays in the store as a tombstone so its marker gets 403 for as long
   * as it would otherwise have been valid.
   */
  end(session: Session, reason: CloseReason, detail?: string): void {
    this.finish(session, reason, detail, 0, true);
  }

  /**
   * `end`, told to the fleet (`tell`) or not (an end the fleet told us);
   * the tombstone lives at least `atLeastMs` (the fleet's word on it).
   */
  private finish(session: Session, reason: CloseReason, detail: string | undefined, atLeastMs: number, tell: boolean): void {
    if (session.endReason !== undefined) return;
    session.endReason = detail ?? reason;
    session.destroyStreams();
    this.unwatch(session);
    this.deactivate(session, reason);
    if (ENDING.has(reason)) {
      const remaining = Math.max(session.expiresAt + this.options.auth.staleGraceMs - this.now(), this.options.auth.denyTtlMs, atLeastMs);
      this.store.put(session, remaining);
      // Every edge refuses its marker (and cuts it, should another hold a stream of it), until it would have expired anyway.
      if (tell || remaining > atLeastMs + TOMBSTONE_SLACK_MS) this.fleet.end({ sessionId: session.id, reason: detail ?? reason, untilMs: this.now() + remaining });
    }
  }

  /**
   * Another edge ended a session (a kick through its admin API, a deny from
   * its re-check, a limit): held here, it is ended (streams cut); otherwise a
   * tombstone keeps its marker refused here too. Called for every end the
   * fleet announces, and for a `findMarker` answer `{ ended }` (a marker of a
   * session this edge never saw, ended before it asked).
   */
  endedElsewhere(end: FleetEnd): void {
    const remaining = end.untilMs - this.now();
    if (remaining <= 0) return;
    const reason: CloseReason = ENDING.has(end.reason as CloseReason) ? (end.reason as CloseReason) : 'denied';
    const detail = reason === 'denied' && end.reason !== 'denied' ? end.reason : undefined;
    const session = this.store.get(end.sessionId);
    if (session === undefined) {
      this.rememberEnded(end);
      return;
    }
    if (session.endReason === undefined) {
      this.finish(session, reason, detail, remaining, false);
      return;
    }
    // Already a tombstone here: it lives as long as the longest word on it.
    if (isElsewhere(session)) this.store.put(session, remaining);
  }

  /** The tombstone of a session this edge never held. */
  private rememberEnded(end: FleetEnd): void {
    const remaining = end.untilMs - this.now();
    if (remaining <= 0) return;
    const tombstone = new Session(end.sessionId, ELSEWHERE, this.now(), NO_JOIN_KEY);
    tombstone.endReason = end.reason;
    tombstone.decision = ENDED_ELSEWHERE;
    // Granted tier: only a session some edge allowed can be ended, as for a tombstone of our own.
    tombstone.granted = true;
    this.store.put(tombstone, remaining);
  }

  // --- auth.recheck never (operator issue, part 3) -------------------------------------------------
  // For middlewares whose tokens die seconds after issue and that send no TTL header: a re-check
  // would send a dead token and end the session mid-play. Under `never` the first middleware (or rule)
  // allow holds while the session is used: in the store for --max-ttl while it is open (held again
  // when that runs out), and for --stale-grace once it closed (idle, disconnected), so a paused player
  // or a reconnect resumes it and a URL found again an hour later does not. A default-action decision
  // is no answer: it is asked again as under `ttl`. Kicks, limits and deny TTLs are unchanged.

  /** True when `decision` is one the session keeps for its life (`--recheck never`). */
  holdsForLife(decision: Decision | undefined): boolean {
    return this.options.auth.recheck === 'never' && decision?.allow === true && decision.source !== 'default';
  }

  /** A held decision reached its expiry (--max-ttl, or a TTL set under `ttl` before a reload): held again, no re-check. */
  holdAgain(session: Session): void {
    session.expiresAt = this.now() + this.options.auth.maxTtlMs;
    this.holdWhileOpen(session);
    this.scheduleRecheck(session);
  }

  private holdWhileOpen(session: Session): void {
    this.store.put(session, Math.max(0, session.expiresAt - this.now()) + this.options.auth.staleGraceMs);
  }

  private keepResumable(session: Session): void {
    if (session.endReason === undefined && this.store.get(session.id) === session) this.store.put(session, this.options.auth.staleGraceMs);
  }

  /** Admin kick: true when the ID named a live session of this edge. */
  kick(id: string): boolean {
    const session = isWellFormedSessionId(id) ? this.store.get(id) : undefined;
    if (session === undefined || session.endReason !== undefined) return false;
    this.end(session, 'kicked');
    return true;
  }

  /**
   * Admin kick on any edge of the fleet: this edge's session, or one another
   * edge holds (found through the fleet, ended everywhere through it).
   */
  async kickAnywhere(id: string): Promise<KickResult> {
    if (!isWellFormedSessionId(id)) return 'unknown';
    const local = this.store.get(id);
    if (local !== undefined && !isElsewhere(local)) {
      if (local.endReason !== undefined) return 'ended';
      this.end(local, 'kicked');
      return 'kicked';
    }
    if (local !== undefined) return 'ended';
    const found = await this.fleet.findMarker({ sessionId: id });
    if (found === undefined) return 'unknown';
    if ('ended' in found) return 'ended';
    const end: FleetEnd = { sessionId: id, reason: 'kicked', untilMs: this.untilOf(found.session) };
    this.fleet.end(end);
    this.rememberEnded(end);
    this.options.log.info({ session: id.slice(0, 6), channel: found.session.channel, edge: found.session.edge }, 'session kicked on another edge');
    return 'kicked';
  }

  /** A session of this edge by ID (open, closed or ended), or what the fleet knows of one held elsewhere. */
  async find(id: string): Promise<{ readonly view: FleetSessionView } | { readonly ended: string } | undefined> {
    if (!isWellFormedSessionId(id)) return undefined;
    const local = this.table.get(id) ?? this.store.get(id);
    if (local !== undefined && !isElsewhere(local)) return { view: { ...viewOf(local), edge: this.fleet.nodeName } };
    const found = await this.fleet.findMarker({ sessionId: id });
    if (found !== undefined && 'session' in found) return { view: found.session };
    if (found !== undefined) return { ended: found.ended.reason };
    return local === undefined ? undefined : { ended: local.endReason ?? 'ended' };
  }

  /** When the marker of a session seen through the fleet stops working: its decision's expiry plus the grace. */
  private untilOf(view: FleetSessionView): number {
    const expires = view.decision.expiresAt === null ? NaN : Date.parse(view.decision.expiresAt);
    const now = this.now();
    return Number.isFinite(expires) ? Math.max(expires + this.options.auth.staleGraceMs, now + this.options.auth.denyTtlMs) : now + this.remoteTombstoneMs();
  }

  /**
   * An MPEG-TS response now belongs to the session; returns the function that
   * detaches it. Past session.maxStreams the session's oldest stream is closed:
   * a session is one player (same token, IP, User-Agent, channel), so a new
   * connection from it most likely replaces a dead or dying one (a reconnect),
   * and refusing it would lock the player out until the old one times out;
   * either way one token cannot hold more than the cap.
   */
  attachStream(session: Session, stream: Closable): () => void {
    session.kind = 'mpegts';
    const max = this.options.maxStreamsPerSession ?? 0;
    if (max > 0) {
      // A Set iterates in insertion order: oldest first.
      for (const old of session.streams) {
        if (session.streams.size < max) break;
        session.deleteStream(old);
        old.destroy();
        this.options.metrics.streamLimited('session');
        this.options.log.debug({ session: session.tag, channel: session.channel, max }, 'session.maxStreams reached: oldest stream closed');
      }
    }
    session.addStream(stream);
    this.scheduleRecheck(session);
    return () => {
      if (!session.deleteStream(stream)) return;
      if (session.streams.size === 0) {
        this.unwatch(session);
        this.deactivate(session, 'disconnected');
      }
    };
  }

  /** A session evicted from the full store leaves the table too. */
  evicted(session: Session): void {
    this.deactivate(session, 'evicted');
  }

  private sweepIdle(): void {
    const cutoff = this.now() - this.options.idleTimeoutMs;
    for (const session of this.table.values()) {
      if (session.streams.size === 0 && session.lastSeenAt < cutoff) this.deactivate(session, 'idle');
    }
  }

  /**
   * A session that only holds open streams sends no requests that would
   * notice its decision expiring: a timer does, and asks for a re-check.
   */
  private scheduleRecheck(session: Session, delayMs = session.expiresAt - this.now()): void {
    if (session.streams.size === 0 || session.endReason !== undefined) return;
    if (session.recheckTimer !== undefined) clearTimeout(session.recheckTimer);
    // setTimeout holds at most 2^31-1 ms (~24.8 days); auth.maxTtl stays below that anyway.
    const delay = Math.min(Math.max(0, delayMs), 2 ** 31 - 1);
    session.recheckTimer = setTimeout(() => {
      session.recheckTimer = undefined;
      if (session.streams.size > 0 && session.endReason === undefined) this.options.onExpiry(session);
    }, delay);
    session.recheckTimer.unref();
  }

  private unwatch(session: Session): void {
    if (session.recheckTimer !== undefined) clearTimeout(session.recheckTimer);
    session.recheckTimer = undefined;
  }

  /** Shutdown: cuts every open stream and closes every open session (the fleet hears they left). */
  closeAll(): void {
    clearInterval(this.sweeper);
    for (const session of [...this.table.values()]) {
      session.destroyStreams();
      this.unwatch(session);
      this.deactivate(session, 'shutdown');
    }
  }
}

/** A tombstone of a session another edge of the fleet held (see ELSEWHERE). */
export function isElsewhere(session: Session): boolean {
  return session.joinKey === NO_JOIN_KEY;
}
