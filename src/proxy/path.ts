/**
 * The request path as the edge matches and forwards it (hardening issue, item
 * 2). An origin that resolves dot-segments itself (nginx does) would
 * otherwise serve `/play/b/…` for `/play/a/../b/…` after the edge matched
 * channel `a`, and `/play/../secret` outside `/play/`. So the path is
 * normalized once, here, the channel is matched against the result, and the
 * result is what the upstream and the middleware (X-Real-Path) receive: what
 * is matched is what is forwarded, and a marker of channel `a` can never reach
 * channel `b` (the marker is bound to the channel matched here).
 *
 * Normalization (RFC 3986 §6.2.2): percent-escapes of unreserved characters
 * are decoded (`%61` → `a`, `%2e%2e` → `..`), the others are written in upper
 * case (`%c3%a9` → `%C3%A9`), then dot-segments are removed (§5.2.4). Refused,
 * because some origin or filesystem gives them a meaning we cannot match:
 * an encoded separator (`%2F`, `%5C`: nginx decodes `%2F` before resolving
 * `..`), an encoded control (`%00`-`%1F`, `%7F`), a malformed escape, any
 * character RFC 3986 does not allow raw in a path (`\`, space, `#`, non-ASCII…),
 * a `..` that climbs above `/` (RFC 3986 would silently stop at the root; a
 * client that asks for it is probing), and a result that starts with `//`
 * (a network-path reference if anything ever resolves it against a base).
 * Empty segments (`/a//b`) are kept as they are.
 *
 * Cost: one scan of the path, char-code table look-ups, no allocation, and the
 * input string returned as is, for a path that needs nothing (every path a
 * player builds from a playlist: players resolve dot-segments themselves).
 * Only a path with a dot-segment or an escape to rewrite pays for a split and
 * a join.
 */
import { DOT, escapedByte, inClass, IN_PATH, PERCENT, SLASH, UNRESERVED } from './rfc3986.js';
import { refusal, type Refusal } from './refusal.js';

const INVALID_CHARACTER = refusal('invalid_character');
const MALFORMED_ESCAPE = refusal('malformed_escape');
const ENCODED_SEPARATOR = refusal('encoded_separator');
const ENCODED_CONTROL = refusal('encoded_control');
const ABOVE_ROOT = refusal('path_above_root');
const DOUBLE_SLASH = refusal('path_double_slash');

const HEX_UPPER = '0123456789ABCDEF';

/** True when the segment starting at `at` (just after a `/`) is `.` or `..`, raw. */
function isRawDotSegment(path: string, at: number): boolean {
  let end = at;
  while (end < path.length && end - at < 3 && path.charCodeAt(end) === DOT) end++;
  const dots = end - at;
  return (dots === 1 || dots === 2) && (end === path.length || path.charCodeAt(end) === SLASH);
}

/**
 * The normalized form of `raw` (a request path, without the query), or why it
 * is refused. Never throws. Idempotent: a normalized path comes back as is.
 */
export function normalizePath(raw: string): string | Refusal {
  if (raw.length === 0 || raw.charCodeAt(0) !== SLASH) return INVALID_CHARACTER;
  let rewrite = false;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (!inClass(c, IN_PATH)) return INVALID_CHARACTER;
    if (c === PERCENT) {
      const byte = escapedByte(raw, i);
      if (byte < 0) return MALFORMED_ESCAPE;
      if (byte === 0x2f || byte === 0x5c) return ENCODED_SEPARATOR;
      if (byte < 0x20 || byte === 0x7f) return ENCODED_CONTROL;
      // Rewritten when decoding or upper-casing changes it.
      if (inClass(byte, UNRESERVED) || raw.charCodeAt(i + 1) > 0x46 || raw.charCodeAt(i + 2) > 0x46) rewrite = true;
      i += 2;
    } else if (c === SLASH && i + 1 < raw.length && raw.charCodeAt(i + 1) === DOT && isRawDotSegment(raw, i + 1)) {
      rewrite = true;
    }
  }
  if (!rewrite) return raw.length > 1 && raw.charCodeAt(1) === SLASH ? DOUBLE_SLASH : raw;
  return removeDotSegments(decodeUnreserved(raw));
}

/** `raw` (escapes already validated) with unreserved escapes decoded and the others upper-cased. */
function decodeUnreserved(raw: string): string {
  let out = '';
  let copied = 0;
  for (let i = raw.indexOf('%'); i !== -1; i = raw.indexOf('%', i + 3)) {
    const byte = escapedByte(raw, i);
    out += raw.slice(copied, i) + (inClass(byte, UNRESERVED) ? String.fromCharCode(byte) : `%${HEX_UPPER[byte >> 4]!}${HEX_UPPER[byte & 15]!}`);
    copied = i + 3;
  }
  return copied === 0 ? raw : out + raw.slice(copied);
}

/** RFC 3986 §5.2.4 on an absolute path, except that climbing above the root is refused. */
function removeDotSegments(path: string): string | Refusal {
  const input = path.split('/');
  const output: string[] = [];
  // A path ending in a dot-segment names a directory: `/a/b/..` → `/a/`.
  let endsInDirectory = false;
  for (let k = 1; k < input.length; k++) {
    const segment = input[k]!;
    if (segment === '.') {
      endsInDirectory = true;
    } else if (segment === '..') {
      if (output.length === 0) return ABOVE_ROOT;
      output.pop();
      endsInDirectory = true;
    } else {
      output.push(segment);
      endsInDirectory = false;
    }
  }
  const joined = `/${output.join('/')}`;
  const normalized = endsInDirectory && output.length > 0 ? `${joined}/` : joined;
  return normalized.length > 1 && normalized.charCodeAt(1) === SLASH ? DOUBLE_SLASH : normalized;
}
