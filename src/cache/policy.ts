/**
 * Whether, and for how long, the edge cache may keep an upstream response
 * (RFC 9111 as it applies to a shared cache in front of one origin). Pure.
 *
 * - `no-store`, `private`, `no-cache` (but see `microCache`), `Set-Cookie`, `Vary` (other than
 *   Accept-Encoding, which the edge never sends upstream) → not stored.
 * - `s-maxage` wins over `max-age` (we are a shared cache); `max-age=0` → not stored.
 * - Without either, the configured default TTL for the kind (live segments:
 *   cache.segmentTtl; playlists: cache.playlistTtl).
 * - 200 is stored; 404 and 410 for a short negative TTL (a player asking for a
 *   segment that rolled off the window must not hammer the origin); anything
 *   else (5xx, 3xx, 206…) is never stored: waiters of the same fetch still share
 *   it, later requests go upstream again.
 */

export interface CacheVerdict {
  /** 0: do not keep (the fetch is still shared by the requests already waiting on it). */
  readonly ttlMs: number;
}

const NOT_STORED: CacheVerdict = Object.freeze({ ttlMs: 0 });

export interface PolicyDefaults {
  readonly defaultTtlMs: number;
  readonly negativeTtlMs: number;
  /**
   * Treat `no-cache` and `max-age=0` as "use the default TTL" (live playlists:
   * the operator's micro-cache TTL is a deliberate second-scale reuse; origins
   * mark live playlists no-cache so that browsers revalidate). `no-store` and
   * `private` still forbid sharing.
   */
  readonly microCache?: boolean;
}

/** `headers`: undici's lower-cased response headers object. */
export function cacheVerdict(status: number, headers: Readonly<Record<string, string | string[] | undefined>>, defaults: PolicyDefaults): CacheVerdict {
  if (status !== 200 && status !== 404 && status !== 410) return NOT_STORED;
  if (headers['set-cookie'] !== undefined) return NOT_STORED;
  const vary = headers['vary'];
  if (vary !== undefined && !varyIsHarmless(vary)) return NOT_STORED;
  const cc = headers['cache-control'];
  let maxAge: number | undefined;
  let sMaxAge: number | undefined;
  if (cc !== undefined) {
    for (const part of (Array.isArray(cc) ? cc.join(',') : cc).split(',')) {
      const directive = part.trim().toLowerCase();
      if (directive === 'no-store' || directive === 'private' || directive.startsWith('private=')) return NOT_STORED;
      if (directive === 'no-cache' || directive.startsWith('no-cache=')) {
        if (defaults.microCache !== true) return NOT_STORED;
        continue;
      }
      if (directive.startsWith('max-age=')) maxAge = seconds(directive.slice(8));
      else if (directive.startsWith('s-maxage=')) sMaxAge = seconds(directive.slice(9));
    }
  }
  const explicit = sMaxAge ?? maxAge;
  if (status !== 200) {
    // Errors never stay longer than the negative TTL, whatever the origin says.
    return explicit === 0 ? NOT_STORED : { ttlMs: Math.min(defaults.negativeTtlMs, explicit === undefined ? Infinity : explicit * 1000) };
  }
  if (explicit !== undefined && !(explicit === 0 && defaults.microCache === true)) return explicit === 0 ? NOT_STORED : { ttlMs: explicit * 1000 };
  return defaults.defaultTtlMs > 0 ? { ttlMs: defaults.defaultTtlMs } : NOT_STORED;
}

function varyIsHarmless(vary: string | string[]): boolean {
  for (const part of (Array.isArray(vary) ? vary.join(',') : vary).split(',')) {
    const name = part.trim().toLowerCase();
    if (name !== '' && name !== 'accept-encoding') return false;
  }
  return true;
}

/** A delta-seconds value; malformed → undefined (the directive is ignored, RFC 9111 §1.2.2 says treat as stale: we treat as absent). */
function seconds(text: string): number | undefined {
  const t = text.replace(/^"|"$/g, '');
  if (!/^\d{1,10}$/.test(t)) return undefined;
  return Number(t);
}
