/**
 * The playlist rewriter as it was before the hardening issue (regex over
 * `URI="…"` in any #EXT line, string in, string out), frozen: the baseline of
 * bench/playlist-rewrite.ts and of the property test that checks the new
 * compile + render gives the same bytes wherever the old output was right.
 * Not used by the edge.
 */
import { appendParam } from '../src/proxy/query.js';

interface RewriteContext {
  /** Upstream origin, lower-case `scheme://host[:port]`: absolute URIs to it become root-relative. */
  readonly upstreamOrigin: string;
  readonly param: string;
  readonly sessionId: string;
}

const URI_ATTRIBUTE = /URI="([^"]*)"/g;

export function legacyRewritePlaylist(text: string, ctx: RewriteContext): string {
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const trimmed = line.trim();
    if (trimmed === '') continue;
    if (trimmed.charCodeAt(0) === 35 /* # */) {
      if (trimmed.startsWith('#EXT') && trimmed.includes('URI="')) {
        lines[i] = line.replace(URI_ATTRIBUTE, (_m, uri: string) => `URI="${legacyRewriteUri(uri, ctx)}"`);
      }
      continue;
    }
    const cr = line.endsWith('\r') ? '\r' : '';
    lines[i] = legacyRewriteUri(trimmed, ctx) + cr;
  }
  return lines.join('\n');
}

/**
 * One URI reference: relative and root-relative ones stay relative to the
 * edge; absolute ones pointing at the upstream are made root-relative so the
 * player comes back through the edge; URIs of other hosts (a CDN, a key
 * server) and non-HTTP schemes (`data:`, `skd:`) are left alone.
 */
export function legacyRewriteUri(uri: string, ctx: RewriteContext): string {
  if (uri === '') return uri;
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(uri);
  if (scheme !== null || uri.startsWith('//')) {
    const absolute = uri.startsWith('//') ? `${ctx.upstreamOrigin.slice(0, ctx.upstreamOrigin.indexOf(':'))}:${uri}` : uri;
    const proto = absolute.slice(0, absolute.indexOf(':')).toLowerCase();
    if (proto !== 'http' && proto !== 'https') return uri;
    const pathStart = absolute.indexOf('/', absolute.indexOf('//') + 2);
    const origin = (pathStart === -1 ? absolute : absolute.slice(0, pathStart)).toLowerCase();
    if (origin !== ctx.upstreamOrigin && origin !== withDefaultPort(ctx.upstreamOrigin)) return uri;
    const rest = pathStart === -1 ? '/' : absolute.slice(pathStart);
    return appendParam(rest, ctx.param, ctx.sessionId);
  }
  return appendParam(uri, ctx.param, ctx.sessionId);
}

/** `http://h` ↔ `http://h:80`: players and origins write both. */
function withDefaultPort(origin: string): string {
  if (/:\d+$/.test(origin)) return origin.replace(/^(http:\/\/[^/]+):80$|^(https:\/\/[^/]+):443$/, '$1$2');
  return origin.startsWith('https:') ? `${origin}:443` : `${origin}:80`;
}
