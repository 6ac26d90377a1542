/**
 * The messages between the primary and its workers (`--workers N`), and
 * their validation. Every message carries `ns: IPC_NAMESPACE`, so anything
 * else on the channel (a library's own cluster messages) is ignored, and
 * every field is checked before use: a message is data from another process,
 * and a bug there must become a dropped message here, not a crash or a
 * wrong count.
 *
 * Worker → primary: the handshake (`hello`, `ready`, `failed`), the fleet's
 * requests (`admit`, `find`, `list`: each with an `id` the reply repeats),
 * one `batch` per flush (publishes, refreshes, unpublishes, releases, ends),
 * and `answer`s to the primary's `op`s.
 * Primary → worker: `config` (answer to `hello`), `reply` to a fleet
 * request, `ended` (ends decided elsewhere), `op` (admin API work, metrics,
 * readiness, reload) and `stop`.
 */
import type { LimitPolicy } from '../config/schema.js';
import type { AdmitAnswer, AdmitRequest, FleetEnd, FleetFound, FleetPage, FleetSessionView } from '../session/fleet.js';
import type { SessionKind } from '../session/session.js';
import type { SessionFilter, SessionView, TablePosition } from '../session/table.js';
import { MAX_TOMBSTONES } from './primary-state.js';

export const IPC_NAMESPACE = 'astra-auth-edge';

/** A session as a worker publishes it: what the primary lists, finds by join key and counts. */
export interface PublishedSession {
  readonly id: string;
  readonly joinKey: number;
  /** The session's current signed marker, when it has one. */
  readonly marker: string | undefined;
  /** ms since epoch: the listing's order. */
  readonly openedAt: number;
  /** When its decision stops being fresh (ms since epoch): how long it stays findable once closed. */
  readonly expiresAt: number;
  readonly lastSeenAt: number;
  readonly requests: number;
  readonly bytes: number;
  readonly view: SessionView;
}

/** The figures that change while a session plays: sent instead of the whole view when nothing else changed. */
export interface SessionTouch {
  readonly id: string;
  readonly lastSeenAt: number;
  readonly requests: number;
  readonly bytes: number;
}

export interface Batch {
  readonly publish: readonly PublishedSession[];
  readonly touch: readonly SessionTouch[];
  readonly unpublish: readonly string[];
  readonly release: readonly { readonly userKey: string; readonly sessionId: string }[];
  readonly end: readonly FleetEnd[];
}

/** What the primary asks a worker (admin API, /metrics, /readyz, SIGHUP). */
export type Op =
  | { readonly op: 'kick'; readonly sessionId: string }
  | { readonly op: 'get'; readonly sessionId: string }
  | { readonly op: 'stats' }
  | { readonly op: 'metrics' }
  | { readonly op: 'ready' }
  /** `file`: the parsed YAML document the primary validated (undefined: no file). */
  | { readonly op: 'reload'; readonly file: unknown }
  /** An admin API request answered by the worker's own API (with Redis: the fleet's table is there, not in the primary). */
  | { readonly op: 'api'; readonly method: string; readonly path: string; readonly query: string };

/** The answer to each op, in the same order as `Op`. */
export type OpAnswer =
  | { readonly op: 'kick'; readonly found: boolean }
  | { readonly op: 'get'; readonly view: SessionView | null }
  | {
      readonly op: 'stats';
      readonly entries: number;
      readonly evictions: number;
      readonly byTier: Readonly<Record<string, { readonly entries: number; readonly evictions: number }>>;
      /** The worker's own open sessions (its table). */
      readonly sessions: number;
      readonly byKind: Readonly<Record<SessionKind, number>>;
      readonly byChannel: Readonly<Record<string, Readonly<Record<SessionKind, number>>>>;
    }
  | { readonly op: 'metrics'; readonly metrics: readonly MetricJson[] }
  | { readonly op: 'ready'; readonly ready: boolean }
  | { readonly op: 'reload'; readonly needsRestart: readonly string[] | null; readonly error: string | null }
  /** `body`: JSON the worker's API made, passed on to the admin client as it is; `page`: a sessions page. */
  | { readonly op: 'api'; readonly status: number; readonly body?: unknown; readonly page?: FleetPage };

/** One metric of `registry.getMetricsAsJSON()`, as prom-client's AggregatorRegistry.aggregate takes it. */
export interface MetricJson {
  readonly name: string;
  readonly help: string;
  readonly type: string;
  readonly aggregator: string;
  readonly values: readonly { readonly value: number; readonly labels: Readonly<Record<string, string | number>>; readonly metricName?: string }[];
}

export type FromWorker =
  | { readonly t: 'hello' }
  | { readonly t: 'ready'; readonly url: string }
  /** Startup failed (configuration, port): the process exits with `exitCode` right after. */
  | { readonly t: 'failed'; readonly exitCode: number; readonly message: string }
  | { readonly t: 'admit'; readonly id: number; readonly req: AdmitRequest }
  | { readonly t: 'find'; readonly id: number; readonly joinKey?: number; readonly sessionId?: string }
  | { readonly t: 'list'; readonly id: number; readonly filter: SessionFilter; readonly after: TablePosition | undefined; readonly limit: number }
  | ({ readonly t: 'batch' } & Batch)
  | { readonly t: 'answer'; readonly id: number; readonly answer: OpAnswer };

export type FromPrimary =
  /** `file`: the parsed YAML document (the worker builds its config as main.ts would); `ends`: those in force, to refuse from the start. */
  | { readonly t: 'config'; readonly slot: number; readonly file: unknown; readonly secret: string | undefined; readonly ends: readonly FleetEnd[] }
  | { readonly t: 'reply'; readonly id: number; readonly admit?: AdmitAnswer; readonly found?: FleetFound | null; readonly page?: FleetPage }
  | { readonly t: 'ended'; readonly ends: readonly FleetEnd[] }
  | ({ readonly t: 'op'; readonly id: number } & Op)
  | { readonly t: 'stop' };

/** What goes on the wire: the namespace plus the message. */
export function envelope<T extends FromWorker | FromPrimary>(message: T): T & { readonly ns: typeof IPC_NAMESPACE } {
  return { ns: IPC_NAMESPACE, ...message };
}

// --- validation --------------------------------------------------------------------------------
// Small predicates, no schema library: the shapes are few and fixed, and a failed check only drops
// the message (the sender's request times out and the fleet decides locally).

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
const isStr = (v: unknown): v is string => typeof v === 'string';
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isInt = (v: unknown): v is number => Number.isSafeInteger(v);
const isBool = (v: unknown): v is boolean => typeof v === 'boolean';
const isOptStr = (v: unknown): v is string | undefined => v === undefined || isStr(v);
const isNullableStr = (v: unknown): v is string | null => v === null || isStr(v);
const isRequestId = (v: unknown): v is number => isInt(v) && v > 0;
/** A session ID as session.ts makes them; anything else is not looked up. */
const isSessionId = (v: unknown): v is string => isStr(v) && /^[A-Za-z0-9_-]{22}$/.test(v);

const LIMIT_POLICIES: readonly LimitPolicy[] = ['refuse', 'close-oldest'];
/** Upper bounds on what one message may carry: a bug must not make the primary hold unbounded arrays. */
export const MAX_BATCH_ITEMS = 20_000;
const MAX_LIST_LIMIT = 10_000;


function arrayOf<T>(v: unknown, item: (x: unknown) => x is T, max = MAX_BATCH_ITEMS): v is T[] {
  return Array.isArray(v) && v.length <= max && v.every(item);
}

function isAdmitRequest(v: unknown): v is AdmitRequest {
  return (
    isObj(v) &&
    isStr(v['userKey']) &&
    isSessionId(v['sessionId']) &&
    isInt(v['max']) &&
    (v['max'] as number) >= 0 &&
    isBool(v['unique']) &&
    LIMIT_POLICIES.includes(v['policy'] as LimitPolicy) &&
    isNum(v['openedAt']) &&
    isNum(v['ttlMs'])
  );
}

function isAdmitAnswer(v: unknown): v is AdmitAnswer {
  if (!isObj(v)) return false;
  if (v['admitted'] === false) return true;
  return v['admitted'] === true && arrayOf(v['end'], isSessionId);
}

export function isFleetEnd(v: unknown): v is FleetEnd {
  return isObj(v) && isSessionId(v['sessionId']) && isStr(v['reason']) && (v['reason'] as string).length <= 200 && isNum(v['untilMs']);
}

function isFilter(v: unknown): v is SessionFilter {
  return isObj(v) && isOptStr(v['channel']) && isOptStr(v['name']) && isOptStr(v['text']);
}

function isPosition(v: unknown): v is TablePosition {
  return isObj(v) && isNum(v['openedAt']) && isInt(v['seq']);
}

/** The fields of a view the primary reads (filters, kind counts); the rest is passed through to the admin API as it came. */
export function isSessionView(v: unknown): v is SessionView {
  return (
    isObj(v) &&
    isSessionId(v['id']) &&
    isStr(v['channel']) &&
    (v['kind'] === 'hls' || v['kind'] === 'mpegts') &&
    isNullableStr(v['name']) &&
    isNullableStr(v['userId']) &&
    isStr(v['openedAt']) &&
    isStr(v['lastSeenAt']) &&
    isNum(v['requests']) &&
    isNum(v['bytes']) &&
    isObj(v['decision'])
  );
}

function isPublished(v: unknown): v is PublishedSession {
  return (
    isObj(v) &&
    isSessionId(v['id']) &&
    isNum(v['joinKey']) &&
    isOptStr(v['marker']) &&
    isNum(v['openedAt']) &&
    isNum(v['expiresAt']) &&
    isNum(v['lastSeenAt']) &&
    isNum(v['requests']) &&
    isNum(v['bytes']) &&
    isSessionView(v['view']) &&
    (v['view'] as SessionView).id === v['id']
  );
}

function isTouch(v: unknown): v is SessionTouch {
  return isObj(v) && isSessionId(v['id']) && isNum(v['lastSeenAt']) && isNum(v['requests']) && isNum(v['bytes']);
}

function isRelease(v: unknown): v is { userKey: string; sessionId: string } {
  return isObj(v) && isStr(v['userKey']) && isSessionId(v['sessionId']);
}

function isFleetView(v: unknown): v is FleetSessionView {
  return isSessionView(v) && isStr((v as unknown as Obj)['edge']);
}

function isFound(v: unknown): v is FleetFound {
  if (!isObj(v)) return false;
  return v['ended'] !== undefined ? isFleetEnd(v['ended']) && v['marker'] === undefined : isStr(v['marker']) && isFleetView(v['session']);
}

function isPage(v: unknown): v is FleetPage {
  return isObj(v) && arrayOf(v['sessions'], isFleetView, MAX_LIST_LIMIT) && isInt(v['total']) && (v['next'] === undefined || isPosition(v['next'])) && isBool(v['complete']);
}

function isMetricJson(v: unknown): v is MetricJson {
  return (
    isObj(v) &&
    isStr(v['name']) &&
    isStr(v['help']) &&
    isStr(v['type']) &&
    isStr(v['aggregator']) &&
    arrayOf(v['values'], (x): x is MetricJson['values'][number] => isObj(x) && typeof x['value'] === 'number' && isObj(x['labels']) && isOptStr(x['metricName']), 100_000)
  );
}

const TIER_STATS = (v: unknown): boolean => isObj(v) && isInt(v['entries']) && isInt(v['evictions']);
const KIND_COUNTS = (v: unknown): boolean => isObj(v) && isInt(v['hls']) && isInt(v['mpegts']);
/** Admin API requests passed to a worker: bounded like the admin listener's own (admin/request.ts). */
const MAX_API_TEXT = 4096;
const isApiText = (v: unknown, max = MAX_API_TEXT): v is string => isStr(v) && v.length <= max;

function isOpAnswer(v: unknown): v is OpAnswer {
  if (!isObj(v)) return false;
  switch (v['op']) {
    case 'kick':
      return isBool(v['found']);
    case 'get':
      return v['view'] === null || isSessionView(v['view']);
    case 'stats':
      return (
        isInt(v['entries']) &&
        isInt(v['evictions']) &&
        isObj(v['byTier']) &&
        Object.values(v['byTier']).every(TIER_STATS) &&
        isInt(v['sessions']) &&
        KIND_COUNTS(v['byKind']) &&
        isObj(v['byChannel']) &&
        Object.values(v['byChannel']).every(KIND_COUNTS)
      );
    case 'api':
      return isInt(v['status']) && (v['status'] as number) >= 100 && (v['status'] as number) <= 599 && (v['page'] === undefined || isPage(v['page']));
    case 'metrics':
      return arrayOf(v['metrics'], isMetricJson, 10_000);
    case 'ready':
      return isBool(v['ready']);
    case 'reload':
      return (v['needsRestart'] === null || arrayOf(v['needsRestart'], isStr, 1000)) && isNullableStr(v['error']);
    default:
      return false;
  }
}

function isOp(v: Obj): boolean {
  switch (v['op']) {
    case 'kick':
    case 'get':
      return isSessionId(v['sessionId']);
    case 'stats':
    case 'metrics':
    case 'ready':
    case 'reload':
      return true;
    case 'api':
      return isApiText(v['method'], 16) && isApiText(v['path']) && v['path'].startsWith('/api/') && isApiText(v['query']);
    default:
      return false;
  }
}

/** A message from a worker, checked, or undefined (not ours, or malformed). */
export function parseFromWorker(message: unknown): FromWorker | undefined {
  if (!isObj(message) || message['ns'] !== IPC_NAMESPACE) return undefined;
  const m = message;
  switch (m['t']) {
    case 'hello':
      return { t: 'hello' };
    case 'ready':
      return isStr(m['url']) ? { t: 'ready', url: m['url'] } : undefined;
    case 'failed':
      return isInt(m['exitCode']) && isStr(m['message']) ? { t: 'failed', exitCode: m['exitCode'], message: m['message'] } : undefined;
    case 'admit':
      return isRequestId(m['id']) && isAdmitRequest(m['req']) ? { t: 'admit', id: m['id'], req: m['req'] } : undefined;
    case 'find': {
      if (!isRequestId(m['id'])) return undefined;
      if (isNum(m['joinKey']) && m['sessionId'] === undefined) return { t: 'find', id: m['id'], joinKey: m['joinKey'] };
      if (isSessionId(m['sessionId']) && m['joinKey'] === undefined) return { t: 'find', id: m['id'], sessionId: m['sessionId'] };
      return undefined;
    }
    case 'list':
      return isRequestId(m['id']) && isFilter(m['filter']) && (m['after'] === undefined || isPosition(m['after'])) && isInt(m['limit']) && (m['limit'] as number) > 0 && (m['limit'] as number) <= MAX_LIST_LIMIT
        ? { t: 'list', id: m['id'], filter: m['filter'], after: m['after'] as TablePosition | undefined, limit: m['limit'] as number }
        : undefined;
    case 'batch':
      return arrayOf(m['publish'], isPublished) && arrayOf(m['touch'], isTouch) && arrayOf(m['unpublish'], isSessionId) && arrayOf(m['release'], isRelease) && arrayOf(m['end'], isFleetEnd)
        ? { t: 'batch', publish: m['publish'], touch: m['touch'], unpublish: m['unpublish'], release: m['release'], end: m['end'] }
        : undefined;
    case 'answer':
      return isRequestId(m['id']) && isOpAnswer(m['answer']) ? { t: 'answer', id: m['id'], answer: m['answer'] } : undefined;
    default:
      return undefined;
  }
}

/** A message from the primary, checked, or undefined. */
export function parseFromPrimary(message: unknown): FromPrimary | undefined {
  if (!isObj(message) || message['ns'] !== IPC_NAMESPACE) return undefined;
  const m = message;
  switch (m['t']) {
    case 'config':
      return isInt(m['slot']) && (m['slot'] as number) > 0 && isOptStr(m['secret']) && arrayOf(m['ends'], isFleetEnd, MAX_TOMBSTONES)
        ? { t: 'config', slot: m['slot'] as number, file: m['file'], secret: m['secret'], ends: m['ends'] }
        : undefined;
    case 'reply': {
      if (!isRequestId(m['id'])) return undefined;
      if (m['admit'] !== undefined) return isAdmitAnswer(m['admit']) ? { t: 'reply', id: m['id'], admit: m['admit'] } : undefined;
      if (m['page'] !== undefined) return isPage(m['page']) ? { t: 'reply', id: m['id'], page: m['page'] } : undefined;
      if (m['found'] !== undefined) return m['found'] === null || isFound(m['found']) ? { t: 'reply', id: m['id'], found: m['found'] } : undefined;
      return undefined;
    }
    case 'ended':
      return arrayOf(m['ends'], isFleetEnd) ? { t: 'ended', ends: m['ends'] } : undefined;
    case 'op':
      return isRequestId(m['id']) && isOp(m) ? ({ t: 'op', id: m['id'], ...(pickOp(m) as Op) } as FromPrimary) : undefined;
    case 'stop':
      return { t: 'stop' };
    default:
      return undefined;
  }
}

/** The op's own fields only (nothing else of the message travels on). */
function pickOp(m: Obj): Op {
  switch (m['op']) {
    case 'kick':
    case 'get':
      return { op: m['op'], sessionId: m['sessionId'] as string };
    case 'reload':
      return { op: 'reload', file: m['file'] };
    case 'api':
      return { op: 'api', method: m['method'] as string, path: m['path'] as string, query: m['query'] as string };
    default:
      return { op: m['op'] as 'stats' | 'metrics' | 'ready' };
  }
}
