/**
 * HLS playlist rewriting: every URI the player will follow gets the session
 * marker, so playlist and segment requests after the first are tied to the
 * session and served from the decision store (issue "The edge, end to end",
 * §2).
 *
 * Two steps, so that one upstream playlist can serve every session watching it
 * (the live micro-cache of the performance issue):
 * - compilePlaylist() parses the playlist once into fixed bytes and the places
 *   ("slots") where a session ID goes;
 * - renderPlaylist() builds one session's body from it: copies only, no parsing.
 *
 * What is a URI (RFC 8216 / draft-pantos-hls-rfc8216bis §4.4): URI lines, and
 * the quoted-string value of the URI-valued attributes of the tags listed in
 * URI_ATTRIBUTES; attribute lists are parsed honouring quoted strings, so a
 * `URI="…"` inside another quoted value, inside an `#EXTINF` title, a comment
 * or an unknown tag is text, not a URI.
 *
 * Bytes are handled as latin1 (one char per byte): the syntax is ASCII, and
 * every byte we do not rewrite, valid UTF-8 or not, comes out unchanged.
 */
import { removeParamNamed } from './query.js';

export interface PlaylistContext {
  /** Upstream origin, lower-case `scheme://host[:port]`: absolute URIs to it become root-relative. */
  readonly upstreamOrigin: string;
  /** The session marker's query parameter (session.param). */
  readonly param: string;
}

export interface RewriteContext extends PlaylistContext {
  readonly sessionId: string;
}

/** A compiled playlist: `fixed` with the session ID inserted at each offset of `slots`. */
export interface PlaylistTemplate {
  readonly fixed: Buffer;
  /** Byte offsets into `fixed`, ascending. */
  readonly slots: readonly number[];
}

/**
 * Tags whose attributes name a resource the player requests (rfc8216bis
 * §4.4.4-§4.4.6; X-ASSET-URI / X-ASSET-LIST of HLS interstitials in
 * EXT-X-DATERANGE). Attribute names are case-sensitive (§4.2).
 */
const URI_ATTRIBUTES: ReadonlyMap<string, readonly string[]> = new Map([
  ['EXT-X-KEY', ['URI']],
  ['EXT-X-SESSION-KEY', ['URI']],
  ['EXT-X-MAP', ['URI']],
  ['EXT-X-PART', ['URI']],
  ['EXT-X-PRELOAD-HINT', ['URI']],
  ['EXT-X-RENDITION-REPORT', ['URI']],
  ['EXT-X-MEDIA', ['URI']],
  ['EXT-X-I-FRAME-STREAM-INF', ['URI']],
  ['EXT-X-SESSION-DATA', ['URI']],
  ['EXT-X-CONTENT-STEERING', ['SERVER-URI']],
  ['EXT-X-DATERANGE', ['X-ASSET-URI', 'X-ASSET-LIST']],
]);

const EXTM3U = Buffer.from('#EXTM3U', 'latin1');
const UTF8_BOM = '\xEF\xBB\xBF';
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;

/** True when the body looks like an HLS playlist: after an optional BOM and blank lines, `#EXTM3U`. */
export function isPlaylistBody(body: Buffer | string): boolean {
  if (typeof body === 'string') return body.trimStart().startsWith('#EXTM3U');
  let i = body.length >= 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? 3 : 0;
  while (i < body.length && (isBlank(body[i]!) || body[i] === 10)) i++;
  return body.length - i >= EXTM3U.length && body.compare(EXTM3U, 0, EXTM3U.length, i, i + EXTM3U.length) === 0;
}

/** Parses a playlist once; the result is the same for every session and can be shared. */
export function compilePlaylist(body: Buffer | string, ctx: PlaylistContext): PlaylistTemplate {
  const s = (typeof body === 'string' ? Buffer.from(body, 'utf8') : body).toString('latin1');
  const out = new TemplateBuilder();
  const upstream = new UpstreamMatcher(ctx.upstreamOrigin);
  let pos = s.startsWith(UTF8_BOM) ? UTF8_BOM.length : 0;
  out.text(s.slice(0, pos));
  while (pos < s.length) {
    const nl = s.indexOf('\n', pos);
    const lineEnd = nl === -1 ? s.length : nl;
    let a = pos;
    let b = lineEnd;
    while (a < b && isBlank(s.charCodeAt(a))) a++;
    while (b > a && isBlank(s.charCodeAt(b - 1))) b--;
    if (a === b || s.charCodeAt(a) === 35 /* # */) {
      if (b - a > 4 && s.startsWith('#EXT', a)) compileTag(s, pos, a, b, lineEnd, ctx.param, upstream, out);
      else out.text(s.slice(pos, lineEnd));
    } else {
      // A URI line: written trimmed, as players read it; a CRLF line keeps its CR.
      out.uri(s.slice(a, b), ctx.param, upstream);
      if (s.charCodeAt(lineEnd - 1) === 13 /* \r */) out.text('\r');
    }
    if (nl !== -1) out.text('\n');
    pos = lineEnd + 1;
  }
  return out.build();
}

/** One session's playlist: the template's bytes with `sessionId` at every slot. Copies only. */
export function renderPlaylist(template: PlaylistTemplate, sessionId: string): Buffer {
  const { fixed, slots } = template;
  if (slots.length === 0) return fixed;
  const id = Buffer.from(sessionId, 'utf8');
  const out = Buffer.allocUnsafe(fixed.length + slots.length * id.length);
  let at = 0;
  let from = 0;
  for (const slot of slots) {
    at += fixed.copy(out, at, from, slot);
    at += id.copy(out, at);
    from = slot;
  }
  fixed.copy(out, at, from);
  return out;
}

/** compile + render in one call, on text (tests, tools). The proxy compiles once and renders per session. */
export function rewritePlaylist(text: string, ctx: RewriteContext): string {
  return renderPlaylist(compilePlaylist(text, ctx), ctx.sessionId).toString('utf8');
}

/**
 * One URI reference as a playlist would carry it: relative and root-relative
 * ones stay relative to the edge; absolute ones pointing at the upstream are
 * made root-relative so the player comes back through the edge; URIs of other
 * hosts (a CDN, a key server) and non-HTTP schemes (`data:`, `skd:`) are left
 * alone. A session parameter the URI already carries is replaced by ours.
 */
export function rewriteUri(uri: string, ctx: RewriteContext): string {
  const parts = compileUri(uri, ctx.param, new UpstreamMatcher(ctx.upstreamOrigin));
  return parts === undefined ? uri : `${parts[0]}${ctx.sessionId}${parts[1]}`;
}

/** Accumulates fixed text (latin1) and slot offsets. */
class TemplateBuilder {
  private readonly parts: string[] = [];
  private length = 0;
  private readonly slots: number[] = [];

  text(t: string): void {
    if (t === '') return;
    this.parts.push(t);
    this.length += t.length;
  }

  /** A URI: rewritten around a slot, or copied as it is when it is not ours to mark. */
  uri(uri: string, param: string, upstream: UpstreamMatcher): void {
    const parts = compileUri(uri, param, upstream);
    if (parts === undefined) {
      this.text(uri);
      return;
    }
    this.text(parts[0]);
    this.slots.push(this.length);
    this.text(parts[1]);
  }

  build(): PlaylistTemplate {
    return { fixed: Buffer.from(this.parts.join(''), 'latin1'), slots: this.slots };
  }
}

/**
 * A tag line s[lineStart, lineEnd) whose trimmed text is s[a, b). Only the
 * URI-valued attributes of the tags in URI_ATTRIBUTES are rewritten; the
 * attribute list is read as §4.2 writes it (NAME=value, comma-separated,
 * quoted strings may hold commas and `=`), with optional blanks around names.
 * Where the list stops making sense (an unterminated quote, text after a
 * quoted string), the rest of the line is copied untouched.
 */
function compileTag(s: string, lineStart: number, a: number, b: number, lineEnd: number, param: string, upstream: UpstreamMatcher, out: TemplateBuilder): void {
  let colon = s.indexOf(':', a);
  if (colon === -1 || colon >= b) colon = b;
  const uriNames = URI_ATTRIBUTES.get(s.slice(a + 1, colon));
  let copied = lineStart;
  if (uriNames !== undefined) {
    let i = colon + 1;
    while (i < b) {
      while (i < b && isBlank(s.charCodeAt(i))) i++;
      const nameStart = i;
      while (i < b && s.charCodeAt(i) !== 61 /* = */ && s.charCodeAt(i) !== 44 /* , */ && s.charCodeAt(i) !== 34 /* " */) i++;
      if (i >= b || s.charCodeAt(i) !== 61) break;
      let nameEnd = i;
      while (nameEnd > nameStart && isBlank(s.charCodeAt(nameEnd - 1))) nameEnd--;
      const name = s.slice(nameStart, nameEnd);
      i++;
      while (i < b && isBlank(s.charCodeAt(i))) i++;
      if (s.charCodeAt(i) === 34) {
        const close = s.indexOf('"', i + 1);
        if (close === -1 || close >= b) break;
        const valueStart = i + 1;
        i = close + 1;
        while (i < b && isBlank(s.charCodeAt(i))) i++;
        if (i < b && s.charCodeAt(i) !== 44) break;
        if (uriNames.includes(name)) {
          out.text(s.slice(copied, valueStart));
          out.uri(s.slice(valueStart, close), param, upstream);
          copied = close;
        }
      } else {
        while (i < b && s.charCodeAt(i) !== 44 && s.charCodeAt(i) !== 34) i++;
        if (s.charCodeAt(i) === 34) break;
      }
      i++; // past the comma
    }
  }
  out.text(s.slice(copied, lineEnd));
}

/**
 * [text before the session ID, text after it] for a URI the edge marks, or
 * undefined to leave it as it is. Any parameter the URI already has under our
 * name (percent-decoded, as the middleware and our own parser read it) goes:
 * a player must see exactly one marker, ours.
 */
function compileUri(uri: string, param: string, upstream: UpstreamMatcher): readonly [string, string] | undefined {
  const ref = upstream.edgeReference(uri);
  if (ref === undefined) return undefined;
  const hash = ref.indexOf('#');
  const base = hash === -1 ? ref : ref.slice(0, hash);
  const fragment = hash === -1 ? '' : ref.slice(hash);
  const q = base.indexOf('?');
  if (q === -1) return [`${base}?${param}=`, fragment];
  const kept = removeParamNamed(base.slice(q + 1), param, false);
  const sep = kept === '' || kept.endsWith('&') ? '' : '&';
  return [`${base.slice(0, q + 1)}${kept}${sep}${param}=`, fragment];
}

/** Decides where a URI reference leads, as a WHATWG URL parser (browsers, hls.js) would resolve it. */
class UpstreamMatcher {
  private readonly scheme: string;
  private readonly origins: readonly string[];

  constructor(upstreamOrigin: string) {
    this.scheme = upstreamOrigin.slice(0, upstreamOrigin.indexOf(':'));
    this.origins = [upstreamOrigin, withDefaultPort(upstreamOrigin)];
  }

  /**
   * The reference the edge should serve `uri` as: itself when relative, the
   * path-and-query when it is an absolute URL of the upstream, undefined when
   * it leads elsewhere (or cannot be told apart from something that does).
   * Judged on the URI without tabs and newlines, which URL parsers drop, and
   * with `\` as `/` and any run of slashes before a host, as they read them.
   */
  edgeReference(uri: string): string | undefined {
    if (uri === '') return undefined;
    const view = /[\t\n\r]/.test(uri) ? uri.replace(/[\t\n\r]/g, '') : uri;
    let scheme = this.scheme;
    let i = 0;
    const m = SCHEME.exec(view);
    if (m !== null) {
      scheme = m[0].slice(0, -1).toLowerCase();
      if (scheme !== 'http' && scheme !== 'https') return undefined;
      i = m[0].length;
      // `http:seg.ts` is relative or another host depending on the parser: not ours to mark.
      if (!isSlash(view.charCodeAt(i))) return undefined;
    } else if (!(isSlash(view.charCodeAt(0)) && isSlash(view.charCodeAt(1)))) {
      return uri; // relative or root-relative
    }
    while (i < view.length && isSlash(view.charCodeAt(i))) i++;
    const authorityStart = i;
    while (i < view.length && !isAuthorityEnd(view.charCodeAt(i))) i++;
    const origin = `${scheme}://${view.slice(authorityStart, i).toLowerCase()}`;
    if (!this.origins.includes(origin)) return undefined;
    const rest = view.slice(i);
    if (rest === '' || !isSlash(rest.charCodeAt(0))) return `/${rest}`;
    // A path starting `//` would name a host; `/.//x` is the same path on the edge (RFC 3986 §5.2.4).
    return isSlash(rest.charCodeAt(1)) ? `/.//${rest.slice(2)}` : `/${rest.slice(1)}`;
  }
}

/** `http://h` ↔ `http://h:80`: players and origins write both. */
function withDefaultPort(origin: string): string {
  if (origin.startsWith('http://') && origin.endsWith(':80')) return origin.slice(0, -3);
  if (origin.startsWith('https://') && origin.endsWith(':443')) return origin.slice(0, -4);
  if (/:\d+$/.test(origin.slice(origin.indexOf('//') + 2).replace(/^\[.*\]/, ''))) return origin;
  return origin.startsWith('https:') ? `${origin}:443` : `${origin}:80`;
}

/** Space, tab, CR, VT, FF: what trimming a line removes (not NBSP: in latin1 that byte may be half a UTF-8 character). */
function isBlank(c: number): boolean {
  return c === 32 || c === 9 || c === 13 || c === 11 || c === 12;
}

function isSlash(c: number): boolean {
  return c === 47 /* / */ || c === 92 /* \ */;
}

function isAuthorityEnd(c: number): boolean {
  return c === 47 || c === 92 || c === 63 /* ? */ || c === 35 /* # */;
}
