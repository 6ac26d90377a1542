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

/** The query with the values of `names` replaced by `<redacted>`, for logs. */
export function redactQuery(query: string, names: ReadonlySet<string>): string {
  if (query === '') return query;
  return query
    .split('&')
    .map((part) => {
      const eq = part.indexOf('=');
      const name = eq === -1 ? part : part.slice(0, eq);
      return eq !== -1 && names.has(name) ? `${name}=<redacted>` : part;
    })
    .join('&');
}
