/**
 * Raw query-string surgery. The client's query is passed on byte for byte
 * (Astra appends it to the middleware URL unchanged, PROTOCOLS §1), so we
 * never parse it into a URLSearchParams and back: these functions find and
 * cut one parameter and leave every other byte where it was.
 */

/** Raw (still percent-encoded) value of the first `name=` parameter, or undefined. */
export function findParam(query: string, name: string): string | undefined {
  if (query === '') return undefined;
  let start = 0;
  while (start <= query.length) {
    let end = query.indexOf('&', start);
    if (end === -1) end = query.length;
    if (end - start > name.length && query.charCodeAt(start + name.length) === 61 /* = */ && query.startsWith(name, start)) {
      return query.slice(start + name.length + 1, end);
    }
    start = end + 1;
  }
  return undefined;
}

/** The query without any `name` / `name=…` parameter; other bytes untouched. */
export function removeParam(query: string, name: string): string {
  if (query === '' || !query.includes(name)) return query;
  let out = '';
  let start = 0;
  while (start <= query.length) {
    let end = query.indexOf('&', start);
    if (end === -1) end = query.length;
    const isOurs =
      query.startsWith(name, start) && (end - start === name.length || query.charCodeAt(start + name.length) === 61);
    if (!isOurs && end > start) out = out === '' ? query.slice(start, end) : `${out}&${query.slice(start, end)}`;
    start = end + 1;
  }
  return out;
}

/** Appends `name=value` to a URI reference, before any `#fragment`. */
export function appendParam(uri: string, name: string, value: string): string {
  const hash = uri.indexOf('#');
  const base = hash === -1 ? uri : uri.slice(0, hash);
  const fragment = hash === -1 ? '' : uri.slice(hash);
  const q = base.indexOf('?');
  let sep = '?';
  if (q !== -1) sep = q === base.length - 1 || base.endsWith('&') ? '' : '&';
  return `${base}${sep}${name}=${value}${fragment}`;
}

/** Splits a request target into raw path and raw query (without the `?`). */
export function splitTarget(target: string): { path: string; query: string } {
  const q = target.indexOf('?');
  return q === -1 ? { path: target, query: '' } : { path: target.slice(0, q), query: target.slice(q + 1) };
}

// ---------------------------------------------------------------------------------------------
// Matching a parameter by its decoded name. A middleware (PHP's $_GET, Go's url.Values) decodes
// `%65dge_session` to `edge_session` before it looks at it, so for replacing our marker in an
// origin URI and for keeping secrets out of logs a name must be compared the way they read it.
// Separate from findParam/removeParam above, which match the raw bytes (the request path).
// ---------------------------------------------------------------------------------------------

/**
 * True when query[start, end) percent-decodes to `name` (an ASCII name), letter case ignored when
 * `ignoreCase`. A malformed escape compares as its literal characters, as middlewares read it.
 */
export function isParamNamed(query: string, start: number, end: number, name: string, ignoreCase: boolean): boolean {
  let i = start;
  let n = 0;
  while (i < end) {
    if (n === name.length) return false;
    let c = query.charCodeAt(i);
    let step = 1;
    if (c === 37 /* % */ && i + 2 < end) {
      const hi = hexValue(query.charCodeAt(i + 1));
      const lo = hexValue(query.charCodeAt(i + 2));
      if (hi !== -1 && lo !== -1) {
        c = hi * 16 + lo;
        step = 3;
      }
    }
    let want = name.charCodeAt(n);
    if (ignoreCase) {
      c = asciiLower(c);
      want = asciiLower(want);
    }
    if (c !== want) return false;
    i += step;
    n++;
  }
  return n === name.length;
}

/**
 * The query without every parameter whose decoded name is `name` (see isParamNamed); every other
 * part, empty ones included, stays as it was, in order.
 */
export function removeParamNamed(query: string, name: string, ignoreCase: boolean): string {
  if (query === '' || (!ignoreCase && !query.includes('%') && !query.includes(name))) return query;
  const kept: string[] = [];
  let removed = false;
  let start = 0;
  let eq = -1; // the next `=` at or after `start`, searched again only once passed: linear in the query
  while (start <= query.length) {
    let end = query.indexOf('&', start);
    if (end === -1) end = query.length;
    if (eq !== query.length && eq < start) {
      eq = query.indexOf('=', start);
      if (eq === -1) eq = query.length;
    }
    if (isParamNamed(query, start, Math.min(eq, end), name, ignoreCase)) removed = true;
    else kept.push(query.slice(start, end));
    start = end + 1;
  }
  return removed ? kept.join('&') : query;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

function asciiLower(c: number): number {
  return c >= 65 && c <= 90 ? c + 32 : c;
}
