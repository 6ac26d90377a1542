/**
 * The character classes of RFC 3986 §2-3 the request-target readers need
 * (path.ts, query.ts), as one lookup table indexed by char code: a table
 * look-up per character is the cheapest check there is, and it never
 * backtracks.
 */

/** ALPHA / DIGIT / "-" / "." / "_" / "~" (§2.3): percent-decoding these never changes meaning. */
export const UNRESERVED = 1;
/** pchar / "/" (§3.3): may stand raw in a path. */
export const IN_PATH = 2;
/** pchar / "/" / "?" (§3.4): may stand raw in a query. */
export const IN_QUERY = 4;

const SUB_DELIMS = "!$&'()*+,;=";

/**
 * Class bits of the 128 ASCII codes; anything above is in no class (a raw
 * non-ASCII byte is not allowed anywhere in a URI). Built once at load and
 * never written afterwards.
 */
export const CHAR_CLASS: Uint8Array = (() => {
  const table = new Uint8Array(128);
  const mark = (chars: string, bits: number): void => {
    for (let i = 0; i < chars.length; i++) table[chars.charCodeAt(i)]! |= bits;
  };
  let alnum = '';
  for (let c = 0x30; c <= 0x39; c++) alnum += String.fromCharCode(c);
  for (let c = 0x41; c <= 0x5a; c++) alnum += String.fromCharCode(c, c + 0x20);
  mark(`${alnum}-._~`, UNRESERVED | IN_PATH | IN_QUERY);
  // "%" is allowed only as the start of a pct-encoded triplet: the readers check the two hex digits.
  mark(`${SUB_DELIMS}:@/%`, IN_PATH | IN_QUERY);
  mark('?', IN_QUERY);
  return table;
})();

export const PERCENT = 0x25;
export const SLASH = 0x2f;
export const DOT = 0x2e;

/** Value of one hex digit, or -1. */
export function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  const lower = code | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/** The byte a `%XX` triplet at `at` (the `%`) encodes, or -1 when it is not two hex digits. */
export function escapedByte(text: string, at: number): number {
  if (at + 2 >= text.length) return -1;
  const hi = hexValue(text.charCodeAt(at + 1));
  const lo = hexValue(text.charCodeAt(at + 2));
  return hi < 0 || lo < 0 ? -1 : (hi << 4) | lo;
}

/** True when `code` is in `cls` (one of the class bits above). */
export function inClass(code: number, cls: number): boolean {
  return code < 128 && (CHAR_CLASS[code]! & cls) !== 0;
}
