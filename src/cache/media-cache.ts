/**
 * The media cache's index: entries by key (the upstream path and query,
 * without the session marker), least recently used first, bounded in bytes.
 * An entry is findable from the moment its fetch starts, so concurrent misses
 * coalesce onto one upstream request (see entry.ts for the streaming side).
 *
 * Why not undici's `interceptors.cache` + `MemoryCacheStore` and
 * `interceptors.deduplicate` (measured with `npm run bench:cache-libs`,
 * bench/cache-libraries.ts, undici 7.30.2):
 * - MemoryCacheStore is not bounded for one entry per URL: past maxSize it
 *   drops `entries.length / 2` entries of each URL, i.e. none when there is
 *   one; 80 × 1 MiB segments in a 50 MiB store kept all 80 (80 MiB);
 * - it stores a body only once complete, and deduplicate joins a waiter only
 *   before the first body byte: 100 viewers arriving over the 400 ms transfer
 *   of one 1 MiB segment made 93 origin requests (100 without excluding
 *   X-Forwarded-For from its key). Live HLS viewers arrive exactly like that.
 */
import { CacheEntry } from './entry.js';

export interface MediaCacheOptions {
  /** Total bytes of bodies held (complete and in flight). */
  readonly maxBytes: number;
  /** Largest single body kept; a larger one goes past the cache. */
  readonly maxEntryBytes: number;
  readonly now?: () => number;
}

export interface MediaCacheStats {
  readonly bytes: number;
  readonly entries: number;
  readonly evictions: number;
}

/** How often expired entries are looked for (they are also dropped when found expired). */
const SWEEP_INTERVAL_MS = 1000;

export class MediaCache implements MediaCacheStats {
  private readonly index = new Map<string, CacheEntry>();
  private bytesHeld = 0;
  private evicted = 0;
  private readonly now: () => number;
  private readonly sweeper: NodeJS.Timeout;
  private readonly onResize = (entry: CacheEntry, delta: number): void => {
    if (!entry.indexed) return;
    this.bytesHeld += delta;
    if (delta > 0) this.evictFor(entry);
  };

  constructor(readonly options: MediaCacheOptions) {
    this.now = options.now ?? Date.now;
    this.sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.sweeper.unref();
  }

  get bytes(): number {
    return this.bytesHeld;
  }

  get entries(): number {
    return this.index.size;
  }

  get evictions(): number {
    return this.evicted;
  }

  /**
   * The entry for `key` if one is being fetched or is fresh; it becomes the
   * most recently used. An expired or failed one is dropped.
   */
  get(key: string): CacheEntry | undefined {
    const entry = this.index.get(key);
    if (entry === undefined) return undefined;
    if (entry.state === 'failed' || (entry.state === 'complete' && entry.expiresAt <= this.now())) {
      this.remove(entry);
      return undefined;
    }
    // Map order is our LRU order: move to the back.
    this.index.delete(key);
    this.index.set(key, entry);
    return entry;
  }

  /** A new in-flight entry for `key` (replacing any other), findable at once. */
  open(key: string): CacheEntry {
    const old = this.index.get(key);
    if (old !== undefined) this.remove(old);
    const entry = new CacheEntry(key, this.options.maxEntryBytes, this.onResize);
    entry.indexed = true;
    this.index.set(key, entry);
    return entry;
  }

  /** The fetch of `entry` ended: keep it for `ttlMs`, or let it go (0: its waiters were served, later requests go upstream). */
  complete(entry: CacheEntry, ttlMs: number): void {
    if (ttlMs <= 0) {
      this.remove(entry);
      entry.finish(this.now());
      return;
    }
    entry.finish(this.now() + ttlMs);
  }

  /** Takes `entry` out of the index; readers that hold it finish with it. */
  remove(entry: CacheEntry): void {
    if (!entry.indexed) return;
    entry.indexed = false;
    if (this.index.get(entry.key) === entry) this.index.delete(entry.key);
    this.bytesHeld -= entry.reserved;
  }

  /** Drops least recently used entries until `bytes` fits (never `keep`, the one growing). */
  private evictFor(keep: CacheEntry): void {
    if (this.bytesHeld <= this.options.maxBytes) return;
    for (const entry of this.index.values()) {
      if (this.bytesHeld <= this.options.maxBytes) break;
      if (entry === keep) continue;
      this.remove(entry);
      this.evicted++;
    }
  }

  private sweep(): void {
    const now = this.now();
    for (const entry of this.index.values()) {
      if (entry.state === 'failed' || (entry.state === 'complete' && entry.expiresAt <= now)) this.remove(entry);
    }
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const entry of [...this.index.values()]) this.remove(entry);
  }
}
