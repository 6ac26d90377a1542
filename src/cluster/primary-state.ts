/**
 * What the workers of one host share, held by their primary (`--workers N`
 * without Redis): per-user limit counts, the sessions every worker has open
 * (listed by the admin API, found by join key or ID), and tombstones of the
 * sessions ended fleet-wide. Pure logic: no processes, no timers (the
 * caller sweeps), a clock passed in; cluster/fleet-host.ts feeds it the
 * workers' messages.
 *
 * One session can be open on several workers at once: the cluster hands
 * each connection to the next worker in turn, so an HLS player's playlist
 * and segment requests land on all of them, each of which rebuilds the
 * session from its signed marker. A session therefore has *holders*: it
 * counts once against its user's limit and is listed once (requests and
 * bytes summed over its holders) until the last holder lets it go. A worker
 * that exits lets go of everything it held at once: the primary sees the
 * exit, so no entry waits out a TTL (AdmitRequest.ttlMs is for the Redis
 * fleet, whose edges can vanish unseen).
 *
 * A session no worker holds open any more (its MPEG-TS connection closed,
 * its HLS player idle, its worker dead) stays findable by its join key for
 * as long as a single process would keep it resumable (`resumableUntil`):
 * the player's reconnect, wherever the cluster sends it, is the same
 * session, adopted from its marker, not a new middleware call.
 */
import type { AdmitAnswer, AdmitRequest, FleetEnd, FleetFound, FleetPage, FleetSessionView } from '../session/fleet.js';
import type { SessionKind } from '../session/session.js';
import { before, firstAfter, firstAtOrAfter, type SessionFilter, type SessionView, type TablePosition } from '../session/table.js';
import type { PublishedSession, SessionTouch } from './protocol.js';

/** Tombstones kept at most (oldest dropped first): each is an ID and a time; a flood of kicks must not grow the primary without bound. */
export const MAX_TOMBSTONES = 200_000;
/** Closed sessions kept findable by join key at most (oldest dropped first). */
export const MAX_RESUMABLE = 200_000;
/** Removed sessions leave their slot in the order until there are this many more slots than sessions, plus as many again. */
const COMPACT_SLACK = 64;

const REFUSED: AdmitAnswer = Object.freeze({ admitted: false });
const ADMITTED: AdmitAnswer = Object.freeze({ admitted: true, end: Object.freeze([]) as readonly string[] });

/** A worker, by its slot (1..N: stable across restarts, unlike cluster's worker.id). */
export type Slot = number;

interface LimitEntry {
  readonly openedAt: number;
  readonly holders: Set<Slot>;
}

/** One worker's copy of a session: its view, and its own counts. */
interface Holding {
  view: SessionView;
  lastSeenAt: number;
  requests: number;
  bytes: number;
}

interface SessionRecord {
  readonly id: string;
  readonly openedAt: number;
  readonly seq: number;
  joinKey: number;
  marker: string | undefined;
  expiresAt: number;
  readonly holders: Map<Slot, Holding>;
}

/** A closed session's marker and last view, findable by its join key until `untilMs`. */
interface Resumable {
  readonly id: string;
  readonly marker: string;
  readonly view: FleetSessionView;
  readonly untilMs: number;
}

export interface PrimaryStateOptions {
  readonly now?: () => number;
  /** The name of the edge a worker is (`host:port/w2`): the `edge` of the sessions it holds. */
  readonly edgeName: (slot: Slot) => string;
  /**
   * Until when a session no worker holds open stays findable by its join key (what the registry
   * keeps resumable: its decision's expiry plus the stale grace; `--recheck never`: the grace from now).
   * Default: never (not findable once closed).
   */
  readonly resumableUntil?: (expiresAt: number, now: number) => number;
  readonly maxTombstones?: number;
  readonly maxResumable?: number;
}

/** `SessionTable`'s filter, on a published view (name: session name or user; text: lower-case, in channel, name or user). */
export function viewMatches(v: SessionView, filter: SessionFilter): boolean {
  if (filter.channel !== undefined && v.channel !== filter.channel) return false;
  if (filter.name !== undefined && v.name !== filter.name && v.userId !== filter.name) return false;
  const text = filter.text;
  if (text !== undefined && text !== '') {
    return v.channel.toLowerCase().includes(text) || (v.name?.toLowerCase().includes(text) ?? false) || (v.userId?.toLowerCase().includes(text) ?? false);
  }
  return true;
}

export class PrimaryState {
  private readonly now: () => number;
  private readonly edgeName: (slot: Slot) => string;
  private readonly maxTombstones: number;
  private readonly maxResumable: number;
  private readonly resumableUntil: (expiresAt: number, now: number) => number;
  /** joinKey → closed session; insertion order = the order in which they are dropped past maxResumable. */
  private readonly resumable = new Map<number, Resumable>();
  /** userKey → sessionId → entry. */
  private readonly users = new Map<string, Map<string, LimitEntry>>();
  /** sessionId → userKey, for ends and worker exits. */
  private readonly userOf = new Map<string, string>();
  private readonly sessions = new Map<string, SessionRecord>();
  private readonly byJoinKey = new Map<number, string>();
  /** Sessions by (openedAt, seq), dead slots left until compaction (as table.ts). */
  private ordered: SessionRecord[] = [];
  private nextSeq = 0;
  /** Insertion order = the order in which they are dropped past maxTombstones. */
  private readonly tombstones = new Map<string, FleetEnd>();

  constructor(options: PrimaryStateOptions) {
    this.now = options.now ?? Date.now;
    this.edgeName = options.edgeName;
    this.maxTombstones = options.maxTombstones ?? MAX_TOMBSTONES;
    this.maxResumable = options.maxResumable ?? MAX_RESUMABLE;
    this.resumableUntil = options.resumableUntil ?? (() => 0);
  }

  // --- per-user limits -------------------------------------------------------------------------

  /**
   * The registry's limit rules (registry.ts `activate`), over every worker:
   * X-Unique ends the user's other sessions; at the cap, `refuse` refuses
   * and `close-oldest` ends the oldest. A session already counted (open on
   * another worker) is admitted again without counting twice; one ended
   * fleet-wide is refused.
   */
  admit(slot: Slot, req: AdmitRequest): AdmitAnswer {
    if (this.isEnded(req.sessionId)) return REFUSED;
    let entries = this.users.get(req.userKey);
    const existing = entries?.get(req.sessionId);
    if (existing !== undefined) {
      existing.holders.add(slot);
      return ADMITTED;
    }
    let end: string[] = [];
    if (entries !== undefined && entries.size > 0) {
      if (req.unique) {
        end = [...entries.keys()];
      } else if (req.max > 0 && entries.size >= req.max) {
        if (req.policy === 'refuse') return REFUSED;
        end = [...entries]
          .sort((a, b) => a[1].openedAt - b[1].openedAt)
          .slice(0, entries.size - req.max + 1)
          .map(([id]) => id);
      }
      // Counted no more from now: the caller ends them (FleetState.admit's contract), and a release that follows is a no-op.
      for (const id of end) this.uncount(id);
      entries = this.users.get(req.userKey);
    }
    if (entries === undefined) this.users.set(req.userKey, (entries = new Map()));
    entries.set(req.sessionId, { openedAt: req.openedAt, holders: new Set([slot]) });
    this.userOf.set(req.sessionId, req.userKey);
    return end.length === 0 ? ADMITTED : { admitted: true, end };
  }

  /** The worker's copy left its table; the session stops counting when no worker holds it. */
  release(slot: Slot, userKey: string, sessionId: string): void {
    const entry = this.users.get(userKey)?.get(sessionId);
    if (entry === undefined) return;
    entry.holders.delete(slot);
    if (entry.holders.size === 0) this.uncount(sessionId);
  }

  /** Sessions counted against `userKey` now. */
  countOfUser(userKey: string): number {
    return this.users.get(userKey)?.size ?? 0;
  }

  private uncount(sessionId: string): void {
    const userKey = this.userOf.get(sessionId);
    if (userKey === undefined) return;
    this.userOf.delete(sessionId);
    const entries = this.users.get(userKey);
    entries?.delete(sessionId);
    if (entries?.size === 0) this.users.delete(userKey);
  }

  // --- the fleet's session list ----------------------------------------------------------------

  publish(slot: Slot, s: PublishedSession): void {
    if (this.isEnded(s.id)) return;
    let record = this.sessions.get(s.id);
    if (record === undefined) {
      record = { id: s.id, openedAt: s.openedAt, seq: this.nextSeq++, joinKey: s.joinKey, marker: s.marker, expiresAt: s.expiresAt, holders: new Map() };
      this.sessions.set(s.id, record);
      this.placeInOrder(record);
      if (this.resumable.get(s.joinKey)?.id === s.id) this.resumable.delete(s.joinKey);
    } else if (s.marker !== undefined && s.expiresAt >= record.expiresAt) {
      // The newest marker: a re-check on any worker signs a fresher one.
      record.marker = s.marker;
      record.expiresAt = s.expiresAt;
    }
    record.joinKey = s.joinKey;
    this.byJoinKey.set(s.joinKey, s.id);
    record.holders.set(slot, { view: s.view, lastSeenAt: s.lastSeenAt, requests: s.requests, bytes: s.bytes });
  }

  /** New figures for a session the worker published before (ignored if it did not). */
  touch(slot: Slot, t: SessionTouch): void {
    const h = this.sessions.get(t.id)?.holders.get(slot);
    if (h === undefined) return;
    h.lastSeenAt = t.lastSeenAt;
    h.requests = t.requests;
    h.bytes = t.bytes;
  }

  unpublish(slot: Slot, sessionId: string): void {
    const record = this.sessions.get(sessionId);
    if (record !== undefined) this.letGo(record, slot);
  }

  /** `slot` no longer holds the session; the last holder's going forgets it. */
  private letGo(record: SessionRecord, slot: Slot): void {
    if (!record.holders.has(slot)) return;
    // Its view is made while a holder is left: a closed session stays findable with it.
    const last = record.holders.size === 1 ? this.viewOf(record) : undefined;
    record.holders.delete(slot);
    if (last !== undefined) this.forget(record, last);
  }

  /** No worker holds it open: unlisted; findable by join key a while longer (with `view`) unless it ended. */
  private forget(record: SessionRecord, view: FleetSessionView | undefined): void {
    this.sessions.delete(record.id);
    if (this.byJoinKey.get(record.joinKey) === record.id) this.byJoinKey.delete(record.joinKey);
    if (this.ordered.length > 2 * this.sessions.size + COMPACT_SLACK) this.compact();
    if (record.marker === undefined || view === undefined || this.isEnded(record.id)) return;
    const untilMs = this.resumableUntil(record.expiresAt, this.now());
    if (untilMs <= this.now()) return;
    this.resumable.delete(record.joinKey);
    this.resumable.set(record.joinKey, { id: record.id, marker: record.marker, view, untilMs });
    if (this.resumable.size > this.maxResumable) this.resumable.delete(this.resumable.keys().next().value!);
  }

  // --- ends --------------------------------------------------------------------------------------

  /**
   * Ends a session fleet-wide: its marker is refused until `untilMs`, it is
   * listed and counted no more. Returns false when it was already ended for
   * at least as long (nothing new to tell the workers).
   */
  end(e: FleetEnd): boolean {
    const known = this.tombstones.get(e.sessionId);
    if (known !== undefined && known.untilMs >= e.untilMs) return false;
    if (e.untilMs <= this.now()) return false;
    this.tombstones.delete(e.sessionId);
    this.tombstones.set(e.sessionId, e);
    if (this.tombstones.size > this.maxTombstones) this.tombstones.delete(this.tombstones.keys().next().value!);
    this.uncount(e.sessionId);
    const record = this.sessions.get(e.sessionId);
    if (record !== undefined) this.forget(record, undefined);
    return true;
  }

  isEnded(sessionId: string): boolean {
    const t = this.tombstones.get(sessionId);
    return t !== undefined && t.untilMs > this.now();
  }

  /** Ends still in force: what a worker that (re)starts must know. */
  liveEnds(): FleetEnd[] {
    const now = this.now();
    const out: FleetEnd[] = [];
    for (const t of this.tombstones.values()) if (t.untilMs > now) out.push(t);
    return out;
  }

  /** Drops tombstones and closed sessions past their time (the caller's timer). */
  sweep(): void {
    const now = this.now();
    for (const [id, t] of this.tombstones) if (t.untilMs <= now) this.tombstones.delete(id);
    for (const [joinKey, r] of this.resumable) if (r.untilMs <= now || this.isEnded(r.id)) this.resumable.delete(joinKey);
  }

  // --- a worker exits ----------------------------------------------------------------------------

  /** Everything `slot` held is let go: its sessions stop counting and are no longer listed (unless another worker holds them too). */
  dropWorker(slot: Slot): void {
    for (const [, entries] of this.users) {
      for (const [id, entry] of entries) {
        if (entry.holders.delete(slot) && entry.holders.size === 0) this.uncount(id);
      }
    }
    for (const record of [...this.sessions.values()]) this.letGo(record, slot);
  }

  // --- lookups -----------------------------------------------------------------------------------

  /**
   * FleetState.findMarker: an open session by join key or ID, or a closed one still resumable by
   * join key: its marker and view; a session ended fleet-wide: its end (its marker is refused).
   */
  findMarker(key: { readonly joinKey: number } | { readonly sessionId: string }): FleetFound | undefined {
    if ('sessionId' in key) return this.found(key.sessionId, this.sessions.get(key.sessionId));
    const id = this.byJoinKey.get(key.joinKey);
    if (id !== undefined) return this.found(id, this.sessions.get(id));
    const closed = this.resumable.get(key.joinKey);
    if (closed === undefined || closed.untilMs <= this.now()) return undefined;
    return this.endOf(closed.id) ?? { marker: closed.marker, session: closed.view };
  }

  private found(id: string, record: SessionRecord | undefined): FleetFound | undefined {
    const ended = this.endOf(id);
    if (ended !== undefined) return ended;
    return record?.marker === undefined ? undefined : { marker: record.marker, session: this.viewOf(record) };
  }

  private endOf(id: string): { readonly ended: FleetEnd } | undefined {
    const t = this.tombstones.get(id);
    return t !== undefined && t.untilMs > this.now() ? { ended: t } : undefined;
  }

  get size(): number {
    return this.sessions.size;
  }

  get(sessionId: string): FleetSessionView | undefined {
    const record = this.sessions.get(sessionId);
    return record === undefined ? undefined : this.viewOf(record);
  }

  /** One view of a session over its holders: the most recently seen holder's view, requests and bytes summed. */
  private viewOf(record: SessionRecord): FleetSessionView {
    let latest: [Slot, Holding] | undefined;
    let requests = 0;
    let bytes = 0;
    for (const entry of record.holders) {
      requests += entry[1].requests;
      bytes += entry[1].bytes;
      if (latest === undefined || entry[1].lastSeenAt > latest[1].lastSeenAt) latest = entry;
    }
    const [slot, h] = latest!;
    return { ...h.view, lastSeenAt: new Date(h.lastSeenAt).toISOString(), requests, bytes, edge: this.edgeName(slot) };
  }

  /** Keyset paging like SessionTable.page: oldest first, each session open throughout a walk seen once. */
  list(filter: SessionFilter, after: TablePosition | undefined, limit: number): FleetPage {
    const ordered = this.ordered;
    let i = after === undefined ? 0 : firstAfter(ordered, after);
    const sessions: FleetSessionView[] = [];
    let last: SessionRecord | undefined;
    let more = false;
    for (; i < ordered.length; i++) {
      const r = ordered[i]!;
      if (this.sessions.get(r.id) !== r || !viewMatches(this.anyView(r), filter)) continue;
      if (sessions.length === limit) {
        more = true;
        break;
      }
      sessions.push(this.viewOf(r));
      last = r;
    }
    let total = 0;
    for (const r of this.sessions.values()) if (viewMatches(this.anyView(r), filter)) total++;
    return { sessions, total, next: more && last !== undefined ? { openedAt: last.openedAt, seq: last.seq } : undefined, complete: true };
  }

  /** A holder's view: enough for filters and kinds (channel, names and kind are the same on every holder). */
  private anyView(record: SessionRecord): SessionView {
    return record.holders.values().next().value!.view;
  }

  countByKind(): Record<SessionKind, number> {
    const counts = { hls: 0, mpegts: 0 };
    for (const r of this.sessions.values()) counts[this.anyView(r).kind]++;
    return counts;
  }

  countByChannel(): Record<string, Record<SessionKind, number>> {
    const out: Record<string, Record<SessionKind, number>> = {};
    for (const r of this.sessions.values()) {
      const v = this.anyView(r);
      (out[v.channel] ??= { hls: 0, mpegts: 0 })[v.kind]++;
    }
    return out;
  }

  private placeInOrder(record: SessionRecord): void {
    const ordered = this.ordered;
    const tail = ordered[ordered.length - 1];
    if (tail === undefined || before(tail, record)) {
      ordered.push(record);
      return;
    }
    ordered.splice(firstAtOrAfter(ordered, record), 0, record);
  }

  private compact(): void {
    const ordered = this.ordered;
    let w = 0;
    for (const r of ordered) if (this.sessions.get(r.id) === r) ordered[w++] = r;
    ordered.length = w;
  }
}
