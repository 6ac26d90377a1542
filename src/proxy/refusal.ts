/**
 * Why the edge refuses to read a request: `400 EDGE_ERR_BAD_REQUEST` with one
 * of these reasons. They are stable (operators grep for them; the README's
 * "How a request is served" lists them) and each is one shared frozen object,
 * so returning a refusal from the hot path allocates nothing.
 */

export const REFUSAL_REASONS = [
  /** A byte RFC 3986 does not allow raw in a path or a query: space, controls, `#`, `"`, `<`, `>`, `\`, `[`, `]`, `^`, `` ` ``, `{`, `|`, `}`, non-ASCII. */
  'invalid_character',
  /** `%` not followed by two hex digits. */
  'malformed_escape',
  /** `%2F` or `%5C` in the path: an origin that decodes it sees another path. */
  'encoded_separator',
  /** `%00`-`%1F` or `%7F` in the path. */
  'encoded_control',
  /** A `..` segment climbs above `/`. */
  'path_above_root',
  /** The path (once normalized) starts with `//`, which reads as a host name in a URI reference. */
  'path_double_slash',
  /** The token parameter or the session marker appears more than once (keys compared decoded). */
  'duplicate_param',
  /** A key a middleware would read as the token parameter or the marker without being spelled so (`token[]`, `tok.en` for `tok_en`, `token%00x`). */
  'ambiguous_param',
  /** The token or marker value does not decode to UTF-8 text. */
  'param_not_utf8',
  /** Two Host headers: the middleware would see the first, the origin another. */
  'duplicate_host',
] as const;

export type RefusalReason = (typeof REFUSAL_REASONS)[number];

export interface Refusal {
  readonly refused: RefusalReason;
}

const REFUSALS: ReadonlyMap<RefusalReason, Refusal> = new Map(REFUSAL_REASONS.map((reason) => [reason, Object.freeze({ refused: reason })]));

/** The shared refusal object for `reason`. */
export function refusal(reason: RefusalReason): Refusal {
  return REFUSALS.get(reason)!;
}

export function isRefusal(value: unknown): value is Refusal {
  return typeof value === 'object' && value !== null && 'refused' in value;
}
