/**
 * What the edges of a fleet share, behind one interface: several machines
 * through Redis (session/redis.ts), the workers of one machine through their
 * primary over IPC (session/ipc.ts), or nothing (a single process:
 * `SoloFleet` in session/solo.ts, today's behaviour).
 *
 * Rules every implementation keeps (issue "A fleet that acts as one edge"):
 * - the hot path never waits on the fleet for a session this process holds:
 *   `publish`, `release` and `end` return at once and batch what they send;
 *   only a session's first admission (`admit`, after the middleware already
 *   took its time) and a lookup for a request this process cannot place
 *   (`findMarker`) wait, and both are bounded by a short timeout;
 * - the fleet being unreachable is not an error of a request: `admit` and
 *   `findMarker` resolve `undefined` ("no answer: decide locally"), `list`
 *   falls back to this process's own sessions, and the implementation logs
 *   once per episode, counts it (edge_store_errors_total, edge_store_up),
 *   reconnects with backoff and re-publishes its live sessions when back.
 */
import type { LimitPolicy } from '../config/schema.js';
import type { Session } from './session.js';
import type { SessionFilter, SessionView, TablePosition } from './table.js';

/** Why a session ended fleet-wide: its marker is refused on every edge until `untilMs`. */
export interface FleetEnd {
  readonly sessionId: string;
  /** A CloseReason of the registry (`kicked`, `denied`, `unique`, `limit`) or a deny reason. */
  readonly reason: string;
  /** ms since epoch: when the marker would have stopped working anyway (the tombstone's life). */
  readonly untilMs: number;
}

/** A per-user limit check for a session entering the table. */
export interface AdmitRequest {
  /** The registry's user key (user, or user + channel in soft mode). */
  readonly userKey: string;
  readonly sessionId: string;
  /** The cap for this user (X-Max-Sessions, else limits.maxSessionsPerUser); 0 = none. */
  readonly max: number;
  /** X-Unique: this session ends the user's others. */
  readonly unique: boolean;
  readonly policy: LimitPolicy;
  /** openedAt of the session (oldest-first order across the fleet). */
  readonly openedAt: number;
  /**
   * How long the entry counts without being refreshed: a crashed edge's
   * sessions are released after it (the idle timeout).
   */
  readonly ttlMs: number;
}

/**
 * `admitted`: the session counts; `end` are the sessions of this user to end
 * fleet-wide (X-Unique, or the oldest under close-oldest), wherever they are.
 */
export type AdmitAnswer = { readonly admitted: true; readonly end: readonly string[] } | { readonly admitted: false };

/** One page of the fleet's session table: every edge's open sessions, oldest first. */
export interface FleetPage {
  readonly sessions: readonly FleetSessionView[];
  readonly total: number;
  readonly next: TablePosition | undefined;
  /** False when the listing could only cover this process (the fleet was unreachable). */
  readonly complete: boolean;
}

/** A session as the admin API shows it, with the edge (node name) that holds it. */
export type FleetSessionView = SessionView & { readonly edge: string };

/**
 * What the fleet knows of a session this process does not hold: its current
 * marker and how the admin API shows it, or that it was ended (kicked,
 * denied, closed by a limit): its marker is refused until `ended.untilMs`.
 */
export type FleetFound = { readonly marker: string; readonly session: FleetSessionView } | { readonly ended: FleetEnd };

export interface FleetState {
  /** This edge's name in the fleet (node.name: default host name + listen port). */
  readonly nodeName: string;
  /** Whether the shared state is reachable right now. */
  readonly connected: boolean;

  /**
   * Counts `req.sessionId` against its user's fleet-wide limit, atomically.
   * `undefined`: no fleet answer in time (the registry applies its local
   * limits, per edge, meanwhile). Never rejects.
   */
  admit(req: AdmitRequest): Promise<AdmitAnswer | undefined>;
  /** The session left this edge's table: it no longer counts for its user. */
  release(userKey: string, sessionId: string): void;

  /**
   * The session is open (or changed: a new marker after a re-check, bytes,
   * last seen) on this edge: listed fleet-wide, findable by its join key and
   * ID. Refreshed by the implementation in batches, never per request.
   */
  publish(session: Session): void;
  /** The session left this edge's table (idle, disconnected): no longer listed. */
  unpublish(sessionId: string): void;

  /** Ends a session everywhere: every edge refuses its marker until `untilMs` and cuts its streams (within 1 s). */
  end(end: FleetEnd): void;
  /** Ends decided by other edges (kicks, denies from their re-checks, limits). */
  onEnd(listener: (end: FleetEnd) => void): void;

  /**
   * The current marker of a session this process does not hold, by its join
   * key (a player reloading its original URL through another edge) or by its
   * ID (a kick or a look-up through the admin API of another edge), with its
   * view; or, for a session ended anywhere in the fleet, that end (its marker
   * is refused: 403 EDGE_ERR_SESSION_ENDED). `undefined`: unknown, or no
   * answer in time.
   */
  findMarker(key: { readonly joinKey: number } | { readonly sessionId: string }): Promise<FleetFound | undefined>;

  /** The fleet's open sessions, paged like the local table (admin API, status page, CLI). */
  list(filter: SessionFilter, after: TablePosition | undefined, limit: number): Promise<FleetPage>;

  /** Idempotent. */
  close(): Promise<void>;
}
