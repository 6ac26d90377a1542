/**
 * Compact strings for stored sessions (hardening issue, item 6).
 *
 * A substring in V8 (`req.url.slice`, a regex group, a header split) is a
 * *sliced string* that keeps its whole parent alive, and a concatenation is a
 * *cons string* that keeps its parts: a session that stores such strings
 * stores the request they came from. `flatCopy` makes a string that points
 * into nothing. The `Interner` shares one copy of values that repeat across
 * sessions (channel, path, host, User-Agent, referer, user names): a million
 * viewers of a few hundred channels and players hold a few thousand strings,
 * not a million.
 */

/** V8 copies substrings shorter than this (SlicedString::kMinLength); longer ones are slices. */
const SLICE_MIN_LENGTH = 13;

/** A copy of `s` that shares no memory with any other string. */
export function flatCopy(s: string): string {
  if (s.length < SLICE_MIN_LENGTH) return s; // never a slice or a cons string: V8 copies short substrings
  // Through latin1 bytes: one memcpy each way. HTTP heads are latin1 (one byte per
  // character), so this is exact; anything wider keeps the original string.
  const copy = Buffer.from(s, 'latin1').toString('latin1');
  return copy === s ? copy : s;
}

/** Entries per generation: two generations are kept, so at most twice this many strings. */
export const DEFAULT_INTERN_CAPACITY = 16_384;

/**
 * A bounded intern table: two generations of Map. A hit in the old one is
 * promoted; when the young one is full, the old one is dropped. Values that
 * keep coming (a channel being watched, a common player) stay interned; a
 * flood of unique values (random User-Agents) costs a copy each and pushes
 * nothing out for long. Lookups hash the string: done once per new session,
 * never per request.
 */
export class Interner {
  private young = new Map<string, string>();
  private old = new Map<string, string>();

  constructor(private readonly capacity = DEFAULT_INTERN_CAPACITY) {}

  intern(s: string): string {
    if (s.length === 0) return '';
    const hit = this.young.get(s);
    if (hit !== undefined) return hit;
    const copy = this.old.get(s) ?? flatCopy(s);
    if (this.young.size >= this.capacity) {
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(copy, copy);
    return copy;
  }

  get size(): number {
    return this.young.size + this.old.size;
  }

  clear(): void {
    this.young.clear();
    this.old.clear();
  }
}
