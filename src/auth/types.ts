/**
 * The authorization vocabulary. A backend answers allow or deny (a deny is a
 * value) and throws an EdgeError only when it could not decide (STYLE §2);
 * what to do then is policy, decided in one place: the Authorizer.
 */

import type { DefaultAction } from '../config/schema.js';

/** What the edge knows about a request when it asks the middleware. */
export interface AuthRequest {
  readonly sessionId: string;
  readonly channel: string;
  readonly clientIp: string;
  /** Raw request path, without the query. */
  readonly path: string;
  /** Raw query string of the client's request (without `?` and without the edge's marker). */
  readonly query: string;
  readonly userAgent: string;
  /** The client's Host header. */
  readonly host: string;
  readonly kind: 'hls' | 'mpegts';
  /** `new` for the first check of a session, `update` for a re-check. */
  readonly requestType: 'new' | 'update';
  /**
   * Value of the token parameter (session.tokenParam), if the query has one,
   * decoded as the middleware reads it (`+` is a space, `%XX` a byte of
   * UTF-8): backends that build a query encode it again.
   */
  readonly token: string | undefined;
  /** How many checks this session had before this one (0 for the first): Flussonic's request_number. */
  readonly requestNumber: number;
  /** Open sessions on this channel / on the whole edge (Flussonic's stream_clients, total_clients). */
  readonly streamClients: number;
  readonly totalClients: number;
  /** The client's Referer header, or ''. */
  readonly referer: string;
}

/** A backend's answer. */
export interface BackendVerdict {
  readonly allow: boolean;
  /** Short machine-readable reason: `backend_200`, `backend_403`, `expired`… */
  readonly reason: string;
  /** The middleware's HTTP status, when it answered (absent when it decided without a call: `no_token`). */
  readonly status?: number;
  /** The name of the middleware that answered (set by the Authorizer, or by ParallelBackend for one of several). */
  readonly backend?: string;
  /** TTL the middleware asked for (X-AuthDuration / Cache-Control max-age), ms. */
  readonly ttlMs?: number;
  /** Deny with a redirect target (X-Location). */
  readonly location?: string;
  /** X-Session-Name: login or any label shown for the session. */
  readonly sessionName?: string;
  readonly userId?: string;
  readonly maxSessions?: number;
  readonly unique?: boolean;
}

/**
 * How GuardedBackend cancels a call it made (the hard limit, shutdown): an
 * AbortSignal's job without its cost (in Node 20 creating a signal costs
 * ~2.7 µs and its first listener ~2 µs, per middleware call). The callee
 * sets `onAbort` while the call can still be cut.
 */
export class CallAbort {
  aborted = false;
  reason: unknown = undefined;
  onAbort: ((reason: unknown) => void) | undefined = undefined;

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.onAbort?.(reason);
  }
}

export interface AuthBackend {
  /** Bounded label for metrics and logs (the backend type, or a configured name). */
  readonly name: string;
  /**
   * Resolves with a verdict, rejects with an EdgeError (EDGE_ERR_BACKEND_*) when it could not decide.
   * `signal`: the caller stops waiting when it aborts. Absent when the caller never cancels a single
   * call: with a backend that `boundsCallers`, the Authorizer passes none, and shutdown goes through
   * `cancel()` (an AbortSignal and its first listener cost ~5 µs per call in Node 20).
   */
  check(request: AuthRequest, signal?: AbortSignal): Promise<BackendVerdict>;
  /**
   * True when every `check()` settles within a bound of its own (GuardedBackend: 2 ×
   * backend.timeout) and `cancel()` ends every call: the caller needs no timer or signal per call.
   */
  readonly boundsCallers?: boolean;
  /** `check` for a caller that cancels through a CallAbort instead of an AbortSignal (the HTTP backends: backends/call.ts). */
  checkAbortable?(request: AuthRequest, abort: CallAbort): Promise<BackendVerdict>;
  /** Stops once the calls in flight are over (SIGHUP retires a backend this way), then closes its connections. */
  close(): Promise<void>;
  /**
   * Shutdown: cancels every call at once, including those whose caller no
   * longer waits (GuardedBackend keeps them running until the middleware
   * answers). Backends that hold no call beyond their caller's signal need none.
   */
  cancel?(): void;
}

/**
 * `shed` is no decision at all: the edge shed the middleware call (no free
 * slot in time, or its queue full). It is never stored on a session; the
 * request that waited for it gets 503 with Retry-After.
 */
/** `marker`: carried by a signed marker issued by another edge of the fleet (session/marker.ts). */
export type DecisionSource = 'backend' | 'default' | 'rule' | 'shed' | 'marker';

/**
 * A decision as the edge keeps it on a session. Why it was made (the admin
 * API's `why`) is read from these fields, all references to strings that
 * exist anyway (a backend's name, a code): nothing is built per session.
 */
export interface Decision extends BackendVerdict {
  readonly source: DecisionSource;
  /** When it was made (ms since epoch). */
  readonly decidedAt: number;
  /** Source `shed` only: the Retry-After (seconds) the viewer gets. */
  readonly retryAfterS?: number;
  /** Source `default`: the action that applied, and the failure that made it apply (an EDGE_ERR_BACKEND_* code). */
  readonly defaultAction?: DefaultAction;
  readonly failure?: string;
}
