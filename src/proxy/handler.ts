/**
 * The public request path: identify (channel, session) → authorize →
 * forward. Everything it needs is built by app.ts and passed in.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BlockList, Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Authorizer } from '../auth/authorizer.js';
import { REASON_UNAVAILABLE } from '../auth/authorizer.js';
import type { Decision } from '../auth/types.js';
import type { EdgeConfig } from '../config/schema.js';
import { EdgeError, type ErrorCode } from '../errors.js';
import type { DecisionMetricSource, EdgeMetrics, RequestKind } from '../metrics/metrics.js';
import type { SessionRegistry } from '../session/registry.js';
import { Session, joinKeyOf, type SessionOrigin } from '../session/session.js';
import { ChannelMatcher } from './channel.js';
import { clientIpOf, normalizeIp } from './client-ip.js';
import { ErrorAnswers } from './error-answers.js';
import { CORS_ALLOWED_METHODS, type CorsPolicy } from './cors.js';
import type { Forwarder } from './forward.js';
import { RequestHead, upstreamRequestHeaders } from './headers.js';
import { normalizePath } from './path.js';
import { checkQuery, findParam, removeParam, splitTarget } from './query.js';
import { isRefusal, refusal } from './refusal.js';
import { QueryRedactor } from '../redact.js';
import { answerReadiness, send } from '../respond.js';
import type { PlaylistCache } from '../cache/playlists.js';
import type { SegmentCache } from '../cache/segments.js';
import type { FanoutHub } from './fanout.js';
import type { ResponseObserver } from './observer.js';

export interface RequestHandlerDeps {
  readonly config: EdgeConfig;
  readonly sessions: SessionRegistry;
  readonly authorizer: Authorizer;
  readonly forwarder: Forwarder;
  readonly metrics: EdgeMetrics;
  readonly log: Logger;
  /** Trusted proxy CIDRs, or undefined when none are configured. */
  readonly trustedProxies: BlockList | undefined;
  /** Set when /healthz and /readyz are also served on the public listener (health.public). */
  readonly isReady?: () => Promise<boolean>;
  /** Set when cors.origins is: CORS headers on every answer, OPTIONS preflights answered (proxy/cors.ts). */
  readonly cors?: CorsPolicy;
  /** The edge cache and MPEG-TS fan-out, each when enabled. */
  readonly segments?: SegmentCache;
  readonly playlists?: PlaylistCache;
  readonly fanout?: FanoutHub;
}

/**
 * What a response served from the cache or a shared channel reports: the
 * session's bytes and the request metrics; an upstream failure before
 * anything was written is answered here (or, for a body too large to cache,
 * forwarded on its own).
 */
class RequestObserver implements ResponseObserver {
  constructor(
    private readonly metrics: EdgeMetrics,
    private readonly forwarder: Forwarder,
    private readonly res: ServerResponse,
    private readonly kind: RequestKind,
    private readonly session: Session,
    private readonly startedAt: number,
    /** Forwards the request on its own (a body too large for the cache). */
    private readonly forwardAlone: (() => void) | undefined,
  ) {}

  started(): void {
    this.metrics.responseStarted(this.kind, this.startedAt);
  }

  sent(n: number): void {
    this.session.bytes += n;
    this.metrics.bytesSent(this.kind, n);
  }

  finished(status: number): void {
    this.metrics.request(this.kind, status);
  }

  failedBeforeHead(error: Error): void {
    if (this.forwardAlone !== undefined && error instanceof EdgeError && error.code === 'EDGE_ERR_CACHE_OBJECT_TOO_LARGE') {
      this.forwardAlone();
      return;
    }
    this.metrics.request(this.kind, this.forwarder.answerFailure(this.res, error, this.kind, this.startedAt));
  }
}

const DUPLICATE_HOST = refusal('duplicate_host');
/** Retry-After of a stream refused because upstream.streamConnections are open: a player retrying at once would be refused again. */
const STREAM_CAPACITY_RETRY_AFTER_S = 5;
const STREAM_CAPACITY_HEADERS: readonly string[] = ['retry-after', String(STREAM_CAPACITY_RETRY_AFTER_S)];
/** Allow of a 405: OPTIONS too when the edge answers CORS preflights. */
const METHODS_ALLOWED: readonly string[] = ['allow', 'GET, HEAD'];
const METHODS_ALLOWED_CORS: readonly string[] = ['allow', CORS_ALLOWED_METHODS];

const NO_HEADERS: readonly string[] = [];

const CLOSE_CONNECTION: readonly string[] = ['connection', 'close'];

/** What a request asks for, from its path (`rest` is the named group after the channel, if the pattern has one). */
export function classifyRequest(path: string, rest: string | undefined, hasRestGroup: boolean): RequestKind {
  if (path.length > 5 && endsWithM3u8(path)) return 'playlist';
  if (hasRestGroup) return rest === undefined || rest === '' || rest === '/' ? 'stream' : 'segment';
  const last = path.slice(path.lastIndexOf('/') + 1);
  return last.includes('.') ? 'segment' : 'stream';
}

/** `path` ends with `.m3u8` in any letter case (compared in place: no slice, no lower-cased copy). */
function endsWithM3u8(path: string): boolean {
  const at = path.length - 5;
  return (
    path.charCodeAt(at) === 0x2e /* . */ &&
    (path.charCodeAt(at + 1) | 0x20) === 0x6d /* m */ &&
    path.charCodeAt(at + 2) === 0x33 /* 3 */ &&
    (path.charCodeAt(at + 3) | 0x20) === 0x75 /* u */ &&
    path.charCodeAt(at + 4) === 0x38 /* 8 */
  );
}

/** The handler returns the continuation of a request that waits for the middleware, so app.ts's crash guard sees its failures. */
export function createRequestHandler(deps: RequestHandlerDeps): (req: IncomingMessage, res: ServerResponse) => void | Promise<void> {
  const { config, sessions, authorizer, forwarder, metrics, trustedProxies, cors } = deps;
  const channels = new ChannelMatcher(config.session.channelPattern);
  const param = config.session.param;
  const tokenParam = config.session.tokenParam;
  const bindIp = config.session.bindIp;
  const forwardToken = config.upstream.forwardToken;
  /** Sessions of other edges are found by their join key only when markers are signed (an unsigned one could not be adopted). */
  const fleetLookups = config.session.secret !== undefined;
  const bypass = config.cache.bypass;
  /** Connections told "Connection: close" whose socket is not closed yet. */
  const closing = new Set<Socket>();
  const errorAnswers = new ErrorAnswers();
  const requestHead = new RequestHead();
  /** What a forwarded request reports when it is over, one function per kind (made once, not per request). */
  const countRequest: Readonly<Record<RequestKind, (status: number) => void>> = {
    playlist: (status) => metrics.request('playlist', status),
    segment: (status) => metrics.request('segment', status),
    stream: (status) => metrics.request('stream', status),
    other: (status) => metrics.request('other', status),
  };
  const accessLog = config.log.access ? new AccessLog(deps.log, config.log.accessSample, new QueryRedactor([tokenParam, param, ...config.log.redactParams])) : undefined;

  function sendError(res: ServerResponse, kind: RequestKind, code: ErrorCode, reason: string | undefined, started: number, extraHeaders?: readonly string[]): void {
    const answer = errorAnswers.get(code, reason);
    let headers = answer.headers;
    // A browser player on another origin reads the 403 and its JSON reason instead of "network error" (proxy/cors.ts).
    const corsHeaders = cors?.headersForResponse(res);
    if (extraHeaders !== undefined || corsHeaders !== undefined) headers = [...headers, ...(extraHeaders ?? NO_HEADERS), ...(corsHeaders ?? NO_HEADERS)];
    // writeHead reads the array and keeps nothing of it: the shared one is safe to pass.
    res.writeHead(answer.status, headers as string[]);
    res.end(answer.body);
    metrics.responseStarted(kind, started);
    metrics.request(kind, answer.status);
  }

  function refuse(res: ServerResponse, kind: RequestKind, session: Session, decision: Decision, started: number): void {
    if (decision.location !== undefined && session.endReason === undefined) {
      const headers = ['location', decision.location, 'content-length', '0', 'cache-control', 'no-store'];
      const corsHeaders = cors?.headersForResponse(res);
      if (corsHeaders !== undefined) headers.push(...corsHeaders);
      res.writeHead(302, headers);
      res.end();
      metrics.responseStarted(kind, started);
      metrics.request(kind, 302);
      return;
    }
    if (session.endReason !== undefined) {
      sendError(res, kind, 'EDGE_ERR_SESSION_ENDED', session.endReason, started);
      return;
    }
    sendError(res, kind, decision.reason === REASON_UNAVAILABLE ? 'EDGE_ERR_AUTH_UNAVAILABLE' : 'EDGE_ERR_AUTH_DENIED', decision.reason, started);
  }

  function proceed(
    req: IncomingMessage,
    res: ServerResponse,
    kind: RequestKind,
    session: Session,
    decision: Decision,
    source: DecisionMetricSource,
    started: number,
    pathAndQuery: string,
    clientIp: string,
    peerIp: string,
  ): void | Promise<void> {
    if (decision.source === 'shed') {
      // No decision: the edge could not ask the middleware in time (its own congestion). Not a deny, not the default action: retry.
      if (!res.destroyed) sendError(res, kind, 'EDGE_ERR_OVERLOADED', undefined, started, ['retry-after', String(decision.retryAfterS ?? 1)]);
      return;
    }
    // One request, one source (operator issue, part 4): the request that got a decision made reports where
    // it came from, later ones are cache hits; except the default action, which is no middleware answer
    // to hit: every request served on it, fresh or stored, counts as `default` (and, when the middleware
    // was unavailable, in edge_auth_failure_mode_allowed_total: the same count).
    metrics.decision(
      decision.allow,
      decision.source === 'default' ? 'default' : source === 'cache' || decision.source === 'backend' || decision.source === 'marker' ? source : decision.source,
      (performance.now() - started) / 1000,
      decision.reason === REASON_UNAVAILABLE,
    );
    if (res.destroyed) return; // the player gave up while the middleware was deciding
    if (!decision.allow || session.endReason !== undefined) {
      refuse(res, kind, session, decision, started);
      return;
    }
    if (kind === 'stream' && forwarder.streamsFull()) {
      // Refused at once: a live stream queued behind streams that last for hours would never start.
      metrics.streamLimited('pool');
      sendError(res, kind, 'EDGE_ERR_STREAM_CAPACITY', undefined, started, STREAM_CAPACITY_HEADERS);
      return;
    }
    if (!session.active) {
      const admitted = sessions.activate(session);
      if (admitted instanceof Promise) {
        // A new session with a per-user limit, in a fleet: the fleet counts it (bounded wait, session/redis.ts).
        return admitted.then((ok) => {
          if (res.destroyed) return;
          if (ok) serve(req, res, kind, session, started, pathAndQuery, clientIp, peerIp);
          else refuseActivation(res, kind, session, decision, started);
        });
      }
      if (!admitted) {
        refuseActivation(res, kind, session, decision, started);
        return;
      }
    }
    serve(req, res, kind, session, started, pathAndQuery, clientIp, peerIp);
  }

  /** Over the user's limit, or ended (kicked, or by another session's X-Unique) while the fleet counted it. */
  function refuseActivation(res: ServerResponse, kind: RequestKind, session: Session, decision: Decision, started: number): void {
    if (session.endReason !== undefined) refuse(res, kind, session, decision, started);
    else sendError(res, kind, 'EDGE_ERR_SESSION_LIMIT', 'max_sessions', started);
  }

  /** Forwards (or serves from the cache or the fan-out) the request of an open session. */
  function serve(req: IncomingMessage, res: ServerResponse, kind: RequestKind, session: Session, started: number, pathAndQuery: string, clientIp: string, peerIp: string): void {
    const method = req.method as 'GET' | 'HEAD';
    // The edge cache serves playlists and segments, each when enabled, unless cache.bypass matches.
    const cached = kind === 'playlist' ? deps.playlists !== undefined : kind === 'segment' && deps.segments !== undefined;
    const bypassed = cached && isBypassed(pathAndQuery);
    if (kind === 'playlist' && cached && !bypassed) {
      // The common case first: a fresh playlist, rendered for this session at once. No upstream
      // headers, observer or closure are built for it; anything else goes the long way below.
      const sent = deps.playlists!.hit(res, pathAndQuery, method === 'HEAD', session.marker);
      if (sent >= 0) {
        metrics.responseStarted(kind, started);
        if (sent > 0) {
          session.bytes += sent;
          metrics.bytesSent(kind, sent);
        }
        metrics.request(kind, 200);
        return;
      }
    }
    const headers = upstreamRequestHeaders(req.rawHeaders, {
      upstreamHost: forwarder.upstreamHost,
      clientIp,
      peerIp,
      fromTrustedProxy: clientIp !== peerIp,
      dropRange: kind === 'playlist',
    });
    if (kind === 'stream') {
      const detach = sessions.attachStream(session, res);
      res.once('close', detach);
      // Viewers of one channel share one upstream connection; a HEAD (a probe) is forwarded on its own.
      if (deps.fanout !== undefined && method === 'GET') deps.fanout.join(pathAndQuery, pathAndQuery, headers, res, new RequestObserver(metrics, forwarder, res, kind, session, started, undefined));
      else forward(res, method, pathAndQuery, headers, kind, session, started);
      return;
    }
    if (!cached) {
      forward(res, method, pathAndQuery, headers, kind, session, started);
      return;
    }
    if (bypassed) {
      metrics.cacheRequest(kind as 'playlist' | 'segment', 'bypass');
      forward(res, method, pathAndQuery, headers, kind, session, started);
      return;
    }
    if (kind === 'playlist') {
      deps.playlists!.serve(res, pathAndQuery, headers, method === 'HEAD', session.marker, new RequestObserver(metrics, forwarder, res, kind, session, started, undefined));
      return;
    }
    const forwardAlone = (): void => forward(res, method, pathAndQuery, headers, kind, session, started);
    const observer = new RequestObserver(metrics, forwarder, res, kind, session, started, forwardAlone);
    if (!deps.segments!.serve(res, { head: method === 'HEAD', pathAndQuery, headers, range: req.headers.range }, observer)) {
      metrics.cacheRequest('segment', 'bypass');
      forwardAlone();
    }
  }

  function forward(res: ServerResponse, method: 'GET' | 'HEAD', pathAndQuery: string, headers: string[], kind: RequestKind, session: Session, started: number): void {
    forwarder.forward(res, { method, pathAndQuery, headers, kind, session, startedAt: started }, countRequest[kind]);
  }

  function isBypassed(pathAndQuery: string): boolean {
    for (const re of bypass) if (re.test(pathAndQuery)) return true;
    return false;
  }

  return function handleRequest(req: IncomingMessage, res: ServerResponse): void | Promise<void> {
    // A request pipelined behind one answered with "Connection: close" is not processed (RFC 9112
    // §9.6); Node parses and emits it anyway, and would drop its response when the socket closes.
    if (closing.size > 0 && closing.has(req.socket)) return;
    const started = performance.now();
    const method = req.method;
    if (method === 'OPTIONS' && cors !== undefined) {
      // Before any check of the target: a preflight that failed would hide the real request's answer
      // (a 400, a 404) from the page as a network error. No session, no middleware, no origin.
      cors.answerOptions(req, res);
      metrics.responseStarted('other', started);
      metrics.request('other', 204);
      return;
    }
    const target = req.url ?? '/';
    if (target.charCodeAt(0) !== 47 /* / */) {
      sendError(res, 'other', 'EDGE_ERR_BAD_REQUEST', 'request target must be a path', started);
      return;
    }
    // Read the request as the middleware and the origin will, or refuse it, before anything else
    // (hardening issue, items 2, 8, 13): what is matched is what is forwarded.
    const { path: rawPath, query } = splitTarget(target);
    const path = normalizePath(rawPath);
    if (isRefusal(path)) {
      sendError(res, 'other', 'EDGE_ERR_BAD_REQUEST', path.refused, started);
      return;
    }
    const head = requestHead.read(req.rawHeaders);
    const unreadable = checkQuery(query) ?? (head.duplicateHost ? DUPLICATE_HOST : undefined);
    if (unreadable !== undefined) {
      sendError(res, 'other', 'EDGE_ERR_BAD_REQUEST', unreadable.refused, started);
      return;
    }
    if (method !== 'GET' && method !== 'HEAD') {
      sendError(res, 'other', 'EDGE_ERR_METHOD_NOT_ALLOWED', undefined, started, cors === undefined ? METHODS_ALLOWED : METHODS_ALLOWED_CORS);
      return;
    }
    if (head.framesBody) {
      // Players send no bodies. A Transfer-Encoding on a GET is either a smuggling attempt or a
      // framing Node rejects only after this handler ran (`gzip` without `chunked`, a broken
      // chunk): refuse before anything is forwarded, and close, since where the next request
      // starts is no longer certain (RFC 9112 §6.1).
      sendError(res, 'other', 'EDGE_ERR_BAD_REQUEST', 'a GET or HEAD carries no body (Transfer-Encoding)', started, CLOSE_CONNECTION);
      closing.add(req.socket);
      req.socket.once('close', () => closing.delete(req.socket));
      return;
    }
    accessLog?.watch(req, res, path, query, started);
    if (deps.isReady !== undefined && (path === '/healthz' || path === '/readyz')) {
      if (path === '/healthz') send(res, 200, 'text/plain', 'ok\n');
      else void answerReadiness(res, deps.isReady);
      return;
    }
    if (!channels.match(path)) {
      sendError(res, 'other', 'EDGE_ERR_NO_CHANNEL', undefined, started);
      return;
    }
    const channel = channels.channel;
    const kind = classifyRequest(path, channels.rest, channels.hasRestGroup);
    const now = Date.now();
    const peerIp = normalizeIp(req.socket.remoteAddress);
    const clientIp = trustedProxies === undefined ? peerIp : clientIpOf(req.socket.remoteAddress, req.headers, trustedProxies);

    // Keys are compared decoded and a repeated or ambiguous marker is refused (query.ts).
    const marker = findParam(query, param);
    if (isRefusal(marker)) {
      sendError(res, kind, 'EDGE_ERR_BAD_REQUEST', marker.refused, started);
      return;
    }
    const upstreamQuery = marker === undefined ? query : removeParam(query, param);
    const found = marker === undefined ? undefined : sessions.byMarker(marker, channel);
    let session: Session | undefined;
    if (found === undefined || found instanceof Session) session = found;
    else {
      // A valid signed marker of another edge of the fleet: its session, rebuilt here without a middleware call.
      const originalToken = findParam(found.query, tokenParam);
      session = sessions.adopt(
        found,
        marker!,
        { kind: kind === 'stream' ? 'mpegts' : 'hls', clientIp, userAgent: head.userAgent, host: head.host, referer: head.referer, token: isRefusal(originalToken) ? undefined : originalToken },
        now,
      );
    }
    // With session.bindIp a marker used from another address is treated like an unknown one.
    if (session !== undefined && bindIp && session.clientIp !== clientIp) session = undefined;
    if (session === undefined) {
      // The token as the middleware reads it (decoded); read only when a session has to be found or opened.
      const token = findParam(upstreamQuery, tokenParam);
      if (isRefusal(token)) {
        sendError(res, kind, 'EDGE_ERR_BAD_REQUEST', token.refused, started);
        return;
      }
      const origin: SessionOrigin = {
        channel,
        kind: kind === 'stream' ? 'mpegts' : 'hls',
        clientIp,
        userAgent: head.userAgent,
        host: head.host,
        path,
        query: upstreamQuery,
        token,
        referer: head.referer,
      };
      const joined = sessions.findJoin(origin);
      if (joined === undefined && fleetLookups && sessions.fleet.connected) {
        // Redis second: a player reloading its original URL through another edge of the fleet
        // (no marker in it) finds its session there, before the middleware is asked again.
        return sessions.fleet.findMarker({ joinKey: joinKeyOf(origin) }).then((answer) => {
          if (answer !== undefined && 'ended' in answer) {
            sessions.endedElsewhere(answer.ended);
            sendError(res, kind, 'EDGE_ERR_SESSION_ENDED', answer.ended.reason, started);
            return;
          }
          const there = answer === undefined ? undefined : sessions.byMarker(answer.marker, channel);
          const adopted = there === undefined ? undefined : there instanceof Session ? there : sessions.adopt(there, answer!.marker, origin, Date.now());
          return serveSession(req, res, kind, adopted ?? sessions.joinOrOpen(origin, now), upstreamQuery, path, started, now, clientIp, peerIp);
        });
      }
      session = joined ?? sessions.joinOrOpen(origin, now);
    }
    return serveSession(req, res, kind, session, upstreamQuery, path, started, now, clientIp, peerIp);
  };

  /** The session is known: authorize (synchronously for a stored decision), then serve. */
  function serveSession(req: IncomingMessage, res: ServerResponse, kind: RequestKind, session: Session, upstreamQuery: string, path: string, started: number, now: number, clientIp: string, peerIp: string): void | Promise<void> {
    session.requests++;
    session.lastSeenAt = now;
    // The token stays with the session (the middleware's re-checks send it); the origin gets it only with upstream.forwardToken.
    const forwardQuery = forwardToken || upstreamQuery === '' ? upstreamQuery : removeParam(upstreamQuery, tokenParam);
    const pathAndQuery = forwardQuery === '' ? path : `${path}?${forwardQuery}`;

    const joinedCall = session.pending !== undefined;
    const result = authorizer.authorize(session, now);
    if (result instanceof Promise) {
      const s = session;
      return result.then(
        (decision) => proceed(req, res, kind, s, decision, joinedCall ? 'coalesced' : 'backend', started, pathAndQuery, clientIp, peerIp),
        (err: unknown) => {
          deps.log.error({ err }, 'authorization failed unexpectedly');
          if (!res.destroyed) sendError(res, kind, 'EDGE_ERR_INTERNAL', undefined, started);
        },
      );
    }
    return proceed(req, res, kind, session, result, 'cache', started, pathAndQuery, clientIp, peerIp);
  }
}

/**
 * Optional access log (log.access, off by default): one line per finished
 * request, sampled (log.accessSample), with the values of the token
 * parameter, the session marker and log.redactParams redacted from the query
 * (names in any letter case or percent-encoding: see redact.ts).
 */
class AccessLog {
  constructor(
    private readonly log: Logger,
    private readonly sample: number,
    private readonly redactor: QueryRedactor,
  ) {}

  watch(req: IncomingMessage, res: ServerResponse, path: string, query: string, started: number): void {
    if (this.sample < 1 && Math.random() >= this.sample) return;
    res.once('close', () => {
      this.log.info(
        {
          method: req.method,
          path,
          query: this.redactor.redact(query),
          status: res.statusCode,
          completed: res.writableFinished,
          durationMs: Math.round(performance.now() - started),
          ip: normalizeIp(req.socket.remoteAddress),
          userAgent: req.headers['user-agent'],
        },
        'request',
      );
    });
  }
}
