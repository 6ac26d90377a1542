/**
 * One request's bug must not end every other request (hardening issue,
 * item 1). The edge holds every viewer's open MPEG-TS stream and, with the
 * memory store, every session's decision: a process that dies on one bad
 * request cuts all of them, and every player then reconnects to a cold store
 * at once (a middleware storm). So an exception thrown by a request handler,
 * or a rejection of the promise it returns, is logged with its code, counted,
 * answered 500 (or the socket destroyed, when the response had started) and
 * the edge goes on; what escapes even that reaches the process handlers that
 * main.ts installs, which log and count it instead of exiting.
 *
 * Used by both listeners, so it lives on neither side (STYLE: a public-path
 * module does not import from the admin side).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { errorBody } from './errors.js';
import { RateLimitedLog } from './log.js';
import type { EdgeMetrics, Listener, UncaughtKind } from './metrics/metrics.js';

/**
 * A bug hit by every request would otherwise log a line per request: one
 * line per second per listener, with the count of the lines held back.
 * The metric counts every one.
 */
const INTERNAL_ERROR_LOG_INTERVAL_MS = 1000;

/** The 500 body: fixed, no internals. */
const INTERNAL_BODY = errorBody('EDGE_ERR_INTERNAL');

export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface CrashGuardDeps {
  readonly log: Logger;
  readonly metrics: Pick<EdgeMetrics, 'internalError' | 'uncaught'>;
  /** Headers every answer of this listener carries (the public listener's CORS headers, proxy/cors.ts). */
  readonly answerHeaders?: (res: ServerResponse) => readonly string[] | undefined;
}

/**
 * What a log line may say about an error: its class, code, message and
 * stack. Not its other own properties: an `Invalid URL` TypeError carries
 * the whole input (`err.input`), which may hold a token.
 */
export function describeError(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { type: typeof err, message: String(err).slice(0, 200) };
  const code = (err as NodeJS.ErrnoException).code;
  return { type: err.name, ...(typeof code === 'string' && { code }), message: err.message, stack: err.stack };
}

/** Ends a response whose handler failed: 500 if nothing was sent yet, else the connection is cut (the body is incomplete). */
function answerInternal(res: ServerResponse, extra: readonly string[] | undefined): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  try {
    // Headers the handler had set are dropped: they described the answer it did not finish.
    for (const name of res.getHeaderNames()) res.removeHeader(name);
    const headers = ['content-type', 'application/json', 'content-length', String(Buffer.byteLength(INTERNAL_BODY)), 'cache-control', 'no-store', 'connection', 'close'];
    if (extra !== undefined) headers.push(...extra);
    res.writeHead(500, headers);
    res.end(res.req.method === 'HEAD' ? undefined : INTERNAL_BODY);
  } catch {
    res.destroy();
  }
}

/**
 * Wraps a listener's request handler: a synchronous throw or a rejected
 * promise of one request is logged once (`EDGE_ERR_INTERNAL`, rate-limited),
 * counted in `edge_internal_errors_total{listener}` and answered 500. A
 * handler that returns nothing (the public path's cache hits) costs one
 * try/catch frame.
 */
export function guardRequests(listener: Listener, handle: RequestListener, deps: CrashGuardDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const logLimit = new RateLimitedLog(INTERNAL_ERROR_LOG_INTERVAL_MS, Date.now);
  const failed = (req: IncomingMessage, res: ServerResponse, err: unknown): void => {
    deps.metrics.internalError(listener);
    // Neither the URL nor the headers: both may carry tokens and session IDs.
    logLimit.maybe((suppressed) =>
      deps.log.error({ code: 'EDGE_ERR_INTERNAL', listener, method: req.method, error: describeError(err), suppressed }, `internal error in a ${listener} request: answered 500; the edge keeps running`),
    );
    answerInternal(res, deps.answerHeaders?.(res));
  };
  return function guarded(req: IncomingMessage, res: ServerResponse): void {
    let pending: void | Promise<void>;
    try {
      pending = handle(req, res);
    } catch (err) {
      failed(req, res, err);
      return;
    }
    if (pending !== undefined) pending.catch((err: unknown) => failed(req, res, err));
  };
}

/**
 * Installs the last line of defence on `proc` (main.ts passes `process`):
 * an exception or rejection nothing else caught is logged (`EDGE_ERR_INTERNAL`,
 * rate-limited) and counted in `edge_uncaught_errors_total{kind}`, and the
 * edge keeps serving. Returns the function that removes the handlers.
 */
export function surviveUncaught(proc: NodeJS.EventEmitter, deps: CrashGuardDeps): () => void {
  const logLimit = new RateLimitedLog(INTERNAL_ERROR_LOG_INTERVAL_MS, Date.now);
  const report = (kind: UncaughtKind, err: unknown): void => {
    deps.metrics.uncaught(kind);
    logLimit.maybe((suppressed) =>
      deps.log.error(
        { code: 'EDGE_ERR_INTERNAL', kind, error: describeError(err), suppressed },
        `uncaught ${kind}: logged and survived (exiting would cut every open stream and drop the session store); please report it`,
      ),
    );
  };
  const onException = (err: unknown): void => report('exception', err);
  const onRejection = (reason: unknown): void => report('rejection', reason);
  proc.on('uncaughtException', onException);
  proc.on('unhandledRejection', onRejection);
  return () => {
    proc.off('uncaughtException', onException);
    proc.off('unhandledRejection', onRejection);
  };
}
