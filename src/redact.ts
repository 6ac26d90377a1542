/**
 * Keeping secrets out of logs and error messages (hardening item 12): the
 * one place that knows how a token, a session marker or a middleware API key
 * can hide in a query string or a URL. Every message that shows a client
 * query, a configured URL or an error text that may quote one goes through
 * here: the access log, config errors (startup and rejected reloads), the
 * startup log, middleware and webhook warnings.
 *
 * Names are matched the way a middleware reads them: letter case ignored and
 * percent-decoded (`?KEY=…`, `?%6Bey=…` are `key`), because a client can
 * send them so and the middleware still sees the secret.
 */
import { isParamNamed } from './proxy/query.js';

/** What a secret value becomes in a log line. */
export const REDACTED = '<redacted>';
/** What URL credentials and URL query values become: a word that stays a valid URL. */
const URL_REDACTED = 'redacted';

/** Query values of a fixed set of parameter names replaced by `<redacted>` (the access log) or another placeholder. */
export class QueryRedactor {
  private readonly names: readonly string[];

  constructor(
    names: Iterable<string>,
    private readonly replacement: string = REDACTED,
  ) {
    this.names = [...new Set([...names].filter((n) => n !== '').map((n) => n.toLowerCase()))];
  }

  /** The raw query with the values of the named parameters replaced; every other byte kept. */
  redact(query: string): string {
    if (query === '' || this.names.length === 0) return query;
    let out = '';
    let copied = 0;
    let start = 0;
    let eq = -1; // the next `=` at or after `start`, searched again only once passed: linear in the query
    while (start <= query.length) {
      let end = query.indexOf('&', start);
      if (end === -1) end = query.length;
      if (eq !== query.length && eq < start) eq = nextEquals(query, start);
      // `name` without a value has nothing secret in it.
      if (eq < end && this.names.some((name) => isParamNamed(query, start, eq, name, true))) {
        out += `${query.slice(copied, eq + 1)}${this.replacement}`;
        copied = end;
      }
      start = end + 1;
    }
    return copied === 0 ? query : out + query.slice(copied);
  }
}

function nextEquals(query: string, from: number): number {
  const eq = query.indexOf('=', from);
  return eq === -1 ? query.length : eq;
}

/**
 * A configured URL (middleware, sessions webhook) for a message, spelled as
 * the operator wrote it, minus its secrets: credentials become `redacted`,
 * and so does every query value whatever its name (middleware URLs carry API
 * keys under any name; a bare `?KEY` part too). Works on text the URL parser
 * refuses, which is the very value a config error is about: userinfo is
 * everything up to the last `@` before the query (an unencoded `/` in a
 * password would end the authority for a parser, not for the reader of the
 * log); the query runs from the first `?` to the `#`.
 */
export function redactUrl(text: string): string {
  let out = text;
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:[/\\]{2}/.exec(out);
  const authorityStart = scheme === null ? (/^[/\\]{2}/.test(out) ? 2 : 0) : scheme[0].length;
  const userinfoLength = out.slice(authorityStart).search(/[?#]/);
  const at = out.lastIndexOf('@', userinfoLength === -1 ? out.length : authorityStart + userinfoLength - 1);
  if (at >= authorityStart) out = `${out.slice(0, authorityStart)}${URL_REDACTED}${out.slice(at)}`;
  const q = out.indexOf('?');
  if (q === -1) return out;
  const hash = out.indexOf('#', q);
  const query = hash === -1 ? out.slice(q + 1) : out.slice(q + 1, hash);
  const redacted = query
    .split('&')
    .map((part) => {
      if (part === '') return part;
      const eq = part.indexOf('=');
      return eq === -1 ? URL_REDACTED : `${part.slice(0, eq)}=${URL_REDACTED}`;
    })
    .join('&');
  return `${out.slice(0, q + 1)}${redacted}${hash === -1 ? '' : out.slice(hash)}`;
}

/** Every `scheme://…` in free text (an error message) passed through redactUrl. */
export function redactText(text: string): string {
  return text.replace(URL_IN_TEXT, (url) => redactUrl(url));
}

const URL_IN_TEXT = /\b[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s"'<>`]+/g;
