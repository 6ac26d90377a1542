/**
 * The admin API (sessions table, kick, stats, the status page's overview and
 * time series). The sessions table, a session and a kick are the fleet's
 * (every edge on the same store: session/fleet.ts); the counts are this
 * edge's. Pure request → response mapping over the registry and the
 * sampler; the HTTP plumbing (including writing a sessions page), the Host
 * rule and the token check live in admin/server.ts.
 */
import type { FleetPage } from '../session/fleet.js';
import type { SessionRegistry } from '../session/registry.js';
import { isWellFormedSessionId } from '../session/session.js';
import { STORE_TIERS } from '../session/store.js';
import { ERROR_CODES, type ErrorCode } from '../errors.js';
import { decodePathSegment } from './request.js';
import type { StatusSampler } from './sampler.js';
import { parseListQuery } from './session-list.js';

/** A JSON body, or a page of the fleet's sessions table (written by server.ts a piece at a time). */
export type ApiResponse = { readonly status: number; readonly body: unknown } | { readonly status: 200; readonly page: FleetPage };

const SESSION_PATH = /^\/api\/sessions\/([^/]*)$/;

function error(code: ErrorCode, detail?: string): ApiResponse {
  return { status: ERROR_CODES[code].status, body: { error: code, message: detail ?? ERROR_CODES[code].text } };
}

export interface ApiDeps {
  readonly sessions: SessionRegistry;
  readonly sampler: StatusSampler;
}

/**
 * Synchronous for what this edge answers alone; a promise for what asks the
 * fleet (the sessions list, a session or a kick this edge does not hold).
 */
export function handleApi(method: string, path: string, query: URLSearchParams, deps: ApiDeps): ApiResponse | Promise<ApiResponse> {
  const { sessions, sampler } = deps;
  if (path === '/api/sessions') {
    if (method !== 'GET') return error('EDGE_ERR_METHOD_NOT_ALLOWED');
    const parsed = parseListQuery(query);
    if (!parsed.ok) return error('EDGE_ERR_BAD_REQUEST', parsed.message);
    const { filter, after, limit } = parsed.request;
    return sessions.fleet.list(filter, after, limit).then((page) => ({ status: 200, page }));
  }
  if (path === '/api/stats') {
    if (method !== 'GET') return error('EDGE_ERR_METHOD_NOT_ALLOWED');
    return {
      status: 200,
      body: { sessions: sessions.table.size, byKind: sessions.table.countByKind(), byChannel: sessions.table.countByChannel(), decisionStore: { entries: sessions.store.size, evictions: sessions.store.evictions, byTier: Object.fromEntries(STORE_TIERS.map((t) => [t, sessions.store.stats(t)])) } },
    };
  }
  if (path === '/api/overview') {
    if (method !== 'GET') return error('EDGE_ERR_METHOD_NOT_ALLOWED');
    return { status: 200, body: sampler.overview(sessions.table.countByKind()) };
  }
  if (path === '/api/timeseries') {
    if (method !== 'GET') return error('EDGE_ERR_METHOD_NOT_ALLOWED');
    return { status: 200, body: sampler.timeseries() };
  }
  const m = SESSION_PATH.exec(path);
  if (m !== null) {
    const id = decodePathSegment(m[1]!);
    if (id === undefined) return error('EDGE_ERR_BAD_REQUEST', 'bad percent-encoding in the session ID');
    if (!isWellFormedSessionId(id)) return error('EDGE_ERR_BAD_SESSION_ID', 'a session ID is 22 characters of A-Z, a-z, 0-9, "-" and "_"');
    if (method === 'GET') {
      return sessions.find(id).then((found): ApiResponse => {
        if (found === undefined) return error('EDGE_ERR_SESSION_NOT_FOUND');
        if ('ended' in found) return error('EDGE_ERR_SESSION_NOT_FOUND', `session ended on another edge (${found.ended})`);
        return { status: 200, body: found.view };
      });
    }
    if (method === 'DELETE') {
      return sessions.kickAnywhere(id).then((result): ApiResponse => {
        if (result === 'kicked') return { status: 200, body: { kicked: id } };
        return error('EDGE_ERR_SESSION_NOT_FOUND', result === 'unknown' ? 'no such session' : 'session already ended');
      });
    }
    return error('EDGE_ERR_METHOD_NOT_ALLOWED');
  }
  return error('EDGE_ERR_NOT_FOUND');
}
