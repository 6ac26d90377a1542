/**
 * Session identity: which session a request belongs to, and what happens to
 * a session when a decision lands on it.
 *
 * A request belongs to a live session when it carries that session's marker
 * for the same channel, or when it has the same channel, token, client IP and
 * User-Agent as a live session (a player reloading the original URL, an
 * MPEG-TS reconnect: Flussonic keys sessions the same way, PROTOCOLS §5).
 * Anything else (no marker, an unknown, expired, tampered or foreign-channel
 * marker) opens a new session, which the middleware decides.
 */
import type { Logger } from 'pino';
import type { Decision } from '../auth/types.js';
import type { SessionStore } from '../cache/session-store.js';
import type { AuthConfig } from '../config/schema.js';
import { Session, isWellFormedSessionId, newSessionId, type Closable, type SessionOrigin } from './session.js';

export interface SessionRegistryOptions {
  readonly store: SessionStore;
  readonly auth: AuthConfig;
  readonly log: Logger;
  /** Called when a session holding only open streams reaches its decision's expiry. */
  readonly onExpiry: (session: Session) => void;
}

export class SessionRegistry {
  readonly store: SessionStore;
  private readonly auth: AuthConfig;
  private readonly log: Logger;
  private readonly onExpiry: (session: Session) => void;
  private readonly watched = new Set<Session>();

  constructor(options: SessionRegistryOptions) {
    this.store = options.store;
    this.auth = options.auth;
    this.log = options.log;
    this.onExpiry = options.onExpiry;
  }

  /** The live session a marker names, if it is one of ours and for this channel. */
  byMarker(marker: string, channel: string): Session | undefined {
    if (!isWellFormedSessionId(marker)) return undefined;
    const session = this.store.get(marker);
    return session !== undefined && session.channel === channel ? session : undefined;
  }

  /** Joins the live session with the same join key, or opens a new one. */
  joinOrOpen(origin: SessionOrigin, now: number): Session {
    const existing = this.store.getByJoinKey(origin.joinKey);
    if (existing !== undefined && existing.channel === origin.channel) return existing;
    const session = new Session(newSessionId(), origin, now);
    // Until its first decision lands, a session lives as long as a middleware call may take.
    this.store.put(session, this.auth.staleGraceMs);
    return session;
  }

  /** Records a decision on the session and sets how long the store keeps it. */
  apply(session: Session, decision: Decision, isRecheck: boolean): void {
    session.decision = decision;
    const ttlMs = this.ttlOf(decision);
    session.expiresAt = decision.decidedAt + ttlMs;
    if (decision.allow) {
      session.granted = true;
      if (session.endReason === undefined) this.store.put(session, ttlMs + this.auth.staleGraceMs);
      this.scheduleRecheck(session);
      return;
    }
    if (isRecheck || session.streams.size > 0) this.end(session, decision.reason);
    // A deny is remembered for its TTL: the marker and the join key get 403 from the store, not from the middleware.
    if (ttlMs > 0) this.store.put(session, ttlMs);
    else this.store.delete(session);
  }

  private ttlOf(decision: Decision): number {
    if (decision.ttlMs !== undefined) return Math.min(decision.ttlMs, this.auth.maxTtlMs);
    return decision.allow ? this.auth.allowTtlMs : this.auth.denyTtlMs;
  }

  /** Ends a session: its open streams are cut; its marker answers 403 while the store remembers it. */
  end(session: Session, reason: string): void {
    if (session.endReason !== undefined) return;
    session.endReason = reason;
    for (const stream of session.streams) stream.destroy();
    session.streams.clear();
    this.unwatch(session);
    this.log.info({ session: session.tag, channel: session.channel, kind: session.kind, reason, bytes: session.bytes, durationMs: Date.now() - session.openedAt }, 'session ended');
  }

  /** An MPEG-TS response now belongs to the session; returns the function that detaches it. */
  attachStream(session: Session, stream: Closable): () => void {
    session.kind = 'mpegts';
    session.streams.add(stream);
    this.watched.add(session);
    this.scheduleRecheck(session);
    return () => {
      session.streams.delete(stream);
      if (session.streams.size === 0) this.unwatch(session);
    };
  }

  /**
   * A session that only holds open streams sends no requests that would
   * notice its decision expiring: a timer does, and asks for a re-check.
   */
  private scheduleRecheck(session: Session): void {
    if (session.streams.size === 0 || session.endReason !== undefined) return;
    if (session.recheckTimer !== undefined) clearTimeout(session.recheckTimer);
    // setTimeout holds at most 2^31-1 ms (~24.8 days); auth.maxTtl stays below that anyway.
    const delay = Math.min(Math.max(0, session.expiresAt - Date.now()), 2 ** 31 - 1);
    session.recheckTimer = setTimeout(() => {
      session.recheckTimer = undefined;
      if (session.streams.size > 0 && session.endReason === undefined) this.onExpiry(session);
    }, delay);
    session.recheckTimer.unref();
  }

  private unwatch(session: Session): void {
    if (session.recheckTimer !== undefined) clearTimeout(session.recheckTimer);
    session.recheckTimer = undefined;
    this.watched.delete(session);
  }

  /** Cuts every open stream (shutdown after the drain timeout). */
  closeAll(): void {
    for (const session of this.watched) {
      for (const stream of session.streams) stream.destroy();
      session.streams.clear();
      this.unwatch(session);
    }
  }
}
