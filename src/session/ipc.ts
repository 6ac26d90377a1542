/**
 * The fleet of the workers of one host (`--workers N`, no Redis): their
 * primary holds the shared state (cluster/primary-state.ts) and each worker
 * talks to it over the cluster's IPC channel. This is the worker's side.
 *
 * - `admit`, `findMarker` and `list` are requests with an ID; the reply is
 *   awaited at most IPC_TIMEOUT_MS, after which the answer is `undefined`
 *   ("no fleet answer: decide locally"), as FleetState asks;
 * - `publish`, `unpublish`, `release` and `end` cost the caller a Map
 *   operation: they are sent in one batch per IPC_FLUSH_MS, a bounded
 *   number of sessions per batch. A session goes whole (its view, marker and
 *   join key) the first time and when its decision, kind or marker changed;
 *   otherwise only its figures (last seen, requests, bytes). Every
 *   IPC_REFRESH_MS the figures of every held session are sent again, so the
 *   bytes of an MPEG-TS stream that changes nothing else stay current;
 * - a batch is sent before any request, so the primary sees a release
 *   before the admission that follows it.
 *
 * The primary cannot come back empty: workers exit with it (Node's cluster
 * ends a worker whose channel closes), so nothing is re-published after a
 * slow episode; `connected` only says whether the last request was answered.
 */
import type { Logger } from 'pino';
import type { FromPrimary, FromWorker, PublishedSession, SessionTouch } from '../cluster/protocol.js';
import type { AdmitAnswer, AdmitRequest, FleetEnd, FleetFound, FleetPage, FleetState } from './fleet.js';
import type { Session } from './session.js';
import { viewOf, type SessionFilter, type TablePosition } from './table.js';

/** How long a request waits for the primary before the worker decides locally. The primary answers from memory: a miss means it is stalled. */
export const IPC_TIMEOUT_MS = 250;
/** Publishes, releases and ends wait at most this long to go out together. */
export const IPC_FLUSH_MS = 50;
/** Sessions sent whole per batch (a view is ~1 KB of JSON): a burst of new sessions spreads over several batches. */
export const MAX_FULL_PER_FLUSH = 500;
/** Sessions whose figures are sent per batch. */
export const MAX_TOUCH_PER_FLUSH = 5000;
/** Unpublishes, releases and ends per batch, each (a mass idle close spreads over batches; protocol.ts refuses bigger ones). */
export const MAX_IDS_PER_FLUSH = 10_000;
/** Every held session's figures are sent again this often. */
export const IPC_REFRESH_MS = 10_000;

const NO_ANSWER_PAGE: FleetPage = Object.freeze({ sessions: [], total: 0, next: undefined, complete: false });

/** What the primary was last sent of a session: when one of these changes, the session goes whole again. */
interface Sent {
  readonly decision: Session['decision'];
  readonly kind: Session['kind'];
  readonly marker: string | undefined;
}

export interface IpcFleetOptions {
  /** This worker's name in the fleet (`host:port/w2`). */
  readonly nodeName: string;
  /** Puts a message on the channel to the primary; false when it could not (the channel is closed). */
  readonly send: (message: FromWorker) => boolean;
  readonly log: Logger;
  readonly timeoutMs?: number;
  readonly flushMs?: number;
  readonly refreshMs?: number;
  /** The session's current marker (default: `session.marker`). */
  readonly markerOf?: (session: Session) => string | undefined;
  /** This worker's own sessions, for `list` when the primary does not answer. */
  readonly localList?: (filter: SessionFilter, after: TablePosition | undefined, limit: number) => FleetPage;
  /** The primary answers again (true) or stopped answering (false): edge_store_up. */
  readonly onConnected?: (connected: boolean) => void;
}

interface Pending {
  readonly resolve: (reply: Extract<FromPrimary, { t: 'reply' }> | undefined) => void;
  readonly timer: NodeJS.Timeout;
}

export class IpcFleet implements FleetState {
  readonly nodeName: string;
  private readonly options: IpcFleetOptions;
  private readonly timeoutMs: number;
  private readonly flushMs: number;
  private readonly markerOf: (session: Session) => string | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  /** Open sessions this worker published: refreshed every refreshMs. */
  private readonly held = new Map<string, Session>();
  /** Sessions the primary has not been sent yet (go first), and those with news. */
  private readonly fresh = new Map<string, Session>();
  private readonly dirty = new Map<string, Session>();
  private readonly sent = new WeakMap<Session, Sent>();
  private readonly unpublished = new Set<string>();
  private readonly releases: { userKey: string; sessionId: string }[] = [];
  private readonly ends: FleetEnd[] = [];
  private readonly endListeners: ((end: FleetEnd) => void)[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly refreshTimer: NodeJS.Timeout;
  private up = true;
  private closed = false;

  constructor(options: IpcFleetOptions) {
    this.options = options;
    this.nodeName = options.nodeName;
    this.timeoutMs = options.timeoutMs ?? IPC_TIMEOUT_MS;
    this.flushMs = options.flushMs ?? IPC_FLUSH_MS;
    this.markerOf = options.markerOf ?? ((session) => session.marker);
    this.refreshTimer = setInterval(() => this.refresh(), options.refreshMs ?? IPC_REFRESH_MS);
    this.refreshTimer.unref();
  }

  get connected(): boolean {
    return this.up && !this.closed;
  }

  /** A message from the primary (worker.ts parses and routes them). */
  receive(message: FromPrimary): void {
    if (message.t === 'reply') {
      const p = this.pending.get(message.id);
      if (p === undefined) return; // answered after its timeout: the worker already decided
      this.pending.delete(message.id);
      clearTimeout(p.timer);
      this.answered(true);
      p.resolve(message);
    } else if (message.t === 'ended') {
      for (const end of message.ends) for (const listener of this.endListeners) listener(end);
    }
  }

  async admit(req: AdmitRequest): Promise<AdmitAnswer | undefined> {
    const reply = await this.request({ t: 'admit', id: 0, req });
    return reply?.admit;
  }

  release(userKey: string, sessionId: string): void {
    if (this.closed) return;
    this.releases.push({ userKey, sessionId });
    this.schedule();
  }

  publish(session: Session): void {
    if (this.closed) return;
    const id = session.id;
    this.unpublished.delete(id);
    this.held.set(id, session);
    if (!this.sent.has(session)) this.fresh.set(id, session);
    else if (!this.fresh.has(id)) this.dirty.set(id, session);
    this.schedule();
  }

  unpublish(sessionId: string): void {
    if (this.closed) return;
    const session = this.held.get(sessionId);
    if (session === undefined) return;
    this.held.delete(sessionId);
    this.fresh.delete(sessionId);
    this.dirty.delete(sessionId);
    // Never sent: the primary never knew it.
    if (!this.sent.delete(session)) return;
    this.unpublished.add(sessionId);
    this.schedule();
  }

  end(end: FleetEnd): void {
    if (this.closed) return;
    this.ends.push(end);
    this.schedule();
  }

  onEnd(listener: (end: FleetEnd) => void): void {
    this.endListeners.push(listener);
  }

  async findMarker(key: { readonly joinKey: number } | { readonly sessionId: string }): Promise<FleetFound | undefined> {
    const reply = await this.request('joinKey' in key ? { t: 'find', id: 0, joinKey: key.joinKey } : { t: 'find', id: 0, sessionId: key.sessionId });
    return reply?.found ?? undefined;
  }

  async list(filter: SessionFilter, after: TablePosition | undefined, limit: number): Promise<FleetPage> {
    const reply = await this.request({ t: 'list', id: 0, filter, after, limit });
    if (reply?.page !== undefined) return reply.page;
    const local = this.options.localList?.(filter, after, limit);
    return local === undefined ? NO_ANSWER_PAGE : { ...local, complete: false };
  }

  /** Sends what is pending, then stops: later calls are no-ops and requests answer `undefined`. Idempotent. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    // Everything pending goes in as many batches as it takes: the primary drops this worker's sessions when it exits anyway, this only makes it sooner.
    while (this.hasPending()) this.flush();
    this.closed = true;
    clearInterval(this.refreshTimer);
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.resolve(undefined);
    }
    return Promise.resolve();
  }

  // --- requests ----------------------------------------------------------------------------------

  private request(message: Extract<FromWorker, { t: 'admit' | 'find' | 'list' }>): Promise<Extract<FromPrimary, { t: 'reply' }> | undefined> {
    if (this.closed) return Promise.resolve(undefined);
    // The batch first: a release sent before this request must reach the primary before it.
    if (this.hasPending()) this.flush();
    const id = this.nextId++;
    return new Promise((resolve) => {
      let delivered: boolean;
      try {
        delivered = this.options.send({ ...message, id });
      } catch {
        delivered = false;
      }
      if (!delivered) {
        this.answered(false);
        resolve(undefined);
        return;
      }
      const timer = setTimeout(() => {
        this.pending.delete(id);
        this.answered(false);
        resolve(undefined);
      }, this.timeoutMs);
      timer.unref();
      this.pending.set(id, { resolve, timer });
    });
  }

  /** Logs once per episode: the first unanswered request, and the first answer after. */
  private answered(ok: boolean): void {
    if (ok === this.up) return;
    this.up = ok;
    if (ok) this.options.log.info('the primary answers again: limits, lookups and the session list are fleet-wide again');
    else this.options.log.warn({ timeoutMs: this.timeoutMs }, 'the primary did not answer in time: this worker applies limits and finds sessions on its own until it does');
    this.options.onConnected?.(ok);
  }

  // --- batches -----------------------------------------------------------------------------------

  private hasPending(): boolean {
    return this.fresh.size > 0 || this.dirty.size > 0 || this.unpublished.size > 0 || this.releases.length > 0 || this.ends.length > 0;
  }

  private schedule(): void {
    if (this.flushTimer !== undefined || this.closed) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      this.flush();
      if (this.hasPending()) this.schedule();
    }, this.flushMs);
    this.flushTimer.unref();
  }

  private refresh(): void {
    for (const [id, session] of this.held) if (!this.fresh.has(id)) this.dirty.set(id, session);
    if (this.dirty.size > 0) this.schedule();
  }

  /** One batch: new sessions first, then news, each within its budget; what is left waits for the next. */
  private flush(): void {
    const publish: PublishedSession[] = [];
    const touch: SessionTouch[] = [];
    for (const [id, session] of this.fresh) {
      if (publish.length === MAX_FULL_PER_FLUSH) break;
      this.fresh.delete(id);
      publish.push(this.whole(session));
    }
    for (const [id, session] of this.dirty) {
      if (touch.length === MAX_TOUCH_PER_FLUSH) break;
      const sent = this.sent.get(session);
      if (sent === undefined || sent.decision !== session.decision || sent.kind !== session.kind || sent.marker !== this.markerOf(session)) {
        if (publish.length === MAX_FULL_PER_FLUSH) continue;
        publish.push(this.whole(session));
      } else {
        touch.push({ id, lastSeenAt: session.lastSeenAt, requests: session.requests, bytes: session.bytes });
      }
      this.dirty.delete(id);
    }
    const unpublish: string[] = [];
    for (const id of this.unpublished) {
      if (unpublish.length === MAX_IDS_PER_FLUSH) break;
      this.unpublished.delete(id);
      unpublish.push(id);
    }
    const release = this.releases.splice(0, MAX_IDS_PER_FLUSH);
    const end = this.ends.splice(0, MAX_IDS_PER_FLUSH);
    if (publish.length + touch.length + unpublish.length + release.length + end.length === 0) return;
    try {
      this.options.send({ t: 'batch', publish, touch, unpublish, release, end });
    } catch {
      // The channel closed: the primary drops this worker's sessions when it sees the exit.
    }
  }

  private whole(session: Session): PublishedSession {
    const marker = this.markerOf(session);
    this.sent.set(session, { decision: session.decision, kind: session.kind, marker });
    return { id: session.id, joinKey: session.joinKey, marker, openedAt: session.openedAt, expiresAt: session.expiresAt, lastSeenAt: session.lastSeenAt, requests: session.requests, bytes: session.bytes, view: viewOf(session) };
  }
}
