/**
 * The fleet's shared state in Redis (`--store redis://…`): the session table
 * of every edge, per-user limits counted across all of them, and ends
 * (kicks, denies from re-checks, limit closes) heard by all within a second.
 *
 * Client: ioredis, measured against node-redis on the edge's own operations
 * (`npm run bench:redis`: SET PX, GET and EVALSHA of a limit script, 50
 * concurrent callers): ioredis made 2.7 to 3.5 times the operations per
 * second, and its scripts (defineCommand) fall back from EVALSHA to EVAL by
 * themselves after a Redis restart.
 *
 * Key layout (every name starts with store.prefix, default `edge:`):
 *
 *   s:<id>          string, PX idle timeout: the session's record as JSON
 *                   {e: edge, m: marker, v: its admin view}; refreshed by
 *                   its edge every idle timeout / 3 (pipelined, never per request)
 *   j:<joinKey>     string, same life: the session ID under the registry's
 *                   numeric join key (a reload of the original URL elsewhere);
 *                   after an end, kept as long as the tombstone
 *   u:<user>        sorted set: session IDs of a user (user + "\n" + channel
 *                   with --soft-limits), score = expiry (server ms): the limit's
 *                   count; entries not refreshed in time no longer count
 *   uo:<user>       sorted set: the same IDs, score = openedAt: oldest first
 *   list            sorted set, all scores 0, ordered by member:
 *                   <openedAt:12 hex>:<seq:12 hex>:<id>["channel","name","user"]
 *                   (seq: the first 48 bits of the random ID, so fleet-unique:
 *                   equal opening times are ordered by it; the cursor is
 *                   openedAt + seq as for one edge); the JSON tail lets a
 *                   filter run on the list without reading every record
 *   lx              sorted set: the same members, score = expiry (swept)
 *   end:<id>        string, PX until the marker would have stopped working:
 *                   the tombstone of an ended session {sessionId, reason, untilMs}
 *   ends            pub/sub channel: every end, heard by every edge
 *
 * What the hot path sees: nothing. `publish`, `release`, `unpublish` and
 * `end` queue and return; one flush a few ms later sends them in one
 * pipeline. Only `admit` (a new session with a per-user limit, after the
 * middleware already took its time), `findMarker` and `list` are awaited,
 * each bounded by STORE_TIMEOUT_MS (list: LIST_TIMEOUT_MS), and answer
 * `undefined` (decide locally) when Redis is down or slow.
 *
 * Outage: no offline queue (nothing grows while Redis is away), reconnects
 * with capped exponential backoff, one log line when the episode starts and
 * one when it ends (its duration and error count), edge_store_up and
 * edge_store_errors_total{op}; when Redis is back, every live session of this
 * edge is published again (Redis may have lost everything) and any of them
 * ended meanwhile by another edge is ended here.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { StoreAwaitedOp, StoreOp } from '../metrics/metrics.js';
import { redactText, redactUrl } from '../redact.js';
import type { AdmitAnswer, AdmitRequest, FleetEnd, FleetFound, FleetPage, FleetSessionView, FleetState } from './fleet.js';
import { defineFleetCommands, type FleetClient, type FleetPipeline } from './redis-scripts.js';
import { isWellFormedSessionId, type Session } from './session.js';
import { localPage } from './solo.js';
import { matchesFields, viewOf, type SessionFilter, type SessionTable, type TablePosition } from './table.js';

/** Every call a request waits for (a new session's admission, a look-up) gives up after this long. */
export const STORE_TIMEOUT_MS = 250;
/** The admin API's list may walk the whole fleet's table (a filter): it waits this long in all. */
export const LIST_TIMEOUT_MS = 2000;
/** Background writes (pipelines) fail after this long: the connection is then taken as slow. */
const BACKGROUND_TIMEOUT_MS = 2000;
const CONNECT_TIMEOUT_MS = 2000;
/** Reconnect backoff: 100 ms, doubling, at most 5 s between attempts. */
const RETRY_BASE_MS = 100;
const RETRY_MAX_MS = 5000;
/** Writes queued within this long go in one pipeline (an end reaches every edge well within 1 s). */
const FLUSH_DELAY_MS = 10;
/** Sessions per pipeline when the whole table is refreshed or re-published; the event loop serves viewers between slices. */
const REFRESH_SLICE = 500;
/** Ends and removals kept while Redis is away, sent when it is back; past this the oldest go (their entries expire by themselves). */
const MAX_PENDING = 10_000;
/** How often the timer looks at the connection (a ping while slow) and whether a refresh is due. */
const TICK_MS = 1000;
const MIN_TICK_MS = 50;
/** Listing entries swept per refresh (a crashed edge's), at most. */
const SWEEP_MAX = 5000;
/** List members read per call while a filtered list is walked. */
const LIST_CHUNK = 2000;
/** A listing member's fixed head: 12 hex + ':' + 12 hex + ':' + a 22-character ID. */
const MEMBER_HEAD = 12 + 1 + 12 + 1 + 22;
/** Largest reason carried by an end (a middleware's deny reason is short; anything longer is not ours). */
const MAX_REASON = 200;

/** The store's counters (EdgeMetrics implements them). */
export interface FleetMetrics {
  storeError(op: StoreOp): void;
  storeCall(op: StoreAwaitedOp, seconds: number): void;
}

export interface RedisFleetOptions {
  readonly url: string;
  readonly prefix: string;
  readonly nodeName: string;
  /** This process's open sessions: refreshed on a timer and re-published after an outage. */
  readonly table: SessionTable;
  /** How long an entry lives without a refresh (the idle timeout; read at each use: SIGHUP may change it). */
  readonly ttlMs: () => number;
  readonly log: Logger;
  readonly metrics: FleetMetrics;
  /** The marker a session's viewers carry, as another edge must see it (default: the session ID). */
  readonly markerOf?: (session: Session) => string;
  /** Bound of the awaited calls (tests make it longer on loaded machines). */
  readonly timeoutMs?: number;
}

/** What this edge wrote for one of its sessions, to take it back. */
interface Published {
  readonly member: string;
  readonly joinKey: number;
}

type Drop = { readonly kind: 'release'; readonly userKey: string; readonly id: string } | { readonly kind: 'unpublish'; readonly id: string };

/** The pub/sub message: an end, and which process sent it (it ignores its own). */
interface EndMessage extends FleetEnd {
  readonly from: string;
}

/** The record of a session in `s:<id>`. */
interface SessionRecord {
  readonly e: string;
  readonly m: string;
  readonly v: Omit<FleetSessionView, 'edge'>;
}

const TIMED_OUT = Symbol('timed out');

function hex12(n: number): string {
  return Math.max(0, Math.floor(n)).toString(16).padStart(12, '0');
}

/** The fleet-wide tie-breaker of a session's place in the list: the first 48 bits of its random ID. */
export function fleetSeq(sessionId: string): number {
  return Buffer.from(sessionId.slice(0, 8), 'base64url').readUIntBE(0, 6);
}

/** Where a position sorts among listing members: after every member at or before it. */
function afterBound(p: TablePosition): string {
  // '~' sorts after every base64url character: the exclusive bound passes all members with this head.
  return `(${hex12(p.openedAt)}:${hex12(p.seq)}:~`;
}

function parseMember(member: string): { id: string; position: TablePosition; channel: string; name: string | null; user: string | null } | undefined {
  if (member.length <= MEMBER_HEAD) return undefined;
  try {
    const [channel, name, user] = JSON.parse(member.slice(MEMBER_HEAD)) as [string, string | null, string | null];
    return { id: member.slice(26, MEMBER_HEAD), position: { openedAt: parseInt(member.slice(0, 12), 16), seq: parseInt(member.slice(13, 25), 16) }, channel, name, user };
  } catch {
    return undefined;
  }
}

function isFleetEnd(v: unknown): v is FleetEnd {
  const e = v as Partial<FleetEnd> | null;
  return (
    typeof e === 'object' &&
    e !== null &&
    typeof e.sessionId === 'string' &&
    isWellFormedSessionId(e.sessionId) &&
    typeof e.reason === 'string' &&
    e.reason.length > 0 &&
    e.reason.length <= MAX_REASON &&
    typeof e.untilMs === 'number' &&
    Number.isFinite(e.untilMs)
  );
}

function parseEnd(text: string): FleetEnd | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return isFleetEnd(v) ? { sessionId: v.sessionId, reason: v.reason, untilMs: v.untilMs } : undefined;
  } catch {
    return undefined;
  }
}

function parseRecord(text: string | null): SessionRecord | undefined {
  if (text === null) return undefined;
  try {
    const r = JSON.parse(text) as SessionRecord;
    return typeof r.e === 'string' && typeof r.m === 'string' && typeof r.v === 'object' && r.v !== null ? r : undefined;
  } catch {
    return undefined;
  }
}

function viewOfRecord(r: SessionRecord): FleetSessionView {
  return { ...r.v, edge: r.e };
}

function errorText(err: unknown): string {
  return redactText(err instanceof Error ? err.message : String(err));
}

export class RedisFleet implements FleetState {
  readonly nodeName: string;
  private readonly client: FleetClient;
  /** The same connection as `client`, typed as ioredis's own (events, status, quit). */
  private readonly connection: Redis;
  private readonly sub: Redis;
  private readonly options: RedisFleetOptions;
  private readonly log: Logger;
  private readonly metrics: FleetMetrics;
  private readonly timeoutMs: number;
  private readonly markerOf: (session: Session) => string;
  /** Tells this process's own end messages apart (two edges may share a node name by mistake). */
  private readonly instance = randomBytes(9).toString('base64url');
  private readonly keys: { readonly list: string; readonly expiry: string; readonly channel: string };
  private readonly redactedUrl: string;
  private readonly listeners: ((end: FleetEnd) => void)[] = [];
  private readonly published = new Map<string, Published>();
  private readonly dirty = new Map<string, Session>();
  private pendingDrops: Drop[] = [];
  private pendingEnds: FleetEnd[] = [];
  /** Sessions of this edge ended by this edge, until their unpublish keeps their join key pointing at the tombstone. */
  private readonly endedHere = new Map<string, number>();
  private flushTimer: NodeJS.Timeout | undefined;
  private flushing = false;
  private ticker: NodeJS.Timeout;
  private lastRefresh = 0;
  private refreshing = false;
  /** An awaited call timed out: the store is taken as down until a call succeeds again. */
  private slow = false;
  private episode: { readonly startedAt: number; errors: number } | undefined;
  private recovering = false;
  private closing: Promise<void> | undefined;

  constructor(options: RedisFleetOptions) {
    this.options = options;
    this.nodeName = options.nodeName;
    this.log = options.log;
    this.metrics = options.metrics;
    this.timeoutMs = options.timeoutMs ?? STORE_TIMEOUT_MS;
    this.markerOf = options.markerOf ?? ((s) => s.id);
    const p = options.prefix;
    this.keys = { list: `${p}list`, expiry: `${p}lx`, channel: `${p}ends` };
    this.redactedUrl = redactUrl(options.url);
    const client = new Redis(options.url, {
      // Nothing queues while Redis is away: a call fails at once and the edge decides locally.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: CONNECT_TIMEOUT_MS,
      commandTimeout: BACKGROUND_TIMEOUT_MS,
      retryStrategy: (attempt) => Math.min(RETRY_BASE_MS * 2 ** Math.min(attempt - 1, 16), RETRY_MAX_MS),
      // RESP2: every Redis the edge may meet speaks it (HELLO 3 needs Redis 6).
      protocol: 2,
      connectionName: 'astra-auth-edge',
      autoResubscribe: false,
    });
    this.connection = client;
    this.client = defineFleetCommands(client);
    this.sub = client.duplicate();
    this.watch(this.connection, 'connect');
    this.watch(this.sub, 'subscribe');
    this.client.on('ready', () => this.cameUp());
    this.sub.on('ready', () => {
      this.sub.subscribe(this.keys.channel).then(
        () => this.cameUp(),
        (err: unknown) => this.failed('subscribe', err),
      );
    });
    this.sub.on('message', (channel: string, text: string) => {
      if (channel === this.keys.channel) this.heard(text);
    });
    this.ticker = this.armTicker();
  }

  /** Every TICK_MS, or a quarter of the TTL when shorter: the refresh (every third of it) then never comes later than 7/12 of it. */
  private armTicker(): NodeJS.Timeout {
    const timer = setTimeout(
      () => {
        this.tick();
        if (this.closing === undefined) this.ticker = this.armTicker();
      },
      Math.max(MIN_TICK_MS, Math.min(TICK_MS, this.options.ttlMs() / 4)),
    );
    timer.unref();
    return timer;
  }

  private watch(connection: Redis, op: StoreOp): void {
    // An 'error' listener is required (ioredis would print each one); every failed attempt counts.
    connection.on('error', (err: unknown) => this.failed(op, err));
    connection.on('close', () => {
      // A connection lost while up counts once; ioredis also emits 'close' after each failed reconnect, counted by 'error'.
      if (this.closing !== undefined || this.episode !== undefined) return;
      this.metrics.storeError(op);
      this.down(op, 'connection closed');
    });
  }

  get connected(): boolean {
    return this.closing === undefined && !this.slow && this.client.status === 'ready' && this.sub.status === 'ready';
  }

  /** Resolves true once connected (subscribed too), false after `timeoutMs`. For startup: the first sessions then count fleet-wide. */
  async ready(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.connected && Date.now() < deadline && this.closing === undefined) await new Promise((r) => setTimeout(r, 20));
    return this.connected;
  }

  // --- outage episodes ---------------------------------------------------------------------------

  /** A call or a connection failed: counted, and part of the episode. */
  private failed(op: StoreOp, err: unknown): void {
    this.metrics.storeError(op);
    this.down(op, errorText(err));
  }

  /** Starts an episode (one log line) or adds to the current one. The caller counted the error. */
  private down(op: StoreOp, error: string): void {
    if (this.closing !== undefined) return;
    if (this.episode !== undefined) {
      this.episode.errors++;
      return;
    }
    this.episode = { startedAt: Date.now(), errors: 1 };
    this.log.warn(
      { store: this.redactedUrl, op, error },
      'fleet store unreachable: serving from this edge\'s own sessions and markers, per-user limits counted per edge meanwhile; reconnecting with backoff',
    );
  }

  /** A connection is ready, or a call succeeded after a timeout: when everything answers again, the episode ends. */
  private cameUp(): void {
    if (!this.connected || this.episode === undefined || this.recovering) return;
    void this.recover();
  }

  private async recover(): Promise<void> {
    this.recovering = true;
    try {
      await this.flush();
      const republished = await this.refreshAll();
      const episode = this.episode;
      if (republished === undefined || episode === undefined || !this.connected) return;
      this.episode = undefined;
      this.log.info({ store: this.redactedUrl, downMs: Date.now() - episode.startedAt, errors: episode.errors, republished }, 'fleet store back: this edge\'s sessions published again');
    } finally {
      this.recovering = false;
    }
  }

  private succeeded(): void {
    if (!this.slow) return;
    this.slow = false;
    this.cameUp();
  }

  private tick(): void {
    if (this.closing !== undefined) return;
    const ready = this.client.status === 'ready';
    if (this.slow && ready) {
      this.client.ping().then(
        () => this.succeeded(),
        (err: unknown) => this.failed('connect', err),
      );
      return;
    }
    if (!this.connected) return;
    if (this.episode !== undefined) {
      // Connected again but the episode is not over (a recovery failed half-way, a failed write): try again.
      if (!this.recovering) void this.recover();
      return;
    }
    const now = Date.now();
    if (now - this.lastRefresh >= this.options.ttlMs() / 3 && !this.refreshing) void this.refreshAll();
  }

  // --- awaited calls -----------------------------------------------------------------------------

  /** `call` bounded by `ms`; undefined when not connected, failed or late (then the store counts as slow). */
  private async bounded<T>(op: StoreAwaitedOp, call: () => Promise<T>, ms = this.timeoutMs): Promise<T | undefined> {
    if (!this.connected) return undefined;
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<typeof TIMED_OUT>((resolve) => {
      timer = setTimeout(() => resolve(TIMED_OUT), ms);
    });
    try {
      const result = await Promise.race([call(), late]);
      if (result === TIMED_OUT) {
        this.slow = true;
        this.metrics.storeError(op);
        this.down(op, `no answer within ${ms} ms`);
        return undefined;
      }
      this.succeeded();
      return result;
    } catch (err) {
      this.failed(op, err);
      return undefined;
    } finally {
      clearTimeout(timer);
      this.metrics.storeCall(op, (performance.now() - started) / 1000);
    }
  }

  async admit(req: AdmitRequest): Promise<AdmitAnswer | undefined> {
    const p = this.options.prefix;
    const reply = await this.bounded('admit', () =>
      this.client.edgeAdmit(`${p}u:${req.userKey}`, `${p}uo:${req.userKey}`, req.sessionId, req.max, req.unique ? 1 : 0, req.policy, req.openedAt, Math.max(1, Math.ceil(req.ttlMs))),
    );
    if (!Array.isArray(reply)) return undefined;
    if (reply[0] !== 1) return { admitted: false };
    const end: string[] = [];
    for (let i = 1; i < reply.length; i++) if (typeof reply[i] === 'string' && reply[i] !== req.sessionId) end.push(reply[i] as string);
    return { admitted: true, end };
  }

  async findMarker(key: { readonly joinKey: number } | { readonly sessionId: string }): Promise<FleetFound | undefined> {
    const byJoin = 'joinKey' in key;
    if (!byJoin && !isWellFormedSessionId(key.sessionId)) return undefined;
    const reply = await this.bounded('find', () => this.client.edgeFind(this.options.prefix, byJoin ? 'j' : 'i', byJoin ? String(key.joinKey) : key.sessionId));
    if (!Array.isArray(reply) || typeof reply[1] !== 'string') return undefined;
    if (reply[0] === 'e') {
      const ended = parseEnd(reply[1]);
      return ended === undefined ? undefined : { ended };
    }
    const record = parseRecord(reply[1]);
    return record === undefined ? undefined : { marker: record.m, session: viewOfRecord(record) };
  }

  async list(filter: SessionFilter, after: TablePosition | undefined, limit: number): Promise<FleetPage> {
    const page = await this.bounded('list', () => this.listFromRedis(filter, after, limit), LIST_TIMEOUT_MS);
    return page ?? localPage(this.options.table, this.nodeName, filter, after, limit, false);
  }

  private async listFromRedis(filter: SessionFilter, after: TablePosition | undefined, limit: number): Promise<FleetPage> {
    const filtered = filter.channel !== undefined || filter.name !== undefined || (filter.text !== undefined && filter.text !== '');
    const start = after === undefined ? '-' : afterBound(after);
    let total: number;
    const candidates: string[] = [];
    if (!filtered) {
      total = await this.client.zcard(this.keys.list);
      candidates.push(...(await this.client.zrangebylex(this.keys.list, start, '+', 'LIMIT', 0, limit + 1)));
    } else {
      // The whole list is walked for `total` (a filter's count is a scan on one edge too); the page is what matches after the cursor.
      total = 0;
      const startMember = after === undefined ? undefined : start.slice(1);
      let from = '-';
      for (;;) {
        const chunk = await this.client.zrangebylex(this.keys.list, from, '+', 'LIMIT', 0, LIST_CHUNK);
        for (const member of chunk) {
          const m = parseMember(member);
          if (m === undefined || !matchesFields(m.channel, m.name, m.user, filter)) continue;
          total++;
          if (candidates.length <= limit && (startMember === undefined || member > startMember)) candidates.push(member);
        }
        if (chunk.length < LIST_CHUNK) break;
        from = `(${chunk[chunk.length - 1]!}`;
      }
    }
    const parsed = candidates.map(parseMember);
    const records = candidates.length === 0 ? [] : await this.client.mget(...parsed.map((m) => `${this.options.prefix}s:${m?.id ?? ''}`));
    const sessions: FleetSessionView[] = [];
    const gone: string[] = [];
    let last: TablePosition | undefined;
    let more = false;
    for (let i = 0; i < candidates.length; i++) {
      const record = parseRecord(records[i] ?? null);
      const m = parsed[i];
      if (record === undefined || m === undefined) {
        // Its edge stopped refreshing it (a crash): the sweep would drop it; this page does at once.
        gone.push(candidates[i]!);
        total--;
        continue;
      }
      if (sessions.length === limit) {
        more = true;
        break;
      }
      sessions.push(viewOfRecord(record));
      last = m.position;
    }
    if (gone.length > 0) void this.client.pipeline().zrem(this.keys.list, ...gone).zrem(this.keys.expiry, ...gone).exec().catch(() => undefined);
    // A page cut short by records that vanished still ends with a cursor: the next page goes on from there.
    if (!more && gone.length > 0 && candidates.length === limit + 1 && last !== undefined) more = true;
    return { sessions, total: Math.max(total, sessions.length), next: more ? last : undefined, complete: true };
  }

  // --- queued writes -----------------------------------------------------------------------------

  publish(session: Session): void {
    this.dirty.set(session.id, session);
    this.scheduleFlush();
  }

  unpublish(sessionId: string): void {
    this.dirty.delete(sessionId);
    this.queueDrop({ kind: 'unpublish', id: sessionId });
  }

  release(userKey: string, sessionId: string): void {
    this.queueDrop({ kind: 'release', userKey, id: sessionId });
  }

  end(end: FleetEnd): void {
    this.pendingEnds.push(end);
    if (this.pendingEnds.length > MAX_PENDING) this.pendingEnds.shift();
    this.scheduleFlush();
  }

  onEnd(listener: (end: FleetEnd) => void): void {
    this.listeners.push(listener);
  }

  private queueDrop(drop: Drop): void {
    this.pendingDrops.push(drop);
    if (this.pendingDrops.length > MAX_PENDING) this.pendingDrops.shift();
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushTimer !== undefined || this.closing !== undefined) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      void this.flush();
    }, FLUSH_DELAY_MS);
    this.flushTimer.unref();
  }

  /**
   * Sends what was queued, in one pipeline: ends first (so a session's
   * unpublish keeps its join key on the tombstone), then removals, then
   * publishes (a session that left and came back within one flush is listed).
   */
  private async flush(): Promise<void> {
    if (this.flushing) {
      this.scheduleFlush();
      return;
    }
    if (this.client.status !== 'ready') {
      // Publishes are not kept: every live session is published again when Redis is back.
      this.dirty.clear();
      return;
    }
    const ends = this.pendingEnds;
    const drops = this.pendingDrops;
    const sessions = [...this.dirty.values()];
    if (ends.length === 0 && drops.length === 0 && sessions.length === 0) return;
    this.pendingEnds = [];
    this.pendingDrops = [];
    this.dirty.clear();
    const pipe = this.client.pipeline();
    const ops: StoreOp[] = [];
    const p = this.options.prefix;
    const now = Date.now();
    for (const e of ends) {
      const message: EndMessage = { sessionId: e.sessionId, reason: e.reason, untilMs: e.untilMs, from: this.instance };
      const ttl = Math.max(1, Math.ceil(e.untilMs - now));
      pipe.edgeEnd(`${p}end:${e.sessionId}`, JSON.stringify({ sessionId: e.sessionId, reason: e.reason, untilMs: e.untilMs }), ttl, this.keys.channel, JSON.stringify(message));
      ops.push('end');
      if (this.published.has(e.sessionId)) this.endedHere.set(e.sessionId, e.untilMs);
    }
    for (const d of drops) {
      if (d.kind === 'release') {
        pipe.zrem(`${p}u:${d.userKey}`, d.id).zrem(`${p}uo:${d.userKey}`, d.id);
        ops.push('release', 'release');
        continue;
      }
      const was = this.published.get(d.id);
      if (was === undefined) continue;
      this.published.delete(d.id);
      const until = this.endedHere.get(d.id);
      this.endedHere.delete(d.id);
      pipe.edgeUnpublish(`${p}s:${d.id}`, `${p}j:${was.joinKey}`, this.keys.list, this.keys.expiry, d.id, was.member, until === undefined ? 0 : Math.max(1, Math.ceil(until - now)));
      ops.push('publish');
    }
    const publishedAt = ops.length;
    const sent: Session[] = [];
    for (const s of sessions) {
      if (!s.active || s.endReason !== undefined) continue;
      this.publishOne(pipe, s);
      sent.push(s);
      ops.push('publish');
    }
    this.flushing = true;
    try {
      const results = await pipe.exec();
      const failed = this.tally(results, ops);
      this.checkTombstones(results, sent, publishedAt);
      if (failed.end) this.requeue(ends, []);
    } catch (err) {
      this.failed('publish', err);
      this.requeue(ends, drops);
    } finally {
      this.flushing = false;
    }
    if (this.pendingEnds.length > 0 || this.pendingDrops.length > 0 || this.dirty.size > 0) this.scheduleFlush();
  }

  private requeue(ends: readonly FleetEnd[], drops: readonly Drop[]): void {
    this.pendingEnds = [...ends, ...this.pendingEnds].slice(-MAX_PENDING);
    this.pendingDrops = [...drops, ...this.pendingDrops].slice(-MAX_PENDING);
  }

  /** Counts the failed commands of a pipeline by op; true per op that had a failure. */
  private tally(results: [Error | null, unknown][] | null, ops: readonly StoreOp[]): Partial<Record<StoreOp, boolean>> {
    const failed: Partial<Record<StoreOp, boolean>> = {};
    if (results === null) return failed;
    let first: Error | undefined;
    for (let i = 0; i < results.length; i++) {
      const err = results[i]![0];
      if (err === null) continue;
      const op = ops[i] ?? 'publish';
      failed[op] = true;
      this.metrics.storeError(op);
      first ??= err;
    }
    if (first !== undefined) this.down(ops[0] ?? 'publish', errorText(first));
    else this.succeeded();
    return failed;
  }

  /** Publishes refused because the session had been ended elsewhere: end them here (an end this edge missed). */
  private checkTombstones(results: [Error | null, unknown][] | null, sessions: readonly Session[], offset: number): void {
    if (results === null) return;
    for (let i = 0; i < sessions.length; i++) {
      const reply = results[offset + i]?.[1];
      if (typeof reply !== 'string') continue;
      const end = parseEnd(reply);
      this.published.delete(sessions[i]!.id);
      if (end !== undefined) this.emit(end);
    }
  }

  private publishOne(pipe: FleetPipeline, s: Session): void {
    const p = this.options.prefix;
    const ttl = Math.max(1, Math.ceil(this.options.ttlMs()));
    const view = viewOf(s);
    const d = s.decision;
    const member = `${hex12(s.openedAt)}:${hex12(fleetSeq(s.id))}:${s.id}${JSON.stringify([s.channel, d?.sessionName ?? null, d?.userId ?? null])}`;
    const was = this.published.get(s.id);
    this.published.set(s.id, { member, joinKey: s.joinKey });
    const record: SessionRecord = { e: this.nodeName, m: this.markerOf(s), v: view };
    const user = s.userKey;
    const keys = [`${p}s:${s.id}`, `${p}j:${s.joinKey}`, `${p}end:${s.id}`, this.keys.list, this.keys.expiry];
    if (user !== undefined) keys.push(`${p}u:${user}`, `${p}uo:${user}`);
    pipe.edgePublish(keys.length, ...keys, JSON.stringify(record), s.id, ttl, member, was?.member ?? '', s.openedAt);
  }

  /**
   * Every open session of this edge, published again in slices (the TTL
   * refresh, and the re-publish after an outage), then a sweep of entries
   * other edges stopped refreshing. Returns how many were sent, or
   * undefined when Redis failed meanwhile.
   */
  private async refreshAll(): Promise<number | undefined> {
    if (this.refreshing) return undefined;
    this.refreshing = true;
    this.lastRefresh = Date.now();
    let sent = 0;
    try {
      const all = this.options.table.values();
      for (;;) {
        const slice: Session[] = [];
        for (const s of all) {
          if (s.endReason !== undefined) continue;
          slice.push(s);
          if (slice.length === REFRESH_SLICE) break;
        }
        if (slice.length === 0) break;
        if (this.client.status !== 'ready') return undefined;
        const pipe = this.client.pipeline();
        for (const s of slice) this.publishOne(pipe, s);
        const results = await pipe.exec();
        const failed = this.tally(results, slice.map(() => 'publish'));
        if (failed.publish === true) return undefined;
        this.checkTombstones(results, slice, 0);
        sent += slice.length;
        if (slice.length < REFRESH_SLICE) break;
        await new Promise((r) => setImmediate(r));
      }
      await this.client.edgeSweep(this.keys.list, this.keys.expiry, SWEEP_MAX);
      this.succeeded();
      return sent;
    } catch (err) {
      this.failed('publish', err);
      return undefined;
    } finally {
      this.refreshing = false;
    }
  }

  // --- ends from other edges ---------------------------------------------------------------------

  private heard(text: string): void {
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (!isFleetEnd(message) || (message as Partial<EndMessage>).from === this.instance) return;
    this.emit({ sessionId: message.sessionId, reason: message.reason, untilMs: message.untilMs });
  }

  private emit(end: FleetEnd): void {
    for (const listener of this.listeners) {
      try {
        listener(end);
      } catch (err) {
        this.log.error({ err }, 'fleet end listener failed');
      }
    }
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    clearTimeout(this.ticker);
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    // What this edge still has to say (its sessions leaving, ends) goes out before the connection closes, if Redis answers.
    if (this.client.status === 'ready' && !this.flushing) {
      await Promise.race([this.flush().catch(() => undefined), new Promise((r) => setTimeout(r, BACKGROUND_TIMEOUT_MS).unref())]);
    }
    this.published.clear();
    this.dirty.clear();
    this.endedHere.clear();
    this.pendingDrops = [];
    this.pendingEnds = [];
    await Promise.all([quit(this.connection), quit(this.sub)]);
  }
}

/** QUIT when connected (replies pending are answered first), else just disconnect (no reconnect). */
async function quit(connection: Redis): Promise<void> {
  if (connection.status === 'ready') {
    try {
      await connection.quit();
      return;
    } catch {
      // fall through
    }
  }
  connection.disconnect();
}
