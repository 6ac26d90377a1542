/**
 * Where sessions live: one interface, one file per store (memory.ts; a
 * shared Redis store for a fleet comes later as redis.ts).
 *
 * Two tiers, each with its own bound, so that sessions nobody was ever
 * allowed cannot push out the ones that were (hardening issue, item 7: 5,000
 * requests with denied tokens evicted a playing viewer):
 * - `granted`: sessions that were allowed at least once (playing, idle,
 *   resumable) and the tombstones of granted sessions that were ended
 *   (kicked, denied by a re-check, X-Unique, the limit policy). A tombstone
 *   keeps its marker refused for its remaining TTL; only a session that was
 *   granted can become one, so an attacker cannot mass-produce them without
 *   valid tokens. Bounded by `auth.maxEntries` (`--max-sessions`).
 * - `ungranted`: sessions waiting for their first decision and sessions that
 *   were only ever denied (remembered so that a reload gets 403 from the
 *   store, not from the middleware). Bounded by `auth.maxUngranted`, evicted
 *   oldest first, never at the expense of a granted session.
 *
 * Rules for every store, so that a shared one fits behind the same interface:
 * - Reads are synchronous and answer from what this process holds: the hot
 *   path (every playlist and segment request) never waits on the network
 *   (STYLE §11). A shared store keeps its local copy and fills misses
 *   elsewhere, off the request path.
 * - Writes return nothing to wait for: a shared store replicates them in the
 *   background; the local copy is updated at once.
 * - Every entry expires by itself: nothing stays in memory past its TTL
 *   because no request came to notice it (item 6).
 */
import type { Session } from './session.js';

export const STORE_TIERS = ['granted', 'ungranted'] as const;
export type StoreTier = (typeof STORE_TIERS)[number];

/** The tier a session belongs in: ever allowed, or not (yet). */
export function tierOf(session: Session): StoreTier {
  return session.granted ? 'granted' : 'ungranted';
}

export interface TierStats {
  readonly entries: number;
  /** Sessions dropped because the tier was full (not expiry). */
  readonly evictions: number;
}

export interface SessionStore {
  /** The session with this ID, unless it expired. */
  get(id: string): Session | undefined;
  /**
   * The newest session put under this join key (see `joinKeyOf`), unless it
   * expired. A key is a hash: the caller checks that the session really is
   * the same channel, token, IP and User-Agent.
   */
  getByJoinKey(joinKey: number): Session | undefined;
  /**
   * Inserts or refreshes a session in the tier `tierOf(session)` names (a
   * session moves to `granted` when it is first allowed); it disappears
   * `ttlMs` from now unless put again.
   */
  put(session: Session, ttlMs: number): void;
  delete(session: Session): void;
  /** Entries in both tiers. */
  readonly size: number;
  /** Evictions in both tiers. */
  readonly evictions: number;
  stats(tier: StoreTier): TierStats;
  /** Stops background work and forgets every session. Idempotent. */
  close(): Promise<void>;
}
