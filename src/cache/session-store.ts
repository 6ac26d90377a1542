/**
 * The decision store: sessions (and the decision each carries) keyed by
 * session ID, plus a join index (channel + token + IP + User-Agent → session).
 * Behind an interface so a shared (Redis) store can replace the in-memory one
 * for a fleet.
 *
 * Why lru-cache and not node-cache (the design card's pick), measured with
 * `npm run bench:store` at 1,000,000 sessions (bench/README.md):
 * - bounded: lru-cache evicts the least recently used at `max` (0.6 µs per
 *   insert); node-cache's `maxKeys` throws ECACHEFULL and refuses every new
 *   session once full;
 * - memory: 62 MiB with TTLs vs 94 MiB (node-cache, useClones:false) and
 *   124 MiB (its default, which also deep-clones on every get/set);
 * - TTL: checked lazily on get, no timer; node-cache's checkperiod sweep
 *   walks every key (≈370 ms event-loop stall per tick at 1M entries);
 * - cost: set 1.2 µs vs 1.6 µs; get 1.5 µs vs 1.4 µs (even).
 */
import { LRUCache } from 'lru-cache';
import type { Session } from '../session/session.js';

export interface SessionStore {
  get(id: string): Session | undefined;
  getByJoinKey(joinKey: string): Session | undefined;
  /** Inserts or refreshes a session; it disappears `ttlMs` from now unless put again. */
  put(session: Session, ttlMs: number): void;
  delete(session: Session): void;
  readonly size: number;
  /** Sessions dropped because the store was full. */
  readonly evictions: number;
  close(): void;
}

export class MemorySessionStore implements SessionStore {
  private readonly byId: LRUCache<string, Session>;
  private readonly byJoinKey: LRUCache<string, Session>;
  private evicted = 0;

  /** `onEvict` hears about sessions dropped because the store was full (not about expiry). */
  constructor(maxEntries: number, onEvict?: (session: Session) => void) {
    this.byId = new LRUCache<string, Session>({
      max: maxEntries,
      // TTL is checked lazily on get (no timers, no scans); stale entries are never returned.
      ttlAutopurge: false,
      allowStale: false,
      updateAgeOnGet: false,
      dispose: (session, _id, reason) => {
        if (reason !== 'evict') return;
        this.evicted++;
        onEvict?.(session);
      },
    });
    this.byJoinKey = new LRUCache<string, Session>({ max: maxEntries, ttlAutopurge: false, allowStale: false });
  }

  get(id: string): Session | undefined {
    return this.byId.get(id);
  }

  getByJoinKey(joinKey: string): Session | undefined {
    const session = this.byJoinKey.get(joinKey);
    // The join index may outlive an evicted session: only a session still in the store counts.
    if (session === undefined || this.byId.peek(session.id) !== session) return undefined;
    return session;
  }

  put(session: Session, ttlMs: number): void {
    const ttl = Math.max(1, Math.ceil(ttlMs));
    this.byId.set(session.id, session, { ttl });
    this.byJoinKey.set(session.joinKey, session, { ttl });
  }

  delete(session: Session): void {
    if (this.byId.peek(session.id) === session) this.byId.delete(session.id);
    if (this.byJoinKey.peek(session.joinKey) === session) this.byJoinKey.delete(session.joinKey);
  }

  get size(): number {
    return this.byId.size;
  }

  get evictions(): number {
    return this.evicted;
  }

  close(): void {
    this.byId.clear();
    this.byJoinKey.clear();
  }
}
