/**
 * `check`, step 1: what the edge reads from a viewer's request, with the
 * functions the request handler uses (proxy/handler.ts), in its order: the
 * path normalized, the query checked, the Host headers, the channel pattern,
 * the client IP, the session marker and the token. A request the edge
 * refuses gets the same status, code and reason the handler would send.
 * Pure: no I/O.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { BlockList } from 'node:net';
import type { EdgeConfig } from '../config/schema.js';
import { ERROR_CODES, type ErrorCode } from '../errors.js';
import type { RequestKind } from '../metrics/metrics.js';
import { clientIpOf, normalizeIp } from '../proxy/client-ip.js';
import { classifyRequest } from '../proxy/handler.js';
import { hasDuplicateHost } from '../proxy/headers.js';
import { normalizePath } from '../proxy/path.js';
import { checkQuery, findParam, removeParam, splitTarget } from '../proxy/query.js';
import { isRefusal } from '../proxy/refusal.js';

/** The viewer's request as `check` was given it. */
export interface ViewerRequest {
  /** Request target: path and query, as a player would send it. */
  readonly target: string;
  /** Request headers in order, as a player would send them (Host, User-Agent, Referer…). */
  readonly rawHeaders: readonly string[];
  /** The address the request comes from (the socket peer). */
  readonly peerIp: string;
}

/** The URL argument split like a player does: the authority becomes Host, the fragment is never sent. */
export function parseViewerUrl(url: string): { host: string | undefined; target: string; droppedFragment: boolean } | { error: string } {
  let rest: string;
  let host: string | undefined;
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)(.*)$/s.exec(url);
  if (m !== null) {
    if (!/^https?$/i.test(m[1]!)) return { error: `${JSON.stringify(m[1])}: the edge serves http (or https behind a proxy)` };
    // userinfo is never sent in Host.
    host = m[2]!.slice(m[2]!.lastIndexOf('@') + 1);
    if (host === '') return { error: 'the URL has no host' };
    rest = m[3]!;
    if (!rest.startsWith('/')) rest = `/${rest}`;
  } else if (url.startsWith('/')) {
    rest = url;
  } else {
    return { error: `${JSON.stringify(url)} is neither a URL nor a path: give e.g. 'http://edge/play/a001/index.m3u8?token=123'` };
  }
  const hash = rest.indexOf('#');
  return { host, target: hash === -1 ? rest : rest.slice(0, hash), droppedFragment: hash !== -1 };
}

/** The request refused before any authorization: what the viewer gets. */
export interface Refused {
  readonly ok: false;
  readonly status: number;
  readonly code: ErrorCode;
  /** The refusal reason the error body carries (proxy/refusal.ts), when there is one. */
  readonly reason: string | undefined;
  /** Which reading refused it: `path`, `query`, `host`, `channel`, `marker`, `token`, `health`. */
  readonly step: string;
  readonly path: string | undefined;
}

export interface Identified {
  readonly ok: true;
  /** Normalized path: what the channel is matched against and the middleware gets as X-Real-Path. */
  readonly path: string;
  /** The path as sent, when normalization changed it. */
  readonly rawPath: string;
  /** The query as sent (it carries the marker, if any). */
  readonly query: string;
  /** The query passed on to the middleware and the origin (the marker removed). */
  readonly upstreamQuery: string;
  readonly channel: string;
  readonly kind: RequestKind;
  readonly sessionKind: 'hls' | 'mpegts';
  readonly clientIp: string;
  /** Where the client IP came from: the peer, or a header of a trusted proxy. */
  readonly clientIpFrom: 'peer' | 'forwarded';
  readonly userAgent: string;
  readonly host: string;
  readonly referer: string;
  /** The token as the middleware reads it (decoded), or undefined when the query has none. */
  readonly token: string | undefined;
  /** The session marker value, when the URL carries one. */
  readonly marker: string | undefined;
}

function refused(code: ErrorCode, step: string, reason: string | undefined, path: string | undefined): Refused {
  return { ok: false, status: ERROR_CODES[code].status, code, reason, step, path };
}

/** IncomingHttpHeaders as Node builds them from raw headers: names lower case; duplicates of most dropped, of X-Forwarded-For joined. */
export function headersOf(rawHeaders: readonly string[]): IncomingHttpHeaders {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    const value = rawHeaders[i + 1]!;
    if (out[name] === undefined) out[name] = value;
    else if (name === 'x-forwarded-for') out[name] += `, ${value}`;
  }
  return out;
}

export function identify(request: ViewerRequest, config: EdgeConfig, trustedProxies: BlockList | undefined): Identified | Refused {
  const { path: rawPath, query } = splitTarget(request.target);
  const path = normalizePath(rawPath);
  if (isRefusal(path)) return refused('EDGE_ERR_BAD_REQUEST', 'path', path.refused, undefined);
  const unreadable = checkQuery(query);
  if (unreadable !== undefined) return refused('EDGE_ERR_BAD_REQUEST', 'query', unreadable.refused, path);
  if (hasDuplicateHost(request.rawHeaders)) return refused('EDGE_ERR_BAD_REQUEST', 'host', 'duplicate_host', path);
  if (config.health.public && (path === '/healthz' || path === '/readyz')) return refused('EDGE_ERR_NOT_FOUND', 'health', 'served by the edge itself (--public-health): not a viewing request', path);
  const pattern = config.session.channelPattern;
  const match = pattern.exec(path);
  const channel = match?.groups?.['channel'];
  if (match === null || channel === undefined || channel === '') return refused('EDGE_ERR_NO_CHANNEL', 'channel', undefined, path);
  const kind = classifyRequest(path, match.groups?.['rest'], pattern.source.includes('(?<rest>'));
  const headers = headersOf(request.rawHeaders);
  const peer = normalizeIp(request.peerIp);
  const clientIp = trustedProxies === undefined ? peer : clientIpOf(request.peerIp, headers, trustedProxies);
  const marker = findParam(query, config.session.param);
  if (isRefusal(marker)) return refused('EDGE_ERR_BAD_REQUEST', 'marker', marker.refused, path);
  const upstreamQuery = marker === undefined ? query : removeParam(query, config.session.param);
  const token = findParam(upstreamQuery, config.session.tokenParam);
  if (isRefusal(token)) return refused('EDGE_ERR_BAD_REQUEST', 'token', token.refused, path);
  return {
    ok: true,
    path,
    rawPath,
    query,
    upstreamQuery,
    channel,
    kind,
    sessionKind: kind === 'stream' ? 'mpegts' : 'hls',
    clientIp,
    clientIpFrom: clientIp === peer ? 'peer' : 'forwarded',
    userAgent: headers['user-agent'] ?? '',
    host: headers.host ?? '',
    referer: headers.referer ?? '',
    token,
    marker,
  };
}
