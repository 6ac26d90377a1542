/**
 * The session table: the sessions that are open right now (an HLS player
 * requesting within the idle timeout, an MPEG-TS connection that is up), with
 * an index by user for the per-user limits, and one in opening order that the
 * admin API pages through without sorting the table on every request.
 */
import type { Session, SessionKind } from './session.js';

export interface SessionFilter {
  readonly channel?: string;
  /** Matches the session name (X-Session-Name) or the user (X-UserId). */
  readonly name?: string;
  /** Lower-case text found in the channel, the session name or the user (the status page's filter box). */
  readonly text?: string;
}

/**
 * A place in the table's order: opening time, then the order in which
 * sessions first entered the table (unique). Not the session ID: a position
 * travels in URLs (the admin API's cursor), and an ID is a viewer credential.
 */
export interface TablePosition {
  readonly openedAt: number;
  readonly seq: number;
}

export interface SessionPage {
  readonly sessions: readonly Session[];
  /** Open sessions matching the filter, on every page. */
  readonly total: number;
  /** Where the next page starts; undefined on the last page. */
  readonly next: TablePosition | undefined;
}

/** A session's slot in the ordered index; made once per session, kept across idle/resume. */
interface OrderEntry extends TablePosition {
  readonly session: Session;
}

/** Removed sessions leave their slot until the index holds this many more slots than open sessions, plus as many again. */
const COMPACT_SLACK = 64;

/** Whether `a` comes before `b` in opening order (equal opening times: by seq). */
export function before(a: TablePosition, b: TablePosition): boolean {
  return a.openedAt < b.openedAt || (a.openedAt === b.openedAt && a.seq < b.seq);
}

/** Index of the first slot of `ordered` (sorted by `before`) not before `p`: a binary search. */
export function firstAtOrAfter(ordered: readonly TablePosition[], p: TablePosition): number {
  let lo = 0;
  let hi = ordered.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (before(ordered[mid]!, p)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the first slot of `ordered` after `p` (a page cursor: the slot at `p` itself is skipped). */
export function firstAfter(ordered: readonly TablePosition[], p: TablePosition): number {
  const i = firstAtOrAfter(ordered, p);
  const e = ordered[i];
  return e !== undefined && e.openedAt === p.openedAt && e.seq === p.seq ? i + 1 : i;
}

export function matchesFilter(s: Session, filter: SessionFilter): boolean {
  const d = s.decision;
  return matchesFields(s.channel, d?.sessionName, d?.userId, filter);
}

/** The filter on the fields it reads: a session here, a listing entry of another edge (session/redis.ts). */
export function matchesFields(channel: string, sessionName: string | null | undefined, userId: string | null | undefined, filter: SessionFilter): boolean {
  if (filter.channel !== undefined && channel !== filter.channel) return false;
  if (filter.name !== undefined && sessionName !== filter.name && userId !== filter.name) return false;
  const text = filter.text;
  if (text !== undefined && text !== '') {
    return channel.toLowerCase().includes(text) || (sessionName?.toLowerCase().includes(text) ?? false) || (userId?.toLowerCase().includes(text) ?? false);
  }
  return true;
}

/** The JSON shape of a session in the admin API and the close notification. */
export interface SessionView {
  readonly id: string;
  readonly channel: string;
  readonly kind: SessionKind;
  readonly name: string | null;
  readonly userId: string | null;
  readonly ip: string;
  readonly userAgent: string;
  readonly openedAt: string;
  readonly lastSeenAt: string;
  readonly requests: number;
  readonly bytes: number;
  readonly state: 'open' | 'idle' | 'ended';
  readonly decision: {
    readonly result: 'allow' | 'deny' | 'pending';
    readonly reason: string | null;
    readonly source: string | null;
    readonly decidedAt: string | null;
    readonly expiresAt: string | null;
  };
  /** Why the session was allowed or denied (operator issue, part 1). Flat: the close webhook sends it as why_* fields. */
  readonly why: SessionWhy;
  /**
   * When the decision stops being fresh and the middleware is asked again (at
   * the session's next request, or by a timer for an MPEG-TS stream); null
   * while a check runs, and for an ended session.
   */
  readonly nextCheckAt: string | null;
}

export interface SessionWhy {
  /** `securetoken` is a local rule of its own here; null while the first check runs. */
  readonly decidedBy: 'rule' | 'securetoken' | 'backend' | 'default' | 'marker' | null;
  /** The local rule's (or securetoken's) reason: `ip_allowed`, `token_denied`, `securetoken_expired`… */
  readonly rule: string | null;
  /** The middleware that answered, its HTTP status and its verdict's reason. */
  readonly backend: string | null;
  readonly status: number | null;
  readonly reason: string | null;
  /** The default action that applied, and why: the middleware's failure code, or `no_backend_configured`. */
  readonly defaultAction: string | null;
  readonly failure: string | null;
  /** Why the session ended (kicked, a deny from its re-check, unique, limit), once it has. */
  readonly ended: string | null;
  /** A few words for a table cell: `backend portal 200`, `rule ip_allowed`, `default allow: timeout`. */
  readonly short: string;
  /** The same in one sentence. */
  readonly text: string;
}

/** Largest time a Date holds: a decision kept "for ever" has no next check. */
const MAX_DATE_MS = 8.64e15;

const BACKEND_FAILURE_PREFIX = 'EDGE_ERR_BACKEND_';

/** `EDGE_ERR_BACKEND_TIMEOUT` → `timeout`: what a table cell has room for. */
function shortFailure(failure: string): string {
  return (failure.startsWith(BACKEND_FAILURE_PREFIX) ? failure.slice(BACKEND_FAILURE_PREFIX.length) : failure).toLowerCase();
}

/**
 * Built for every row of a listing (22,000 for a whole table): one object
 * of one shape, a few short strings, no spread, no regular expression.
 */
function whyOf(s: Session): SessionWhy {
  const d = s.decision;
  const ended = s.endReason ?? null;
  let decidedBy: SessionWhy['decidedBy'] = null;
  let rule: string | null = null;
  let backend: string | null = null;
  let status: number | null = null;
  let reason: string | null = null;
  let defaultAction: string | null = null;
  let failure: string | null = null;
  let short: string;
  let text: string;
  if (d === undefined) {
    short = 'pending';
    text = 'waiting for the first decision';
  } else {
    const verb = d.allow ? 'allowed' : 'denied';
    if (d.source === 'rule') {
      decidedBy = d.reason.startsWith('securetoken_') ? 'securetoken' : 'rule';
      rule = d.reason;
      short = `${decidedBy} ${rule}`;
      text = `${verb} by ${decidedBy === 'securetoken' ? 'securetoken' : 'a local rule'} (${rule})`;
    } else if (d.source === 'marker') {
      // Rebuilt from another edge's signed marker: that edge asked the middleware, this one did not.
      decidedBy = 'marker';
      reason = d.reason;
      short = 'marker (fleet)';
      text = `${verb} by a signed marker of another edge of the fleet: no middleware call here until it expires`;
    } else if (d.source === 'default') {
      decidedBy = 'default';
      reason = d.reason;
      defaultAction = d.defaultAction ?? null;
      failure = d.failure ?? d.reason;
      short = `default ${defaultAction ?? ''}: ${shortFailure(failure)}`;
      const because = d.reason === 'no_backend_configured' ? 'no middleware is configured' : `the middleware was unavailable (${failure})`;
      text = `${verb} by the default action${defaultAction === null ? '' : ` (${defaultAction})`}: ${because}`;
    } else {
      decidedBy = 'backend';
      backend = d.backend ?? null;
      status = d.status ?? null;
      reason = d.reason;
      const who = backend === null ? '' : ` ${backend}`;
      // `backend_403` says nothing the status does not: shown once.
      short = status === null ? `backend${who} ${reason}` : reason === `backend_${status}` ? `backend${who} ${status}` : `backend${who} ${status} ${reason}`;
      text = `${verb} by the middleware${who}${status === null ? '' : `: it answered ${status}`} (${reason})`;
    }
  }
  if (ended !== null) {
    short = `ended ${ended} (${short})`;
    text = `${text}; then ended (${ended})`;
  }
  return { decidedBy, rule, backend, status, reason, defaultAction, failure, ended, short, text };
}

export function viewOf(s: Session): SessionView {
  const d = s.decision;
  const expiresAt = d === undefined || !(s.expiresAt < MAX_DATE_MS) ? null : new Date(s.expiresAt).toISOString();
  return {
    id: s.id,
    channel: s.channel,
    kind: s.kind,
    name: d?.sessionName ?? d?.userId ?? null,
    userId: d?.userId ?? null,
    ip: s.clientIp,
    userAgent: s.userAgent,
    openedAt: new Date(s.openedAt).toISOString(),
    lastSeenAt: new Date(s.lastSeenAt).toISOString(),
    requests: s.requests,
    bytes: s.bytes,
    state: s.endReason !== undefined ? 'ended' : s.active ? 'open' : 'idle',
    decision: {
      result: d === undefined ? 'pending' : d.allow ? 'allow' : 'deny',
      reason: s.endReason ?? d?.reason ?? null,
      source: d?.source ?? null,
      decidedAt: d === undefined ? null : new Date(d.decidedAt).toISOString(),
      expiresAt,
    },
    why: whyOf(s),
    nextCheckAt: s.endReason !== undefined || s.pending !== undefined ? null : expiresAt,
  };
}

const NO_SESSIONS: ReadonlySet<Session> = new Set();

export class SessionTable {
  private readonly open = new Map<string, Session>();
  private readonly byUser = new Map<string, Set<Session>>();
  /** Open sessions per channel, kept as a count so a new session's check does not scan the table. */
  private readonly perChannel = new Map<string, number>();
  /**
   * Open sessions sorted by (openedAt, seq). Mostly appended to: a new
   * session is the newest. A session that resumes after idling, or that the
   * middleware decided after a younger one, is inserted in place (binary
   * search). Removal leaves the slot (dead: not in `open`) until compaction.
   */
  private ordered: OrderEntry[] = [];
  private readonly entryOf = new WeakMap<Session, OrderEntry>();
  private nextSeq = 0;

  get size(): number {
    return this.open.size;
  }

  get(id: string): Session | undefined {
    return this.open.get(id);
  }

  /** Open sessions on `channel`. */
  onChannel(channel: string): number {
    return this.perChannel.get(channel) ?? 0;
  }

  add(session: Session, userKey: string | undefined): void {
    this.open.set(session.id, session);
    this.placeInOrder(session);
    this.perChannel.set(session.channel, (this.perChannel.get(session.channel) ?? 0) + 1);
    session.active = true;
    session.userKey = userKey;
    if (userKey === undefined) return;
    let set = this.byUser.get(userKey);
    if (set === undefined) this.byUser.set(userKey, (set = new Set()));
    set.add(session);
  }

  remove(session: Session): boolean {
    if (this.open.get(session.id) !== session) return false;
    this.open.delete(session.id);
    if (this.ordered.length > 2 * this.open.size + COMPACT_SLACK) this.compact();
    const left = (this.perChannel.get(session.channel) ?? 1) - 1;
    if (left === 0) this.perChannel.delete(session.channel);
    else this.perChannel.set(session.channel, left);
    session.active = false;
    const key = session.userKey;
    if (key !== undefined) {
      const set = this.byUser.get(key);
      set?.delete(session);
      if (set?.size === 0) this.byUser.delete(key);
    }
    return true;
  }

  /**
   * Open sessions of a user (key as built by the registry), oldest first: in
   * the order they were opened or resumed, which is the Set's insertion
   * order, so nothing is sorted (item 9: a sort per open made one shared
   * X-Session-Name with 30k sessions 2.4× slower to open).
   */
  ofUser(userKey: string): ReadonlySet<Session> {
    return this.byUser.get(userKey) ?? NO_SESSIONS;
  }

  countOfUser(userKey: string): number {
    return this.byUser.get(userKey)?.size ?? 0;
  }

  values(): IterableIterator<Session> {
    return this.open.values();
  }

  list(filter: SessionFilter = {}): Session[] {
    const out: Session[] = [];
    for (const s of this.open.values()) if (matchesFilter(s, filter)) out.push(s);
    return out;
  }

  /**
   * Up to `limit` open sessions matching `filter`, oldest first, starting
   * after `after`. Keyset paging: sessions opened or closed between two pages
   * neither repeat nor shift a page; every session open throughout a walk is
   * seen exactly once. Costs a binary search plus the slots scanned (all of
   * them for a filter that matches little), never a sort.
   */
  page(filter: SessionFilter, after: TablePosition | undefined, limit: number): SessionPage {
    const ordered = this.ordered;
    let i = after === undefined ? 0 : firstAfter(ordered, after);
    const sessions: Session[] = [];
    let last: OrderEntry | undefined;
    let more = false;
    for (; i < ordered.length; i++) {
      const e = ordered[i]!;
      if (this.open.get(e.session.id) !== e.session || !matchesFilter(e.session, filter)) continue;
      if (sessions.length === limit) {
        more = true;
        break;
      }
      sessions.push(e.session);
      last = e;
    }
    return { sessions, total: this.count(filter), next: more && last !== undefined ? { openedAt: last.openedAt, seq: last.seq } : undefined };
  }

  /** Open sessions matching `filter`: free without a filter or with only a channel, a scan otherwise. */
  count(filter: SessionFilter): number {
    const textless = filter.text === undefined || filter.text === '';
    if (filter.name === undefined && textless) return filter.channel === undefined ? this.open.size : this.onChannel(filter.channel);
    let n = 0;
    for (const s of this.open.values()) if (matchesFilter(s, filter)) n++;
    return n;
  }

  private placeInOrder(session: Session): void {
    let e = this.entryOf.get(session);
    if (e === undefined) {
      e = { session, openedAt: session.openedAt, seq: this.nextSeq++ };
      this.entryOf.set(session, e);
    }
    const ordered = this.ordered;
    const tail = ordered[ordered.length - 1];
    if (tail === undefined || before(tail, e)) {
      ordered.push(e);
      return;
    }
    const i = firstAtOrAfter(ordered, e);
    // A session back from idling before compaction still has its slot.
    if (ordered[i] !== e) ordered.splice(i, 0, e);
  }

  /** Drops the slots of closed sessions, in place, keeping the order. */
  private compact(): void {
    const ordered = this.ordered;
    let w = 0;
    for (const e of ordered) if (this.open.get(e.session.id) === e.session) ordered[w++] = e;
    ordered.length = w;
  }

  countByKind(): Record<SessionKind, number> {
    const counts = { hls: 0, mpegts: 0 };
    for (const s of this.open.values()) counts[s.kind]++;
    return counts;
  }

  countByChannel(): Record<string, Record<SessionKind, number>> {
    const out: Record<string, Record<SessionKind, number>> = {};
    for (const s of this.open.values()) {
      const c = (out[s.channel] ??= { hls: 0, mpegts: 0 });
      c[s.kind]++;
    }
    return out;
  }
}
