/**
 * The in-memory session store: sessions by ID and by join key, in two
 * bounded tiers (store.ts), each entry expiring by itself.
 *
 * Our own Maps and lists rather than lru-cache (the previous store), because
 * of what `npm run bench:store` measured at 1,000,000 sessions
 * (bench/README.md §1):
 * - expiry: lru-cache only drops an expired entry when it is read or when
 *   `purgeStale()` walks every entry (0.5–0.6 s with the event loop stopped
 *   at 1M); `ttlAutopurge` is one timer per entry. Unread expired sessions
 *   stayed until `--max-sessions` pushed them out (item 6: 100,002 entries,
 *   492 MB, five minutes after a flood). Here a time-bucketed index finds the
 *   due entries without looking at the others (a tick with nothing due:
 *   0.7 µs), and the sweep works in slices of at most 2 ms (1M sessions due
 *   at once: gone in 5 s, median slice 2.1 ms);
 * - two tiers with their own bounds (item 7) are two lists over one index;
 *   with lru-cache they were two caches plus a shared join index;
 * - memory: lru-cache preallocates its arrays for `max` entries; these
 *   structures grow with what is stored.
 *
 * The ID and join-key indexes are split over SHARDS Maps: a Map that grows or
 * shrinks rehashes all its entries at once (117 ms at 512k→1M entries, 45 ms
 * for a shrink while deleting, measured on the bench VM); 64 shards keep each
 * rehash to 1/64 of that.
 */
import type { Session } from './session.js';
import { tierOf, type SessionStore, type StoreTier, type TierStats } from './store.js';

/** How often due entries are removed; also the width of a bucket of the expiry index. */
export const DEFAULT_SWEEP_INTERVAL_MS = 1000;
/**
 * The sweep gives the event loop back (and goes on in a setImmediate) after
 * this many entries or this long, whichever comes first: a removal touches
 * ~10 cache lines, 0.3–3 µs depending on how busy the machine is.
 */
export const SWEEP_SLICE = 4096;
export const SWEEP_SLICE_MS = 2;
const SHARDS = 64;
/** Open sessions at the old end of the granted list are moved to the new end (at most this many per eviction) instead of being evicted. */
const SECOND_CHANCES = 32;
/** A bucket array at least this long that is more than half holes is compacted. */
const COMPACT_MIN = 64;

export interface MemoryStoreOptions {
  /** Bound of the granted tier (auth.maxEntries). */
  readonly maxGranted: number;
  /** Bound of the ungranted tier (auth.maxUngranted). */
  readonly maxUngranted: number;
  /** Hears about sessions dropped because their tier was full (not about expiry). */
  readonly onEvict?: (session: Session) => void;
  readonly sweepIntervalMs?: number;
  readonly now?: () => number;
}

class Entry {
  /** The list the entry is in; undefined once it left the store. */
  list: TierList | undefined = undefined;
  older: Entry | undefined = undefined;
  newer: Entry | undefined = undefined;
  expiresAt = 0;
  /** Bucket of the expiry index that holds this entry, and its index there (-1: in none). */
  bucket = 0;
  slot = -1;

  constructor(readonly session: Session) {}
}

/**
 * The entries due by the end of one sweep interval. An entry is in exactly
 * one bucket: moved when put again, taken out when it leaves the store, so a
 * bucket never keeps a session alive (an evicted session with a 10 h TTL
 * would otherwise stay in memory for 10 h). Taking out leaves a hole; a
 * bucket that is more than half holes is compacted.
 */
class Bucket {
  entries: (Entry | undefined)[] = [];
  live = 0;
}

/** One tier: its entries from the oldest put to the newest (a doubly linked list: O(1) everywhere). */
class TierList {
  oldest: Entry | undefined = undefined;
  newest: Entry | undefined = undefined;
  size = 0;
  evictions = 0;

  constructor(readonly max: number) {}

  push(e: Entry): void {
    e.list = this;
    e.older = this.newest;
    e.newer = undefined;
    if (this.newest === undefined) this.oldest = e;
    else this.newest.newer = e;
    this.newest = e;
    this.size++;
  }

  unlink(e: Entry): void {
    if (e.older === undefined) this.oldest = e.newer;
    else e.older.newer = e.newer;
    if (e.newer === undefined) this.newest = e.older;
    else e.newer.older = e.older;
    e.older = e.newer = e.list = undefined;
    this.size--;
  }
}

export class MemorySessionStore implements SessionStore {
  private readonly ids: Map<string, Entry>[] = Array.from({ length: SHARDS }, () => new Map());
  private readonly joins: Map<number, Entry>[] = Array.from({ length: SHARDS }, () => new Map());
  private readonly granted: TierList;
  private readonly ungranted: TierList;
  /** The expiry index: bucket number → entries due by the end of that bucket. */
  private readonly buckets = new Map<number, Bucket>();
  /** Buckets up to this one have been swept. */
  private swept = 0;
  /** The bucket being swept and the position in it (a slice may stop half-way). */
  private current: Bucket | undefined = undefined;
  private cursor = 0;
  private readonly epoch: number;
  private readonly intervalMs: number;
  private readonly now: () => number;
  private readonly onEvict: ((session: Session) => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private continuation: NodeJS.Immediate | undefined = undefined;

  constructor(options: MemoryStoreOptions) {
    this.granted = new TierList(options.maxGranted);
    this.ungranted = new TierList(options.maxUngranted);
    this.onEvict = options.onEvict;
    this.now = options.now ?? Date.now;
    this.intervalMs = options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS;
    this.epoch = this.now();
    this.timer = setInterval(() => this.sweepInSlices(), this.intervalMs);
    this.timer.unref();
  }

  get(id: string): Session | undefined {
    const e = this.idShard(id).get(id);
    if (e === undefined) return undefined;
    if (e.expiresAt <= this.now()) {
      this.remove(e);
      return undefined;
    }
    return e.session;
  }

  getByJoinKey(joinKey: number): Session | undefined {
    const e = this.joinShard(joinKey).get(joinKey);
    if (e === undefined) return undefined;
    if (e.expiresAt <= this.now()) {
      this.remove(e);
      return undefined;
    }
    return e.session;
  }

  put(session: Session, ttlMs: number): void {
    const ids = this.idShard(session.id);
    let e = ids.get(session.id);
    if (e === undefined) {
      e = new Entry(session);
      ids.set(session.id, e);
    }
    e.expiresAt = this.now() + Math.max(1, Math.ceil(ttlMs));
    this.place(e);
    // The newest session under a join key takes it (a reload joins the session that was put last).
    this.joinShard(session.joinKey).set(session.joinKey, e);
    const list = tierOf(session) === 'granted' ? this.granted : this.ungranted;
    if (e.list !== undefined) e.list.unlink(e);
    list.push(e);
    this.evictOver(list);
  }

  delete(session: Session): void {
    const e = this.idShard(session.id).get(session.id);
    if (e !== undefined) this.remove(e);
  }

  get size(): number {
    return this.granted.size + this.ungranted.size;
  }

  get evictions(): number {
    return this.granted.evictions + this.ungranted.evictions;
  }

  stats(tier: StoreTier): TierStats {
    const list = tier === 'granted' ? this.granted : this.ungranted;
    return { entries: list.size, evictions: list.evictions };
  }

  /**
   * Removes the entries that are due, at most SWEEP_SLICE looked at; returns
   * true when more are due (the timer goes on in a setImmediate). Runs by
   * itself every sweep interval; public for tests and the bench.
   */
  sweep(): boolean {
    const now = this.now();
    // Bucket b holds expiries up to epoch + b × interval: it is due once that has passed.
    const due = Math.floor((now - this.epoch) / this.intervalMs);
    let budget = SWEEP_SLICE;
    const deadline = performance.now() + SWEEP_SLICE_MS;
    while (this.swept < due) {
      const b = this.swept + 1;
      const bucket = this.buckets.get(b);
      if (bucket !== undefined) {
        if (bucket !== this.current) {
          this.current = bucket;
          this.cursor = 0;
        }
        const entries = bucket.entries;
        while (this.cursor < entries.length && budget > 0) {
          const e = entries[this.cursor++];
          budget--;
          if (e === undefined) continue; // a hole: that entry left or moved
          if (e.expiresAt <= now) this.remove(e);
          else this.place(e, b + 1); // only when the clock went back: file it further on
          if ((budget & 63) === 0 && performance.now() >= deadline) budget = 0;
        }
        if (this.cursor < entries.length) return true;
        if (this.buckets.get(b) === bucket) this.buckets.delete(b);
      }
      this.current = undefined;
      this.swept = b;
      if (budget === 0) return this.swept < due;
    }
    return false;
  }

  async close(): Promise<void> {
    if (this.timer === undefined) return;
    clearInterval(this.timer);
    this.timer = undefined;
    if (this.continuation !== undefined) clearImmediate(this.continuation);
    this.continuation = undefined;
    for (const m of this.ids) m.clear();
    for (const m of this.joins) m.clear();
    this.buckets.clear();
    for (const list of [this.granted, this.ungranted]) {
      list.oldest = list.newest = undefined;
      list.size = 0;
    }
  }

  private sweepInSlices(): void {
    if (this.continuation !== undefined || this.timer === undefined) return;
    if (!this.sweep()) return;
    const next = (): void => {
      this.continuation = undefined;
      if (this.timer !== undefined && this.sweep()) this.continuation = setImmediate(next).unref();
    };
    this.continuation = setImmediate(next).unref();
  }

  /** Files the entry in the bucket of its expiry (taking it out of the one it was in). */
  private place(e: Entry, earliest = this.swept + 1): void {
    // A bucket already swept is not looked at again: the next one is.
    const b = Math.max(Math.ceil((e.expiresAt - this.epoch) / this.intervalMs), earliest);
    if (e.slot !== -1 && e.bucket === b) return;
    this.unplace(e);
    let bucket = this.buckets.get(b);
    if (bucket === undefined) this.buckets.set(b, (bucket = new Bucket()));
    e.bucket = b;
    e.slot = bucket.entries.length;
    bucket.entries.push(e);
    bucket.live++;
  }

  private unplace(e: Entry): void {
    if (e.slot === -1) return;
    const bucket = this.buckets.get(e.bucket);
    const slot = e.slot;
    e.slot = -1;
    if (bucket === undefined) return; // a bucket the sweep has let go of (only holes were left)
    bucket.entries[slot] = undefined;
    if (--bucket.live === 0) {
      this.buckets.delete(e.bucket);
    } else if (bucket !== this.current && bucket.entries.length >= COMPACT_MIN && bucket.live * 2 < bucket.entries.length) {
      // Amortized O(1): the holes being dropped were made by as many removals.
      const kept: Entry[] = [];
      for (const x of bucket.entries) {
        if (x === undefined) continue;
        x.slot = kept.length;
        kept.push(x);
      }
      bucket.entries = kept;
    }
  }

  /** Evicts the oldest entries of a full tier; open sessions of the granted tier get a second chance. */
  private evictOver(list: TierList): void {
    while (list.size > list.max) {
      let victim = list.oldest!;
      if (list === this.granted) {
        for (let i = 0; i < SECOND_CHANCES && victim.session.active && victim !== list.newest; i++) {
          list.unlink(victim);
          list.push(victim);
          victim = list.oldest!;
        }
      }
      this.remove(victim);
      list.evictions++;
      this.onEvict?.(victim.session);
    }
  }

  private remove(e: Entry): void {
    if (e.list === undefined) return;
    e.list.unlink(e);
    this.unplace(e);
    const s = e.session;
    const ids = this.idShard(s.id);
    if (ids.get(s.id) === e) ids.delete(s.id);
    const joins = this.joinShard(s.joinKey);
    if (joins.get(s.joinKey) === e) joins.delete(s.joinKey);
  }

  private idShard(id: string): Map<string, Entry> {
    // Session IDs are random base64url: their first two characters spread evenly.
    return this.ids[((id.charCodeAt(0) << 5) ^ id.charCodeAt(1)) & (SHARDS - 1)]!;
  }

  private joinShard(joinKey: number): Map<number, Entry> {
    return this.joins[joinKey & (SHARDS - 1)]!;
  }
}
