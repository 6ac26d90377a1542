/**
 * What the edge learned of each live playlist's target duration, by
 * directory: a segment is kept, by default, for 3 target durations of the
 * playlist that listed it (cache.segmentTtl auto): long enough for every
 * viewer of the live window, short enough that rolled-off segments go.
 * Relative segment URIs resolve to the playlist's directory, so the
 * directory is the link between the two. Bounded: the oldest directory goes.
 */
import type { PolicyDefaults } from './policy.js';

/** A segment's TTL in target durations (a live window is 3+ segments; RFC 8216 §6.2.2). */
const TARGET_DURATIONS_KEPT = 3;
/** Until a playlist of its directory is seen (or without auto): about 3 × a 10 s target duration. */
export const FALLBACK_SEGMENT_TTL_MS = 30_000;
const MAX_DIRECTORIES = 10_000;

function directoryOf(pathAndQuery: string): string {
  const q = pathAndQuery.indexOf('?');
  const path = q === -1 ? pathAndQuery : pathAndQuery.slice(0, q);
  return path.slice(0, path.lastIndexOf('/') + 1);
}

export class SegmentTtls {
  private readonly byDirectory = new Map<string, PolicyDefaults>();
  private readonly fallback: PolicyDefaults;

  /** `fixedMs`: cache.segmentTtl when set to a duration; 'auto' learns it from playlists. */
  constructor(
    private readonly fixedMs: number | 'auto',
    private readonly negativeTtlMs: number,
  ) {
    this.fallback = Object.freeze({ defaultTtlMs: fixedMs === 'auto' ? FALLBACK_SEGMENT_TTL_MS : fixedMs, negativeTtlMs });
  }

  learn(playlistPathAndQuery: string, targetDurationS: number): void {
    if (this.fixedMs !== 'auto') return;
    const dir = directoryOf(playlistPathAndQuery);
    const ttl = targetDurationS * 1000 * TARGET_DURATIONS_KEPT;
    if (this.byDirectory.get(dir)?.defaultTtlMs === ttl) return;
    if (!this.byDirectory.has(dir) && this.byDirectory.size >= MAX_DIRECTORIES) this.byDirectory.delete(this.byDirectory.keys().next().value!);
    this.byDirectory.set(dir, Object.freeze({ defaultTtlMs: ttl, negativeTtlMs: this.negativeTtlMs }));
  }

  defaultsFor(segmentPathAndQuery: string): PolicyDefaults {
    if (this.byDirectory.size === 0) return this.fallback;
    return this.byDirectory.get(directoryOf(segmentPathAndQuery)) ?? this.fallback;
  }
}
