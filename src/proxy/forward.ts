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
 */
import type { ServerResponse } from 'node:http';
import { Pool, type Dispatcher } from 'undici';
import type { Logger } from 'pino';
import { EdgeError, classifyTransportError, errorBody, type ErrorCode } from '../errors.js';
import type { UpstreamConfig } from '../config/schema.js';
import type { EdgeMetrics, RequestKind, UpstreamOutcome } from '../metrics/metrics.js';
import type { Session } from '../session/session.js';
import { clientResponseHeaders } from './headers.js';
import { compilePlaylist, isPlaylistBody, renderPlaylist, type PlaylistContext } from './playlist.js';

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
  readonly metrics: EdgeMetrics;
  readonly log: Logger;
}

export class Forwarder {
  readonly pool: Pool;
  readonly upstreamHost: string;
  readonly options: ForwarderOptions;
  /** What compilePlaylist needs to know about this edge: the same for every session. */
  readonly playlistContext: PlaylistContext;

  constructor(options: ForwarderOptions) {
    this.options = options;
    const url = new URL(options.upstream.origin);
    this.upstreamHost = url.host;
    this.playlistContext = { upstreamOrigin: url.origin.toLowerCase(), param: options.sessionParam };
    this.pool = new Pool(url.origin, {
      connections: options.upstream.connections,
      connectTimeout: options.upstream.connectTimeoutMs,
      headersTimeout: options.upstream.headersTimeoutMs,
      bodyTimeout: options.upstream.bodyTimeoutMs,
      keepAliveTimeout: 30_000,
      // Astra answers one request per connection at a time; pipelining would couple players' fates.
      pipelining: 1,
    });
  }

  forward(res: ServerResponse, request: ForwardRequest, onDone: (status: number) => void): void {
    const exchange = new Exchange(this, res, request, onDone);
    this.pool.dispatch(
      { origin: this.options.upstream.origin, method: request.method, path: request.pathAndQuery, headers: request.headers },
      exchange,
    );
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

  async close(): Promise<void> {
    await this.pool.close().catch(() => undefined);
  }
}

/** One client request ↔ one upstream request. */
class Exchange implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  private readonly started = performance.now();
  /** Playlist being collected for rewriting; undefined when streaming through. */
  private playlist: Buffer[] | undefined;
  private playlistBytes = 0;
  private status = 0;
  private finished = false;
  private readonly onDrain = (): void => this.controller?.resume();
  private readonly onClientClose = (): void => {
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
  ) {
    res.once('close', this.onClientClose);
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
      this.res.writeHead(statusCode, headers);
    } else {
      this.res.writeHead(statusCode, clientResponseHeaders(raw));
    }
    this.forwarder.options.metrics.responseStarted(this.request.kind, this.request.startedAt);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
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
      controller.pause();
      this.res.once('drain', this.onDrain);
    }
  }

  onResponseEnd(controller: Dispatcher.DispatchController): void {
    if (this.finished) return;
    this.finished = true;
    this.res.off('close', this.onClientClose);
    this.forwarder.options.metrics.upstreamOutcome('ok');
    if (this.playlist !== undefined) {
      this.sendPlaylist(controller);
    } else {
      this.res.end();
    }
    this.onDone(this.status);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    if (this.finished) return;
    this.finished = true;
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
    const status = new EdgeError(code).status;
    const body = errorBody(code);
    this.res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    this.res.end(body);
    this.forwarder.options.metrics.responseStarted(this.request.kind, this.request.startedAt);
    this.onDone(status);
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
    const body = isPlaylistBody(upstreamBody) ? renderPlaylist(compilePlaylist(upstreamBody, this.forwarder.playlistContext), this.request.session.id) : upstreamBody;
    headers.push('content-length', String(body.length));
    this.request.session.bytes += body.length;
    this.forwarder.options.metrics.bytesSent(this.request.kind, body.length);
    this.res.writeHead(200, headers);
    this.res.end(body);
    this.forwarder.options.metrics.responseStarted(this.request.kind, this.request.startedAt);
  }
}
