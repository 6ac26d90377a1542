/**
 * One byte range of a cached body (RFC 9110 §14). Pure. A cached segment
 * answers `Range: bytes=a-b`, `a-` and `-n`; several ranges, other units or
 * a malformed header are ignored (the whole body, 200: allowed by §14.2);
 * a range that starts past the end is unsatisfiable (416).
 */

export type RangeAnswer = { readonly kind: 'full' } | { readonly kind: 'partial'; readonly start: number; readonly end: number } | { readonly kind: 'unsatisfiable' };

const FULL: RangeAnswer = Object.freeze({ kind: 'full' });
const UNSATISFIABLE: RangeAnswer = Object.freeze({ kind: 'unsatisfiable' });

/** `end` is inclusive, as in Content-Range. */
export function parseRange(header: string | undefined, size: number): RangeAnswer {
  if (header === undefined) return FULL;
  const m = /^\s*bytes\s*=\s*(\d{0,15})\s*-\s*(\d{0,15})\s*$/i.exec(header);
  if (m === null) return FULL;
  const [, first, last] = m as unknown as [string, string, string];
  if (first === '' && last === '') return FULL;
  if (first === '') {
    // Suffix range: the last n bytes.
    const n = Number(last);
    if (n === 0) return UNSATISFIABLE;
    return size === 0 ? UNSATISFIABLE : { kind: 'partial', start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(first);
  if (start >= size) return UNSATISFIABLE;
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (end < start) return FULL; // invalid range-spec: ignore the header
  return { kind: 'partial', start, end };
}
