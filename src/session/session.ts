/**
 * A viewing session: one player watching one channel. HLS sessions live
 * across many requests tied together by the marker the edge writes into the
 * playlists; an MPEG-TS session is one long connection (plus reconnects that
 * join it while its decision holds).
 */
import { randomBytes, randomFillSync } from 'node:crypto';
import type { Decision } from '../auth/types.js';

export type SessionKind = 'hls' | 'mpegts';

/** Something the edge can cut: an open MPEG-TS response. */
export interface Closable {
  destroy(): void;
}

/** 128 random bits, base64url: 22 characters, safe in a query string unencoded. */
export const SESSION_ID_LENGTH = 22;
const SESSION_ID_PATTERN = /^[A-Za-z0-9_-]{22}$/;

const SESSION_ID_BYTES = 16;
/** Random bytes drawn at once for the hot path's session IDs: 256 IDs per draw. */
const SESSION_ID_POOL_BYTES = 4096;

/** One session ID (a one-off: `check`, tests). The registry draws its IDs from a {@link SessionIds}. */
export function newSessionId(): string {
  return randomBytes(SESSION_ID_BYTES).toString('base64url');
}

/**
 * Session IDs for a registry: the same 128 bits from the CSPRNG per ID as
 * newSessionId, drawn 4 KiB at a time. crypto.randomBytes costs ~6 µs per
 * call, most of it the call itself; an ID cut from the pool ~0.2 µs. Every
 * byte is used for one ID only.
 */
export class SessionIds {
  private readonly pool = Buffer.allocUnsafeSlow(SESSION_ID_POOL_BYTES);
  private offset = SESSION_ID_POOL_BYTES;

  next(): string {
    if (this.offset === SESSION_ID_POOL_BYTES) {
      randomFillSync(this.pool);
      this.offset = 0;
    }
    const id = this.pool.toString('base64url', this.offset, this.offset + SESSION_ID_BYTES);
    this.offset += SESSION_ID_BYTES;
    return id;
  }
}

export function isWellFormedSessionId(text: string): boolean {
  return text.length === SESSION_ID_LENGTH && SESSION_ID_PATTERN.test(text);
}

export interface SessionOrigin {
  readonly channel: string;
  readonly kind: SessionKind;
  readonly clientIp: string;
  readonly userAgent: string;
  readonly host: string;
  /** Path and raw query (without the marker) of the request that opened the session: re-checks reuse them. */
  readonly path: string;
  readonly query: string;
  /** Value of the token parameter in `query`, decoded as the middleware reads it (proxy/query.ts), if any. */
  readonly token: string | undefined;
  readonly referer: string;
}

/**
 * The join key: channel + token (the whole query without one) + client IP +
 * User-Agent, hashed to 53 bits. A reload of the same URL by the same player
 * joins the session (Flussonic keys sessions the same way, PROTOCOLS §5).
 * A number, not the concatenated string: the string cost ~250 bytes per
 * stored session and kept the request's strings alive (hardening issue,
 * item 6). A hash can collide: `isSameJoin` confirms a match field by field,
 * so a collision only means a reload opens a new session.
 */
export function joinKeyOf(origin: SessionOrigin): number {
  const rest = origin.token ?? origin.query;
  const kind = origin.token === undefined ? 0x71 /* q */ : 0x74; /* t */
  const lo = fnv(origin.userAgent, fnv(origin.clientIp, fnv(rest, fnv(origin.channel, kind ^ 0x811c9dc5, 0x01000193), 0x01000193), 0x01000193), 0x01000193);
  const hi = fnv(origin.userAgent, fnv(origin.clientIp, fnv(rest, fnv(origin.channel, kind ^ 0x050c5d1f, 0x5bd1e995), 0x5bd1e995), 0x5bd1e995), 0x5bd1e995);
  // 21 + 32 bits: an exact integer in a double (Number.MAX_SAFE_INTEGER is 2^53 - 1).
  return (hi >>> 11) * 0x100000000 + (lo >>> 0);
}

/** FNV-1a style, 32 bits, over `s` and a separator (so "ab"+"c" and "a"+"bc" differ). */
function fnv(s: string, seed: number, prime: number): number {
  let h = seed;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), prime);
  h = Math.imul(h ^ 0x0a, prime);
  return h ^ (h >>> 15);
}

/** Whether a request from `origin` is the same player on the same URL as `session` (what the join key hashes). */
export function isSameJoin(session: Session, origin: SessionOrigin): boolean {
  return (
    session.channel === origin.channel &&
    session.clientIp === origin.clientIp &&
    session.userAgent === origin.userAgent &&
    (origin.token === undefined ? session.token === undefined && session.query === origin.query : session.token === origin.token)
  );
}

/** Shared by every session without an open stream (typed read-only: nobody adds to it). */
const NO_STREAMS: ReadonlySet<Closable> = new Set();

/**
 * Every field is set in the constructor in one order, so that all sessions
 * share one hidden class; the strings are the registry's compact copies
 * (registry.ts): nothing here may point into a request.
 */
export class Session implements SessionOrigin {
  readonly id: string;
  readonly channel: string;
  kind: SessionKind;
  readonly joinKey: number;
  readonly clientIp: string;
  readonly userAgent: string;
  readonly host: string;
  readonly path: string;
  readonly query: string;
  readonly token: string | undefined;
  readonly referer: string;
  readonly openedAt: number;
  /** Middleware checks made for this session so far. */
  checks = 0;
  lastSeenAt: number;
  requests = 0;
  bytes = 0;
  decision: Decision | undefined = undefined;
  /** When `decision` stops being fresh (ms since epoch). */
  expiresAt = 0;
  /** The middleware call in flight for this session: concurrent requests share it. */
  pending: Promise<Decision> | undefined = undefined;
  /** Ever allowed: `keep-granted` keeps such sessions playing while the middleware is down. */
  granted = false;
  /** Why the session ended (a deny from a re-check), or undefined while it lives. */
  endReason: string | undefined = undefined;
  /** Open MPEG-TS responses; created with the first one (an empty Set costs ~300 bytes per stored session). */
  private openStreams: Set<Closable> | undefined = undefined;
  /** In the session table (open): a recent HLS request or a live MPEG-TS connection. */
  active = false;
  /** Key of the per-user limit this session counts against, while open. */
  userKey: string | undefined = undefined;
  /** Re-check timer for sessions that only hold an open stream and send no requests. */
  recheckTimer: NodeJS.Timeout | undefined = undefined;
  /**
   * Open periods so far (the first is `session opened`, later ones `session
   * resumed`: an MPEG-TS reconnect, an HLS player back from idling), and
   * where the current one started, so a close reports that period apart from
   * the session's totals.
   */
  activations = 0;
  activatedAt = 0;
  bytesAtActivation = 0;
  /**
   * What the playlists carry for this session: its ID, or with session.secret
   * a signed marker (marker.ts) any edge of the fleet can verify, re-signed
   * with each new decision.
   */
  marker: string;

  constructor(id: string, origin: SessionOrigin, now: number, joinKey: number = joinKeyOf(origin)) {
    this.id = id;
    this.channel = origin.channel;
    this.kind = origin.kind;
    this.joinKey = joinKey;
    this.clientIp = origin.clientIp;
    this.userAgent = origin.userAgent;
    this.host = origin.host;
    this.path = origin.path;
    this.query = origin.query;
    this.token = origin.token;
    this.referer = origin.referer;
    this.openedAt = now;
    this.lastSeenAt = now;
    this.marker = id;
  }

  /** Open MPEG-TS responses; a deny closes them. */
  get streams(): ReadonlySet<Closable> {
    return this.openStreams ?? NO_STREAMS;
  }

  addStream(stream: Closable): void {
    (this.openStreams ??= new Set()).add(stream);
  }

  /** False when `stream` was not attached (already detached). */
  deleteStream(stream: Closable): boolean {
    if (this.openStreams?.delete(stream) !== true) return false;
    if (this.openStreams.size === 0) this.openStreams = undefined;
    return true;
  }

  /** Destroys every open stream and forgets them. */
  destroyStreams(): void {
    const streams = this.openStreams;
    if (streams === undefined) return;
    this.openStreams = undefined;
    for (const stream of streams) stream.destroy();
  }

  /** Short, non-secret tag for logs: the ID itself is a bearer credential. */
  get tag(): string {
    return this.id.slice(0, 6);
  }
}
