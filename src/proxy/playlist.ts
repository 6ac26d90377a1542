/**
 * HLS playlist rewriting: every URI the player will follow gets the session
 * marker, so playlist and segment requests after the first are tied to the
 * session and served from the decision store (issue "The edge, end to end",
 * §2).
 *
 * Two steps, so that one upstream playlist can serve every session watching it
 * (the live micro-cache of the performance issue):
 * - compilePlaylist() parses the playlist once into fixed text and the places
 *   ("slots") where a session ID goes;
 * - renderPlaylist() builds one session's body from it: a join, no parsing.
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

/**
 * A compiled playlist: the session ID goes between each two pieces (one slot
 * per rewritten URI). Pieces are latin1 strings, one char per byte: joining
 * them with the ID and encoding once is the cheapest render measured
 * (bench/playlist-rewrite.ts), cheaper than copying Buffer ranges.
 */
export interface PlaylistTemplate {
  readonly pieces: readonly string[];
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
  const out = new TemplateBuilder(s, ctx.param, new UpstreamMatcher(ctx.upstreamOrigin));
  let pos = s.startsWith(UTF8_BOM) ? UTF8_BOM.length : 0;
  while (pos < s.length) {
    const nl = s.indexOf('\n', pos);
    const lineEnd = nl === -1 ? s.length : nl;
    let a = pos;
    let b = lineEnd;
    while (a < b && isBlank(s.charCodeAt(a))) a++;
    while (b > a && isBlank(s.charCodeAt(b - 1))) b--;
    if (a === b) {
      // blank line
    } else if (s.charCodeAt(a) === 35 /* # */) {
      if (s.startsWith('#EXT-X-', a)) compileTag(s, a, b, out);
    } else {
      // A URI line: written trimmed, as players read it; a CRLF line keeps its CR.
      out.uri(pos, a, b, s.charCodeAt(lineEnd - 1) === 13 /* \r */ ? lineEnd - 1 : lineEnd);
    }
    pos = lineEnd + 1;
  }
  return out.build();
}

/** One session's playlist: the template's pieces joined by `sessionId`. No parsing. */
export function renderPlaylist(template: PlaylistTemplate, sessionId: string): Buffer {
  const { pieces } = template;
  if (pieces.length === 1) return Buffer.from(pieces[0]!, 'latin1');
  return Buffer.from(pieces.join(isAscii(sessionId) ? sessionId : Buffer.from(sessionId, 'utf8').toString('latin1')), 'latin1');
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
  const bytes = isAscii(uri) ? uri : Buffer.from(uri, 'utf8').toString('latin1');
  const parts = compileUri(bytes, ctx.param, new UpstreamMatcher(ctx.upstreamOrigin));
  if (parts === undefined) return uri;
  const out = `${parts[0]}${ctx.sessionId}${parts[1]}`;
  return bytes === uri ? out : Buffer.from(out, 'latin1').toString('utf8');
}

/**
 * Builds the template from the source text `s` (latin1): everything is copied
 * but the ranges a URI rewrite replaces, so a line without a URI costs no
 * more than scanning it.
 */
class TemplateBuilder {
  private readonly pieces: string[] = [];
  private piece = '';
  private copied = 0;

  constructor(
    private readonly s: string,
    private readonly param: string,
    private readonly upstream: UpstreamMatcher,
  ) {}

  /** A URI line: s[a, b) is the URI, s[start, end) what it replaces (the line but for its CR). */
  uri(start: number, a: number, b: number, end: number): void {
    const uri = this.s.slice(a, b);
    const parts = compileUri(uri, this.param, this.upstream);
    if (parts !== undefined) this.slot(start, end, parts);
    else if (a !== start || b !== end) this.replace(start, end, uri);
  }

  /** A quoted attribute value s[a, b) that is a URI. */
  attribute(a: number, b: number): void {
    const parts = compileUri(this.s.slice(a, b), this.param, this.upstream);
    if (parts !== undefined) this.slot(a, b, parts);
  }

  build(): PlaylistTemplate {
    this.copyTo(this.s.length);
    this.pieces.push(this.piece);
    return { pieces: this.pieces };
  }

  private slot(start: number, end: number, [head, tail]: readonly [string, string]): void {
    this.copyTo(start);
    this.pieces.push(this.piece + head);
    this.piece = tail;
    this.copied = end;
  }

  private replace(start: number, end: number, text: string): void {
    this.copyTo(start);
    this.piece += text;
    this.copied = end;
  }

  private copyTo(end: number): void {
    if (end > this.copied) this.piece += this.s.slice(this.copied, end);
    this.copied = end;
  }
}

/**
 * A tag line whose trimmed text is s[a, b). Only the URI-valued attributes of
 * the tags in URI_ATTRIBUTES are rewritten; the attribute list is read as
 * §4.2 writes it (NAME=value, comma-separated, quoted strings may hold commas
 * and `=`), with optional blanks around names. Where the list stops making
 * sense (an unterminated quote, text after a quoted string), the rest of the
 * line is left untouched.
 */
function compileTag(s: string, a: number, b: number, out: TemplateBuilder): void {
  let colon = s.indexOf(':', a);
  if (colon === -1 || colon >= b) colon = b;
  const uriNames = URI_ATTRIBUTES.get(s.slice(a + 1, colon));
  if (uriNames === undefined) return;
  let i = colon + 1;
  while (i < b) {
    while (i < b && isBlank(s.charCodeAt(i))) i++;
    const nameStart = i;
    while (i < b && s.charCodeAt(i) !== 61 /* = */ && s.charCodeAt(i) !== 44 /* , */ && s.charCodeAt(i) !== 34 /* " */) i++;
    if (i >= b || s.charCodeAt(i) !== 61) return;
    let nameEnd = i;
    while (nameEnd > nameStart && isBlank(s.charCodeAt(nameEnd - 1))) nameEnd--;
    i++;
    while (i < b && isBlank(s.charCodeAt(i))) i++;
    if (s.charCodeAt(i) === 34) {
      const close = s.indexOf('"', i + 1);
      if (close === -1 || close >= b) return;
      const valueStart = i + 1;
      i = close + 1;
      while (i < b && isBlank(s.charCodeAt(i))) i++;
      if (i < b && s.charCodeAt(i) !== 44) return;
      if (uriNames.includes(s.slice(nameStart, nameEnd))) out.attribute(valueStart, close);
    } else {
      while (i < b && s.charCodeAt(i) !== 44 && s.charCodeAt(i) !== 34) i++;
      if (i < b && s.charCodeAt(i) === 34) return;
    }
    i++; // past the comma
  }
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

  constructor(private readonly origin: string) {
    this.scheme = origin.slice(0, origin.indexOf(':'));
  }

  /**
   * The reference the edge should serve `uri` as: itself (minus what a parser
   * drops) when relative, the path and query when it is an absolute URL of
   * the upstream, undefined when
   * it leads elsewhere or cannot be told apart from something that does.
   * Judged as a WHATWG URL parser (browsers, hls.js) reads it: without tabs,
   * newlines and surrounding controls or spaces, `\` as `/`, any run of
   * slashes before a host; the host itself is compared by that parser, so
   * `HTTP://127.1:8000` and `http://u@127.0.0.1:08000` are the upstream too.
   */
  edgeReference(uri: string): string | undefined {
    const view = whatwgView(uri);
    if (view === '') return undefined;
    let i = schemeLength(view);
    if (i > 0) {
      const scheme = view.slice(0, i).toLowerCase();
      if (scheme !== 'http' && scheme !== 'https') return undefined;
      i++; // past the colon
      // `http:seg.ts` and `http:/x` are a path on the edge or another host depending on the
      // scheme the player reached the edge by (WHATWG "special relative or authority"): not ours to mark.
      if (!isSlash(view.charCodeAt(i)) || !isSlash(view.charCodeAt(i + 1))) return undefined;
      if (!this.isUpstream(view)) return undefined;
    } else if (isSlash(view.charCodeAt(0)) && isSlash(view.charCodeAt(1))) {
      if (!this.isUpstream(`${this.scheme}:${view}`)) return undefined;
    } else {
      // Relative or root-relative. Surrounding blanks go: a marker after a trailing space would move it into the path.
      return view;
    }
    while (i < view.length && isSlash(view.charCodeAt(i))) i++;
    while (i < view.length && !isAuthorityEnd(view.charCodeAt(i))) i++;
    const rest = view.slice(i);
    if (rest === '' || !isSlash(rest.charCodeAt(0))) return `/${rest}`;
    // A path starting `//` would name a host; `/.//x` is the same path on the edge (RFC 3986 §5.2.4).
    return isSlash(rest.charCodeAt(1)) ? `/.//${rest.slice(2)}` : `/${rest.slice(1)}`;
  }

  private isUpstream(absolute: string): boolean {
    try {
      // The text is latin1 here; a URL parser sees the player's UTF-8 (IDNA maps some non-ASCII hosts to ASCII ones).
      return new URL(isAscii(absolute) ? absolute : Buffer.from(absolute, 'latin1').toString('utf8')).origin === this.origin;
    } catch {
      return false;
    }
  }
}

/** `uri` as a WHATWG URL parser starts from: no leading or trailing C0 control or space, no tab or newline anywhere. */
function whatwgView(uri: string): string {
  let a = 0;
  let b = uri.length;
  while (a < b && uri.charCodeAt(a) <= 32) a++;
  while (b > a && uri.charCodeAt(b - 1) <= 32) b--;
  const view = a === 0 && b === uri.length ? uri : uri.slice(a, b);
  return hasTabOrNewline(view) ? view.replace(/[\t\n\r]/g, '') : view;
}

/** Space, tab, CR, VT, FF: what trimming a line removes (not NBSP: in latin1 that byte may be half a UTF-8 character). */
function isBlank(c: number): boolean {
  return c === 32 || c === 9 || c === 13 || c === 11 || c === 12;
}

/** Length of the `scheme` of a `scheme:` prefix (RFC 3986 §3.1), 0 when there is none. */
function schemeLength(uri: string): number {
  const first = uri.charCodeAt(0) | 32;
  if (first < 97 || first > 122) return 0;
  for (let i = 1; i < uri.length; i++) {
    const c = uri.charCodeAt(i);
    if (c === 58 /* : */) return i;
    const l = c | 32;
    if (!((l >= 97 && l <= 122) || (c >= 48 && c <= 57) || c === 43 || c === 45 || c === 46)) return 0;
  }
  return 0;
}

function hasTabOrNewline(uri: string): boolean {
  for (let i = 0; i < uri.length; i++) {
    const c = uri.charCodeAt(i);
    if (c === 9 || c === 10 || c === 13) return true;
  }
  return false;
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 127) return false;
  return true;
}

function isSlash(c: number): boolean {
  return c === 47 /* / */ || c === 92 /* \ */;
}

function isAuthorityEnd(c: number): boolean {
  return c === 47 || c === 92 || c === 63 /* ? */ || c === 35 /* # */;
}
