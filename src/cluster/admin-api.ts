/**
 * The admin API of the primary (`--workers N`): the same routes and answers
 * as admin/api.ts, over the whole host. The session list comes from the
 * PrimaryState (every worker's published sessions, each once); a session's
 * details, kicks and the decision store's figures are asked of every worker
 * (a kick reaches every copy of an HLS session: round-robin spreads one
 * player over several workers).
 */
import { ERROR_CODES, type ErrorCode } from '../errors.js';
import type { ApiResponse } from '../admin/api.js';
import { decodePathSegment } from '../admin/request.js';
import type { StatusSampler } from '../admin/sampler.js';
import type { ApiHandler } from '../admin/server.js';
import { encodeCursor, parseListQuery } from '../admin/session-list.js';
import { isWellFormedSessionId } from '../session/session.js';
import type { Op, OpAnswer } from './protocol.js';
import type { PrimaryState, Slot } from './primary-state.js';

/** How long the API waits for the workers' answers (kick, session details, store figures). */
export const API_TIMEOUT_MS = 2000;

const SESSION_PATH = /^\/api\/sessions\/([^/]*)$/;

function error(code: ErrorCode, detail?: string): ApiResponse {
  return { status: ERROR_CODES[code].status, body: { error: code, message: detail ?? ERROR_CODES[code].text } };
}

export interface PrimaryApiDeps {
  readonly state: PrimaryState;
  readonly askAll: (op: Op, timeoutMs: number) => Promise<Map<Slot, OpAnswer | undefined>>;
  readonly sampler: StatusSampler;
  readonly workers: () => { readonly configured: number; readonly running: number; readonly ready: number };
}

export function createPrimaryApi(deps: PrimaryApiDeps): ApiHandler {
  const { state, askAll, sampler } = deps;
  return async function primaryApi(method: string, path: string, query: URLSearchParams): Promise<ApiResponse> {
    if (path === '/api/sessions') {
      if (method !== 'GET') return error('EDGE_ERR_METHOD_NOT_ALLOWED');
      const parsed = parseListQuery(query);
      if (!parsed.ok) return error('EDGE_ERR_BAD_REQUEST', parsed.message);
      const { filter, after, limit } = parsed.request;
      const page = state.list(filter, after, limit);
      return { status: 200, body: { sessions: page.sessions, total: page.total, nextCursor: page.next === undefined ? null : encodeCursor(page.next) } };
    }
    if (path === '/api/stats') {
      if (method !== 'GET') return error('EDGE_ERR_METHOD_NOT_ALLOWED');
      return { status: 200, body: { sessions: state.size, byKind: state.countByKind(), byChannel: state.countByChannel(), decisionStore: await storeFigures(askAll), workers: deps.workers() } };
    }
    if (path === '/api/overview') {
      if (method !== 'GET') return error('EDGE_ERR_METHOD_NOT_ALLOWED');
      return { status: 200, body: sampler.overview(state.countByKind()) };
    }
    if (path === '/api/timeseries') {
      if (method !== 'GET') return error('EDGE_ERR_METHOD_NOT_ALLOWED');
      return { status: 200, body: sampler.timeseries() };
    }
    const m = SESSION_PATH.exec(path);
    if (m === null) return error('EDGE_ERR_NOT_FOUND');
    const id = decodePathSegment(m[1]!);
    if (id === undefined) return error('EDGE_ERR_BAD_REQUEST', 'bad percent-encoding in the session ID');
    if (!isWellFormedSessionId(id)) return error('EDGE_ERR_BAD_SESSION_ID', 'a session ID is 22 characters of A-Z, a-z, 0-9, "-" and "_"');
    if (method === 'GET') {
      const listed = state.get(id);
      if (listed !== undefined) return { status: 200, body: listed };
      // Not open anywhere: a worker may still keep it (idle, or ended and refused).
      for (const answer of (await askAll({ op: 'get', sessionId: id }, API_TIMEOUT_MS)).values()) {
        if (answer?.op === 'get' && answer.view !== null) return { status: 200, body: answer.view };
      }
      return error('EDGE_ERR_SESSION_NOT_FOUND');
    }
    if (method === 'DELETE') {
      const answers = [...(await askAll({ op: 'kick', sessionId: id }, API_TIMEOUT_MS)).values()];
      if (!answers.some((a) => a?.op === 'kick' && a.found)) return error('EDGE_ERR_SESSION_NOT_FOUND', 'no such live session');
      return { status: 200, body: { kicked: id } };
    }
    return error('EDGE_ERR_METHOD_NOT_ALLOWED');
  };
}

/** The decision stores of every worker, summed (each worker keeps its own). */
async function storeFigures(askAll: PrimaryApiDeps['askAll']): Promise<{ entries: number; evictions: number; byTier: Record<string, { entries: number; evictions: number }> }> {
  const total = { entries: 0, evictions: 0, byTier: {} as Record<string, { entries: number; evictions: number }> };
  for (const answer of (await askAll({ op: 'stats' }, API_TIMEOUT_MS)).values()) {
    if (answer?.op !== 'stats') continue;
    total.entries += answer.entries;
    total.evictions += answer.evictions;
    for (const [tier, t] of Object.entries(answer.byTier)) {
      const sum = (total.byTier[tier] ??= { entries: 0, evictions: 0 });
      sum.entries += t.entries;
      sum.evictions += t.evictions;
    }
  }
  return total;
}
