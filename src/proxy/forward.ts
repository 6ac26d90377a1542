/**
 * The forward path: one upstream exchange per client request, on an undici
 * keep-alive Pool, through undici's dispatch handler API: each body chunk is
 * written to the client as it arrives (no copy, no intermediate stream), the
 * upstream socket is paused while the client's buffer is full (backpressure),
 * and a client that goes away aborts the upstream request at once.
 *
 * Why not http-proxy: see bench/README.md (forward-path figures, and its abort
 * handling that leaks on Node ≥ 15). Why the dispatch API rather than
 * `Pool.stream`: the same zero-copy path, plus exact per-chunk byte counts
 * for the session and no `stream.finished` listener set per request.
 *
 * Playlists are the exception: read into memory (capped by
 * hls.maxPlaylistBytes), rewritten to carry the session, then sent.
 *
 * Two pools: HTTP MPEG-TS streams hold their upstream connection for as long
 * as the viewer watches, so they get a pool of their own
 * (upstream.streamConnections, also the cap on open streams: the next one is
 * refused at once rather than queued); playlists and segments never wait
 * behind them. A client that stops reading is dropped after
 * proxy.clientStallTimeout (./stall.ts), which releases its upstream.
 */
import type { ServerResponse } from 'node:http';
import { Pool, type Dispatcher } from 'undici';
import type { Logger } from 'pino';
import { EdgeError, classifyTransportError, errorBody, type ErrorCode } from '../errors.js';
import type { UpstreamConfig } from '../config/schema.js';
import { RateLimitedLog } from '../log.js';
import type { EdgeMetrics, RequestKind, UpstreamOutcome } from '../metrics/metrics.js';
import type { Session } from '../session/session.js';
import { hasAllowOrigin, type CorsPolicy } from './cors.js';
import { clientResponseHeaders } from './headers.js';
import { compilePlaylist, isPlaylistBody, renderPlaylist, type PlaylistContext } from './playlist.js';
import { StallWatch, socketAcceptedBytes, type StallTarget } from './stall.js';

/** Idle upstream connections are kept this long for the next request. */
const KEEP_ALIVE_TIMEOUT_MS = 30_000;
/** Dropped stalled clients are logged at warn at most once per interval (an attack would flood the log); each one at debug. */
const STALL_LOG_INTERVAL_MS = 10_000;

const PLAYLIST_CONTENT_TYPES = /^\s*(?:application|audio)\/(?:x-|vnd\.apple\.)?mpegurl\b/i;

/** Headers that do not survive a rewrite of the playlist body. */
const PLAYLIST_DROPPED_HEADERS: ReadonlySet<string> = new Set(['content-length', 'etag', 'last-modified', 'content-md5', 'accept-ranges', 'cache-control', 'content-encoding']);

const UPSTREAM_FAILURE: Readonly<Record<string, { code: ErrorCode; outcome: UpstreamOutcome }>> = {
  timeout: { code: 'EDGE_ERR_UPSTREAM_TIMEOUT', outcome: 'timeout' },
  refused: { code: 'EDGE_ERR_UPSTREAM_REFUSED', outcome: 'refused' },
  reset: { code: 'EDGE_ERR_UPSTREAM_RESET', outcome: 'reset' },
  invalid: { code: 'EDGE_ERR_UPSTREAM_INVALID', outcome: 'invalid' },
};

export interface ForwardRequest {
  readonly method: 'GET' | 'HEAD';
  /** Path and query for the upstream (the edge's marker already removed). */
  readonly pathAndQuery: string;
  readonly headers: string[];
  readonly kind: RequestKind;
  readonly session: Session;
  /** performance.now() when the client's request arrived (for time to first byte). */
  readonly startedAt: number;
}

export interface ForwarderOptions {
  readonly upstream: UpstreamConfig;
  readonly maxPlaylistBytes: number;
  readonly sessionParam: string;
  /** proxy.clientStallTimeout; 0 = never drop a client that stops reading. */
  readonly clientStallTimeoutMs: number;
  /** Stream-pool connections held by others (the MPEG-TS fan-out's shared channels): they count against upstream.streamConnections. */
  readonly sharedStreams?: () => number;
  readonly metrics: EdgeMetrics;
  readonly log: Logger;
  /** cors.origins set: the CORS headers of the request's Origin go on every response (proxy/cors.ts). */
  readonly cors?: CorsPolicy;
}

export class Forwarder {
  /** Playlists and segments (upstream.connections). */
  readonly pool: Pool;
  /** HTTP MPEG-TS streams (upstream.streamConnections). */
  readonly streamPool: Pool;
  readonly upstreamHost: string;
  readonly options: ForwarderOptions;
  /** What compilePlaylist needs to know about this edge: the same for every session. */
  readonly playlistContext: PlaylistContext;
  readonly stalls: StallWatch;
  private readonly stallLog = new RateLimitedLog(STALL_LOG_INTERVAL_MS, Date.now);
  private streams = 0;

  constructor(options: ForwarderOptions) {
    this.options = options;
    const url = new URL(options.upstream.origin);
    this.upstreamHost = url.host;
    this.playlistContext = { upstreamOrigin: url.origin.toLowerCase(), param: options.sessionParam };
    const poolOptions: Pool.Options = {
      connectTimeout: options.upstream.connectTimeoutMs,
      headersTimeout: options.upstream.headersTimeoutMs,
      bodyTimeout: options.upstream.bodyTimeoutMs,
      keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
      // Astra answers one request per connection at a time; pipelining would couple players' fates.
      pipelining: 1,
    };
    this.pool = new Pool(url.origin, { ...poolOptions, connections: options.upstream.connections });
    this.streamPool = new Pool(url.origin, { ...poolOptions, connections: options.upstream.streamConnections });
    this.stalls = new StallWatch(options.clientStallTimeoutMs);
  }

  /** MPEG-TS streams holding (or waiting for) a connection of the stream pool. */
  get openStreams(): number {
    return this.streams + (this.options.sharedStreams?.() ?? 0);
  }

  /**
   * True when upstream.streamConnections streams are open: the caller refuses
   * the next one (503) instead of queueing a live stream behind the others
   * for as long as they play.
   */
  streamsFull(): boolean {
    return this.openStreams >= this.options.upstream.streamConnections;
  }

  forward(res: ServerResponse, request: ForwardRequest, onDone: (status: number) => void): void {
    const isStream = request.kind === 'stream';
    if (isStream) this.streams++;
    const exchange = new Exchange(this, res, request, onDone, isStream);
    (isStream ? this.streamPool : this.pool).dispatch(
      { origin: this.options.upstream.origin, method: request.method, path: request.pathAndQuery, headers: request.headers },
      exchange,
    );
  }

  /**
   * An upstream failure before anything was written to `res` (a cache fill, a
   * shared channel, a playlist fetch): counted, logged, answered with its
   * stable code. Returns the status sent.
   */
  answerFailure(res: ServerResponse, error: Error, kind: RequestKind, startedAt: number): number {
    // Counted and logged once per upstream exchange (countUpstream), not per waiting viewer.
    const code: ErrorCode =
      error instanceof EdgeError && error.code === 'EDGE_ERR_PLAYLIST_TOO_LARGE' ? 'EDGE_ERR_PLAYLIST_TOO_LARGE' : UPSTREAM_FAILURE[classifyTransportError(error)]!.code;
    if (res.destroyed || res.headersSent) {
      if (!res.destroyed) res.destroy();
      return 499;
    }
    return writeError(this, res, code, kind, startedAt);
  }

  /** How an upstream exchange made by the cache or the fan-out ended (edge_upstream_requests_total). */
  countUpstream(error: Error | undefined): void {
    if (error === undefined) {
      this.options.metrics.upstreamOutcome('ok');
      return;
    }
    if (error instanceof EdgeError && (error.code === 'EDGE_ERR_PLAYLIST_TOO_LARGE' || error.code === 'EDGE_ERR_CACHE_OBJECT_TOO_LARGE')) {
      this.options.metrics.upstreamOutcome('invalid');
      this.options.log.warn({ code: error.code }, 'upstream body too large');
      return;
    }
    const failure = UPSTREAM_FAILURE[classifyTransportError(error)]!;
    this.options.metrics.upstreamOutcome(failure.outcome);
    this.options.log.warn({ code: failure.code, err: error.message }, 'upstream request failed');
  }

  /** An exchange of the stream pool is over (its upstream request ended, failed or was aborted). */
  streamReleased(): void {
    this.streams--;
  }

  /**
   * Appends the CORS headers of the client's Origin to a response's headers, unless the upstream
   * sent its own Access-Control-Allow-Origin: then its CORS headers pass as they are and none of
   * ours is added (never two policies, never a doubled header).
   */
  withCors(res: ServerResponse, headers: string[]): string[] {
    const cors = this.options.cors?.headersForResponse(res);
    if (cors !== undefined && !hasAllowOrigin(headers)) headers.push(...cors);
    return headers;
  }

  /** A client was dropped for not reading: counted, logged at debug, and at warn at most once per interval. */
  clientStalled(kind: RequestKind, session: Session): void {
    this.options.metrics.clientStalled(kind);
    let warned = false;
    this.stallLog.maybe((suppressed) => {
      warned = true;
      this.options.log.warn({ kind, channel: session.channel, timeoutMs: this.stalls.timeoutMs, suppressed }, 'client accepted no bytes for proxy.clientStallTimeout: dropped, upstream released');
    });
    if (!warned) this.options.log.debug({ kind, channel: session.channel, session: session.tag }, 'stalled client dropped');
  }


  /** Readiness: does the upstream answer HTTP at all (any status) within `timeoutMs`? */
  async probe(timeoutMs: number): Promise<boolean> {
    try {
      const res = await this.pool.request({ method: 'HEAD', path: '/', headers: { host: this.upstreamHost }, signal: AbortSignal.timeout(timeoutMs) });
      await res.body.dump();
      return true;
    } catch {
      return false;
    }
  }

  /** Idempotent. */
  async close(): Promise<void> {
    this.stalls.close();
    await Promise.all([this.pool.close().catch(() => undefined), this.streamPool.close().catch(() => undefined)]);
  }
}

/** The JSON error answer for an upstream failure; returns its status. */
function writeError(forwarder: Forwarder, res: ServerResponse, code: ErrorCode, kind: RequestKind, startedAt: number): number {
  const status = new EdgeError(code).status;
  const body = errorBody(code);
  const headers = ['content-type', 'application/json', 'content-length', String(Buffer.byteLength(body)), 'cache-control', 'no-store'];
  res.writeHead(status, forwarder.withCors(res, headers));
  res.end(body);
  forwarder.options.metrics.responseStarted(kind, startedAt);
  return status;
}

/** One client request ↔ one upstream request. */
class Exchange implements Dispatcher.DispatchHandler, StallTarget {
  private controller: Dispatcher.DispatchController | undefined;
  private readonly started = performance.now();
  /** Playlist being collected for rewriting; undefined when streaming through. */
  private playlist: Buffer[] | undefined;
  private playlistBytes = 0;
  private status = 0;
  private finished = false;
  private drainListening = false;
  stallIndex = -1;
  stallSince = 0;
  stallAccepted = 0;
  /** `drain` (the client caught up) or, after the last write, `finish` (it took the tail). */
  private readonly onDrain = (): void => {
    this.forwarder.stalls.unwatch(this);
    if (!this.finished) this.controller?.resume();
  };
  private readonly onClientClose = (): void => {
    this.forwarder.stalls.unwatch(this);
    if (this.finished) return;
    this.finished = true;
    // The client went away mid-response (players abort segment downloads all the time): stop the upstream now.
    this.controller?.abort(new EdgeError('EDGE_ERR_UPSTREAM_RESET', 'client closed the connection'));
    this.forwarder.options.metrics.upstreamOutcome('aborted');
    this.onDone(this.status === 0 ? 499 : this.status);
  };

  constructor(
    private readonly forwarder: Forwarder,
    private readonly res: ServerResponse,
    private readonly request: ForwardRequest,
    private readonly onDone: (status: number) => void,
    /** Counted in the forwarder's open streams until the upstream request is over. */
    private holdsStreamSlot: boolean,
  ) {
    res.once('close', this.onClientClose);
  }

  acceptedBytes(): number {
    const socket = this.res.socket;
    return socket === null ? this.stallAccepted : socketAcceptedBytes(socket);
  }

  /** The client took no bytes for proxy.clientStallTimeout: cut it, which releases the upstream at once. */
  onStall(): void {
    if (this.res.destroyed) return;
    this.forwarder.clientStalled(this.request.kind, this.request.session);
    this.onClientClose();
    // A reset, not a close: a FIN would queue behind the unread bytes, and the kernel would keep the
    // orphaned socket and its full send buffer, probing a zero window, for minutes.
    const socket = this.res.socket;
    try {
      if (socket === null) this.res.destroy();
      else socket.resetAndDestroy();
    } catch {
      this.res.destroy(); // not a TCP socket (resetAndDestroy throws): a plain close
    }
  }

  /** Called by undici's two terminal callbacks: the upstream request is over. */
  private release(): void {
    if (!this.holdsStreamSlot) return;
    this.holdsStreamSlot = false;
    this.forwarder.streamReleased();
  }

  /**
   * After the last write: when the client has not taken it all yet (the
   * socket still holds a full buffer, e.g. a 1 MiB playlist to a reader that
   * stopped), keep watching until it is flushed or the client is dropped.
   */
  private watchUntilFlushed(): void {
    const socket = this.res.socket;
    if (!this.forwarder.stalls.enabled || socket === null || !socket.writableNeedDrain) {
      this.forwarder.stalls.unwatch(this);
      return;
    }
    this.forwarder.stalls.watch(this);
    this.res.once('finish', this.onDrain);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.finished) controller.abort(new EdgeError('EDGE_ERR_UPSTREAM_RESET', 'client closed the connection'));
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    this.forwarder.options.metrics.upstreamDuration.observe((performance.now() - this.started) / 1000);
    if (this.finished) return;
    this.status = statusCode;
    const contentType = headers['content-type'];
    const isPlaylist =
      statusCode === 200 &&
      this.request.method === 'GET' &&
      (this.request.kind === 'playlist' || (typeof contentType === 'string' && PLAYLIST_CONTENT_TYPES.test(contentType)));
    if (isPlaylist) {
      this.playlist = [];
      return;
    }
    const raw = (controller.rawHeaders ?? []) as (string | Buffer)[];
    if (this.request.kind === 'playlist' && this.request.method === 'HEAD') {
      // What a GET would send is a rewritten, per-viewer body: the upstream's length and validators do not describe it.
      const headers = clientResponseHeaders(raw, PLAYLIST_DROPPED_HEADERS);
      headers.push('cache-control', 'private, no-cache');
      this.res.writeHead(statusCode, this.forwarder.withCors(this.res, headers));
    } else {
      this.res.writeHead(statusCode, this.forwarder.withCors(this.res, clientResponseHeaders(raw)));
    }
    this.forwarder.options.metrics.responseStarted(this.request.kind, this.request.startedAt);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.forwarder.options.metrics.upstreamBytesReceived(this.request.kind, chunk.length);
    if (this.finished) return;
    if (this.playlist !== undefined) {
      this.playlistBytes += chunk.length;
      if (this.playlistBytes > this.forwarder.options.maxPlaylistBytes) {
        controller.abort(new EdgeError('EDGE_ERR_PLAYLIST_TOO_LARGE'));
        return;
      }
      this.playlist.push(chunk);
      return;
    }
    this.request.session.bytes += chunk.length;
    this.forwarder.options.metrics.bytesSent(this.request.kind, chunk.length);
    if (!this.res.write(chunk)) {
      // Backpressure: the upstream waits for the client, and the stall watch watches the client.
      controller.pause();
      if (!this.drainListening) {
        this.drainListening = true;
        this.res.on('drain', this.onDrain);
      }
      this.forwarder.stalls.watch(this);
    }
  }

  onResponseEnd(controller: Dispatcher.DispatchController): void {
    this.release();
    if (this.finished) return;
    this.finished = true;
    this.forwarder.options.metrics.upstreamOutcome('ok');
    if (this.playlist !== undefined) {
      this.sendPlaylist(controller);
    } else {
      this.res.end();
    }
    this.watchUntilFlushed();
    this.onDone(this.status);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.release();
    if (this.finished) return;
    this.finished = true;
    this.forwarder.stalls.unwatch(this);
    this.res.off('close', this.onClientClose);
    if (error instanceof EdgeError && error.code === 'EDGE_ERR_PLAYLIST_TOO_LARGE') {
      this.forwarder.options.metrics.upstreamOutcome('invalid');
      this.forwarder.options.log.warn({ limit: this.forwarder.options.maxPlaylistBytes, channel: this.request.session.channel }, 'upstream playlist too large');
      this.fail('EDGE_ERR_PLAYLIST_TOO_LARGE');
      return;
    }
    const failure = UPSTREAM_FAILURE[classifyTransportError(error)]!;
    this.forwarder.options.metrics.upstreamOutcome(failure.outcome);
    if (this.res.headersSent) {
      // Mid-body: never let a cut body look like a complete response.
      this.forwarder.options.log.debug({ code: failure.code, channel: this.request.session.channel }, 'upstream failed mid-body; client connection destroyed');
      this.res.destroy();
      this.onDone(this.status);
      return;
    }
    this.forwarder.options.log.warn({ code: failure.code, err: error.message }, 'upstream request failed');
    this.fail(failure.code);
  }

  private fail(code: ErrorCode): void {
    this.onDone(writeError(this.forwarder, this.res, code, this.request.kind, this.request.startedAt));
  }

  private sendPlaylist(controller: Dispatcher.DispatchController): void {
    const upstreamBody = Buffer.concat(this.playlist!, this.playlistBytes);
    this.playlist = undefined;
    const raw = (controller.rawHeaders ?? []) as (string | Buffer)[];
    const headers = clientResponseHeaders(raw, PLAYLIST_DROPPED_HEADERS);
    // A rewritten playlist carries this viewer's session: no shared cache may keep it.
    headers.push('cache-control', 'private, no-cache');
    // Not a playlist after all (a wrong content type): pass the bytes through untouched.
    // Compiled per request for now; the template does not depend on the session, so a shared cache can keep it.
    const body = isPlaylistBody(upstreamBody) ? renderPlaylist(compilePlaylist(upstreamBody, this.forwarder.playlistContext), this.request.session.marker) : upstreamBody;
    headers.push('content-length', String(body.length));
    this.request.session.bytes += body.length;
    this.forwarder.options.metrics.bytesSent(this.request.kind, body.length);
    this.res.writeHead(200, this.forwarder.withCors(this.res, headers));
    this.res.end(body);
    this.forwarder.options.metrics.responseStarted(this.request.kind, this.request.startedAt);
  }
}
