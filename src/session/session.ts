/**
 * A viewing session: one player watching one channel. HLS sessions live
 * across many requests tied together by the marker the edge writes into the
 * playlists; an MPEG-TS session is one long connection (plus reconnects that
 * join it while its decision holds).
 */
import { randomBytes } from 'node:crypto';
import type { Decision } from '../auth/types.js';

export type SessionKind = 'hls' | 'mpegts';

/** Something the edge can cut: an open MPEG-TS response. */
export interface Closable {
  destroy(): void;
}

/** 128 random bits, base64url: 22 characters, safe in a query string unencoded. */
export const SESSION_ID_LENGTH = 22;
const SESSION_ID_PATTERN = /^[A-Za-z0-9_-]{22}$/;

export function newSessionId(): string {
  return randomBytes(16).toString('base64url');
}

export function isWellFormedSessionId(text: string): boolean {
  return text.length === SESSION_ID_LENGTH && SESSION_ID_PATTERN.test(text);
}

export interface SessionOrigin {
  readonly channel: string;
  readonly kind: SessionKind;
  /** channel + token + IP + User-Agent: a reload of the same URL by the same player joins the session. */
  readonly joinKey: string;
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

export class Session implements SessionOrigin {
  readonly id: string;
  readonly channel: string;
  kind: SessionKind;
  readonly joinKey: string;
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
  /** Open MPEG-TS responses; a deny closes them. */
  readonly streams = new Set<Closable>();
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

  constructor(id: string, origin: SessionOrigin, now: number) {
    this.id = id;
    this.channel = origin.channel;
    this.kind = origin.kind;
    this.joinKey = origin.joinKey;
    this.clientIp = origin.clientIp;
    this.userAgent = origin.userAgent;
    this.host = origin.host;
    this.path = origin.path;
    this.query = origin.query;
    this.token = origin.token;
    this.referer = origin.referer;
    this.openedAt = now;
    this.lastSeenAt = now;
  }

  /** Short, non-secret tag for logs: the ID itself is a bearer credential. */
  get tag(): string {
    return this.id.slice(0, 6);
  }
}
