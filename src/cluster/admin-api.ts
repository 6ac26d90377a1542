/**
 * The admin API of the primary (`--workers N`): the same routes and answers
 * as admin/api.ts, over the whole host.
 * - Without Redis the session list comes from the PrimaryState (every
 *   worker's published sessions, each once); a session's details and kicks
 *   are asked of every worker (a kick reaches every copy of an HLS session:
 *   round-robin spreads one player over several workers).
 * - With `--store redis://` the fleet's table is in Redis, where the
 *   workers publish: the session routes are answered by a worker's own API
 *   (which reads Redis and kicks fleet-wide), and the counts are the sums of
 *   the workers' tables.
 */
import { ERROR_CODES, type ErrorCode } from '../errors.js';
import type { ApiResponse } from '../admin/api.js';
import { decodePathSegment } from '../admin/request.js';
import type { StatusSampler } from '../admin/sampler.js';
import type { ApiHandler } from '../admin/server.js';
import { parseListQuery } from '../admin/session-list.js';
import { isWellFormedSessionId, type SessionKind } from '../session/session.js';
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
  /** The first worker's answer (in slot order), or undefined when none answers. */
  readonly askOne: (op: Op, timeoutMs: number) => Promise<OpAnswer | undefined>;
  readonly sampler: StatusSampler;
  readonly workers: () => { readonly configured: number; readonly running: number; readonly ready: number };
  /** Where the fleet's table is: the primary (IPC), or Redis (`--store redis://`). */
  readonly table: 'primary' | 'redis';
}

export function createPrimaryApi(deps: PrimaryApiDeps): ApiHandler {
  const { state, askAll, sampler } = deps;
  return async function primaryApi(method: string, path: string, query: URLSearchParams): Promise<ApiResponse> {
    if (deps.table === 'redis' && (path === '/api/sessions' || SESSION_PATH.test(path))) {
      const answer = await deps.askOne({ op: 'api', method, path, query: query.toString() }, API_TIMEOUT_MS);
      if (answer?.op !== 'api') return error('EDGE_ERR_WORKERS_UNAVAILABLE');
      return answer.page !== undefined ? { status: 200, page: answer.page } : { status: answer.status, body: answer.body };
    }
    if (path === '/api/sessions') {
      if (method !== 'GET') return error('EDGE_ERR_METHOD_NOT_ALLOWED');
      const parsed = parseListQuery(query);
      if (!parsed.ok) return error('EDGE_ERR_BAD_REQUEST', parsed.message);
      const { filter, after, limit } = parsed.request;
      return { status: 200, page: state.list(filter, after, limit) };
    }
    if (path === '/api/stats') {
      if (method !== 'GET') return error('EDGE_ERR_METHOD_NOT_ALLOWED');
      const figures = await workerFigures(askAll);
      const counts = deps.table === 'primary' ? { sessions: state.size, byKind: state.countByKind(), byChannel: state.countByChannel() } : figures.tables;
      return { status: 200, body: { ...counts, decisionStore: figures.decisionStore, workers: deps.workers() } };
    }
    if (path === '/api/overview') {
      if (method !== 'GET') return error('EDGE_ERR_METHOD_NOT_ALLOWED');
      return { status: 200, body: sampler.overview(deps.table === 'primary' ? state.countByKind() : (await workerFigures(askAll)).tables.byKind) };
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

interface Counts {
  sessions: number;
  byKind: Record<SessionKind, number>;
  byChannel: Record<string, Record<SessionKind, number>>;
}

/** The decision stores of every worker, summed (each worker keeps its own), and their tables' counts, summed. */
async function workerFigures(askAll: PrimaryApiDeps['askAll']): Promise<{ decisionStore: { entries: number; evictions: number; byTier: Record<string, { entries: number; evictions: number }> }; tables: Counts }> {
  const decisionStore = { entries: 0, evictions: 0, byTier: {} as Record<string, { entries: number; evictions: number }> };
  const tables: Counts = { sessions: 0, byKind: { hls: 0, mpegts: 0 }, byChannel: {} };
  for (const answer of (await askAll({ op: 'stats' }, API_TIMEOUT_MS)).values()) {
    if (answer?.op !== 'stats') continue;
    decisionStore.entries += answer.entries;
    decisionStore.evictions += answer.evictions;
    for (const [tier, t] of Object.entries(answer.byTier)) {
      const sum = (decisionStore.byTier[tier] ??= { entries: 0, evictions: 0 });
      sum.entries += t.entries;
      sum.evictions += t.evictions;
    }
    tables.sessions += answer.sessions;
    tables.byKind.hls += answer.byKind.hls;
    tables.byKind.mpegts += answer.byKind.mpegts;
    for (const [channel, c] of Object.entries(answer.byChannel)) {
      const sum = (tables.byChannel[channel] ??= { hls: 0, mpegts: 0 });
      sum.hls += c.hls;
      sum.mpegts += c.mpegts;
    }
  }
  return { decisionStore, tables };
}
