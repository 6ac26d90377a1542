/**
 * The public request path: identify (channel, session) → authorize →
 * forward. Everything it needs is built by app.ts and passed in.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BlockList } from 'node:net';
import type { Logger } from 'pino';
import type { Authorizer } from '../auth/authorizer.js';
import { REASON_UNAVAILABLE } from '../auth/authorizer.js';
import type { Decision } from '../auth/types.js';
import type { EdgeConfig } from '../config/schema.js';
import { errorBody, ERROR_CODES, type ErrorCode } from '../errors.js';
import type { DecisionMetricSource, EdgeMetrics, RequestKind } from '../metrics/metrics.js';
import type { SessionRegistry } from '../session/registry.js';
import type { Session } from '../session/session.js';
import { clientIpOf, normalizeIp } from './client-ip.js';
import type { Forwarder } from './forward.js';
import { upstreamRequestHeaders } from './headers.js';
import { findParam, redactQuery, removeParam, splitTarget } from './query.js';
import { answerReadiness, send } from '../admin/server.js';

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
}

/** Error responses without a variable part, serialized once. */
const FIXED_BODIES = new Map<ErrorCode, Buffer>(Object.keys(ERROR_CODES).map((code) => [code as ErrorCode, Buffer.from(errorBody(code as ErrorCode))]));

/** What a request asks for, from its path (`rest` is the named group after the channel, if the pattern has one). */
export function classifyRequest(path: string, rest: string | undefined, hasRestGroup: boolean): RequestKind {
  if (path.length > 5 && path.slice(-5).toLowerCase() === '.m3u8') return 'playlist';
  if (hasRestGroup) return rest === undefined || rest === '' || rest === '/' ? 'stream' : 'segment';
  const last = path.slice(path.lastIndexOf('/') + 1);
  return last.includes('.') ? 'segment' : 'stream';
}

export function createRequestHandler(deps: RequestHandlerDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const { config, sessions, authorizer, forwarder, metrics, trustedProxies } = deps;
  const pattern = config.session.channelPattern;
  const hasRestGroup = pattern.source.includes('(?<rest>');
  const param = config.session.param;
  const tokenParam = config.session.tokenParam;
  const bindIp = config.session.bindIp;
  const accessLog = config.log.access ? new AccessLog(deps.log, config.log.accessSample, new Set([...config.log.redactParams, param])) : undefined;

  function sendError(res: ServerResponse, kind: RequestKind, code: ErrorCode, reason: string | undefined, started: number, extraHeaders?: Record<string, string>): void {
    const status = ERROR_CODES[code].status;
    const body = reason === undefined ? FIXED_BODIES.get(code)! : Buffer.from(errorBody(code, reason));
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': body.length, 'cache-control': 'no-store', ...extraHeaders });
    res.end(body);
    metrics.responseStarted(kind, started);
    metrics.request(kind, status);
  }

  function refuse(res: ServerResponse, kind: RequestKind, session: Session, decision: Decision, started: number): void {
    if (decision.location !== undefined && session.endReason === undefined) {
      res.writeHead(302, { location: decision.location, 'content-length': 0, 'cache-control': 'no-store' });
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
  ): void {
    // The request that got a decision made reports where it came from; later ones are cache hits.
    metrics.decision(decision.allow, source === 'cache' || decision.source === 'backend' ? source : decision.source, (performance.now() - started) / 1000);
    if (res.destroyed) return; // the player gave up while the middleware was deciding
    if (!decision.allow || session.endReason !== undefined) {
      refuse(res, kind, session, decision, started);
      return;
    }
    if (!session.active && !sessions.activate(session)) {
      sendError(res, kind, 'EDGE_ERR_SESSION_LIMIT', 'max_sessions', started);
      return;
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
    }
    forwarder.forward(res, { method: req.method as 'GET' | 'HEAD', pathAndQuery, headers, kind, session, startedAt: started }, (status) => metrics.request(kind, status));
  }

  return function handleRequest(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    const method = req.method;
    const target = req.url ?? '/';
    if (target.charCodeAt(0) !== 47 /* / */) {
      sendError(res, 'other', 'EDGE_ERR_BAD_REQUEST', 'request target must be a path', started);
      return;
    }
    if (method !== 'GET' && method !== 'HEAD') {
      sendError(res, 'other', 'EDGE_ERR_METHOD_NOT_ALLOWED', undefined, started, { allow: 'GET, HEAD' });
      return;
    }
    const { path, query } = splitTarget(target);
    accessLog?.watch(req, res, path, query, started);
    if (deps.isReady !== undefined && (path === '/healthz' || path === '/readyz')) {
      if (path === '/healthz') send(res, 200, 'text/plain', 'ok\n');
      else void answerReadiness(res, deps.isReady);
      return;
    }
    const match = pattern.exec(path);
    const channel = match?.groups?.['channel'];
    if (match === null || channel === undefined || channel === '') {
      sendError(res, 'other', 'EDGE_ERR_NO_CHANNEL', undefined, started);
      return;
    }
    const kind = classifyRequest(path, match.groups?.['rest'], hasRestGroup);
    const now = Date.now();
    const peerIp = normalizeIp(req.socket.remoteAddress);
    const clientIp = trustedProxies === undefined ? peerIp : clientIpOf(req.socket.remoteAddress, req.headers, trustedProxies);

    const marker = findParam(query, param);
    const upstreamQuery = marker === undefined ? query : removeParam(query, param);
    let session = marker === undefined ? undefined : sessions.byMarker(marker, channel);
    // With session.bindIp a marker used from another address is treated like an unknown one.
    if (session !== undefined && bindIp && session.clientIp !== clientIp) session = undefined;
    if (session === undefined) {
      const userAgent = req.headers['user-agent'] ?? '';
      const token = findParam(upstreamQuery, tokenParam);
      session = sessions.joinOrOpen(
        {
          channel,
          kind: kind === 'stream' ? 'mpegts' : 'hls',
          clientIp,
          userAgent,
          host: req.headers.host ?? '',
          path,
          query: upstreamQuery,
          token,
          referer: req.headers.referer ?? '',
        },
        now,
      );
    }
    session.requests++;
    session.lastSeenAt = now;
    const pathAndQuery = upstreamQuery === '' ? path : `${path}?${upstreamQuery}`;

    const joinedCall = session.pending !== undefined;
    const result = authorizer.authorize(session, now);
    if (result instanceof Promise) {
      const s = session;
      result.then(
        (decision) => proceed(req, res, kind, s, decision, joinedCall ? 'coalesced' : 'backend', started, pathAndQuery, clientIp, peerIp),
        (err: unknown) => {
          deps.log.error({ err }, 'authorization failed unexpectedly');
          if (!res.destroyed) sendError(res, kind, 'EDGE_ERR_INTERNAL', undefined, started);
        },
      );
      return;
    }
    proceed(req, res, kind, session, result, 'cache', started, pathAndQuery, clientIp, peerIp);
  };
}

/**
 * Optional access log (log.access, off by default): one line per finished
 * request, sampled (log.accessSample), with tokens, the session marker and
 * log.redactParams redacted from the query.
 */
class AccessLog {
  constructor(
    private readonly log: Logger,
    private readonly sample: number,
    private readonly redacted: ReadonlySet<string>,
  ) {}

  watch(req: IncomingMessage, res: ServerResponse, path: string, query: string, started: number): void {
    if (this.sample < 1 && Math.random() >= this.sample) return;
    res.once('close', () => {
      this.log.info(
        {
          method: req.method,
          path,
          query: redactQuery(query, this.redacted),
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
