/**
 * A middleware call split in its two pure halves, so that what the edge sends
 * and what `astra-auth-edge check` shows are built by the same code (operator
 * issue, part 1): `describeRequest` builds the exact request (method, origin,
 * request target, headers) from an AuthRequest, `interpret` turns the answer
 * into a verdict or throws when the answer is no decision. The I/O in between
 * is MiddlewareClient.send on the edge, and the step-by-step exchange of
 * check/exchange.ts in `check`.
 */
import type { BackendType } from '../../config/schema.js';
import type { AuthBackend, AuthRequest, BackendVerdict, CallAbort } from '../types.js';
import type { MiddlewareAnswer, MiddlewareClient } from './client.js';

/** The one User-Agent the portal-style backends send (the `http` type forwards none: Astra sends none either). */
export const MIDDLEWARE_USER_AGENT = 'astra-auth-edge';

/** One request to the middleware, exactly as sent. */
export interface MiddlewareCall {
  readonly method: 'GET';
  /** `scheme://host[:port]` (the URL parser's origin: no credentials, no default port). */
  readonly origin: string;
  /** The request target: path and query, byte for byte. */
  readonly path: string;
  /** Name/value pairs in order. The HTTP client adds `host` and `connection` (undici: keep-alive). */
  readonly headers: readonly string[];
  /** The verdict depends on the body (Smarty): read it, up to backend.maxBodyBytes. */
  readonly readBody: boolean;
}

/** What a backend does with a request: a call to make, or a verdict it reaches without one (no token to check). */
export type PlannedCheck = { readonly call: MiddlewareCall; readonly verdict?: undefined } | { readonly verdict: BackendVerdict; readonly call?: undefined };

/** A backend that talks HTTP to a middleware: every type in this folder. */
export interface MiddlewareBackend extends AuthBackend {
  readonly type: BackendType;
  checkAbortable(request: AuthRequest, abort: CallAbort): Promise<BackendVerdict>;
  /** Pure: the request `check()` sends for `request`. */
  describeRequest(request: AuthRequest): PlannedCheck;
  /**
   * Pure: the verdict an answer carries. Throws an EdgeError (EDGE_ERR_BACKEND_HTTP_5XX,
   * EDGE_ERR_BACKEND_INVALID) when the answer is no decision: the middleware is unavailable.
   */
  interpret(answer: MiddlewareAnswer): BackendVerdict;
}

/** The whole check, as every backend's `check()` runs it: plan, send, interpret. */
export async function runCheck(backend: MiddlewareBackend, client: MiddlewareClient, request: AuthRequest, cancel: AbortSignal | CallAbort): Promise<BackendVerdict> {
  const planned = backend.describeRequest(request);
  if (planned.call === undefined) return planned.verdict;
  return backend.interpret(await client.send(planned.call, cancel));
}
