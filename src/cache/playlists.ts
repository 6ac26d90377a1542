/**
 * Live playlists, micro-cached: one upstream fetch per URL per
 * cache.playlistTtl (or half the target duration, if shorter), compiled once
 * into a template (proxy/playlist.ts) shared by every session of that URL;
 * each session's body is the template joined with its own marker, so one
 * session's playlist is never another's. Concurrent misses share one fetch.
 *
 * Non-playlist or error answers are passed to the requests that waited for
 * them; 404/410 are kept for cache.negativeTtl, other errors not at all.
 * Also learns each playlist's target duration, which sets the default TTL
 * of the segments it lists (cache.segmentTtl auto).
 */
import type { ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { EdgeError } from '../errors.js';
import { clientResponseHeaders } from '../proxy/headers.js';
import type { ResponseObserver } from '../proxy/observer.js';
import { compilePlaylist, isPlaylistBody, renderPlaylist, type PlaylistContext, type PlaylistTemplate } from '../proxy/playlist.js';
import { cacheVerdict } from './policy.js';
import type { CacheResult } from './respond.js';

/** Headers that do not survive a per-session rewrite (the body differs per viewer). */
const REWRITE_DROPPED: ReadonlySet<string> = new Set(['content-length', 'etag', 'last-modified', 'content-md5', 'accept-ranges', 'cache-control', 'content-encoding', 'age', 'expires']);
const PASSED_DROPPED: ReadonlySet<string> = new Set(['content-length', 'age']);
/** URLs whose playlist is kept at once (LRU beyond): a few per channel. */
const MAX_PLAYLISTS = 10_000;
const X_CACHE: Readonly<Record<CacheResult, string>> = { hit: 'HIT', miss: 'MISS', coalesced: 'COALESCED' };
const TARGET_DURATION = '#EXT-X-TARGETDURATION:';

/** One upstream answer for a playlist URL, shared by the sessions that ask for it. */
interface PlaylistAnswer {
  readonly status: number;
  /** Client headers without Content-Length; a rewritten playlist has `cache-control: private, no-cache`. */
  readonly headers: string[];
  /** A playlist: rendered per session. */
  readonly template: PlaylistTemplate | undefined;
  /** Anything else (an error page, a non-playlist body): sent as it is. */
  readonly raw: Buffer | undefined;
  readonly expiresAt: number;
}

interface Waiter {
  readonly res: ServerResponse;
  readonly head: boolean;
  readonly marker: string;
  readonly observer: ResponseObserver;
}

export interface PlaylistCacheOptions {
  /** cache.playlistTtl; 0: every request fetches (still coalesced while a fetch is under way). */
  readonly ttlMs: number;
  readonly negativeTtlMs: number;
  readonly maxPlaylistBytes: number;
  readonly origin: string;
  readonly dispatch: (options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler) => boolean;
  readonly context: PlaylistContext;
  readonly xCache: boolean;
  /** CORS headers and the like (Forwarder.withCors). */
  readonly decorate: (res: ServerResponse, headers: string[]) => string[];
  readonly onUpstreamBytes: (n: number) => void;
  readonly onResult: (result: CacheResult) => void;
  /** A fetch's upstream exchange ended (undefined: complete). */
  readonly onFetchDone: (error: Error | undefined) => void;
  /** A playlist at `pathAndQuery` announced this target duration (seconds). */
  readonly onTargetDuration: (pathAndQuery: string, seconds: number) => void;
  readonly now?: () => number;
}

export class PlaylistCache {
  private readonly answers = new Map<string, PlaylistAnswer>();
  private readonly pending = new Map<string, Waiter[]>();
  private readonly now: () => number;

  constructor(readonly options: PlaylistCacheOptions) {
    this.now = options.now ?? Date.now;
  }

  get size(): number {
    return this.answers.size;
  }

  /**
   * The hot path's common case: a fresh 200 playlist for `pathAndQuery`, rendered for `marker` and
   * sent at once. Returns the body bytes sent (0 for HEAD), or -1 when there is none (nothing was
   * sent: the caller goes through `serve`, with the upstream headers and an observer).
   */
  hit(res: ServerResponse, pathAndQuery: string, head: boolean, marker: string): number {
    const answer = this.answers.get(pathAndQuery);
    if (answer === undefined || answer.template === undefined || answer.status !== 200 || answer.expiresAt <= this.now()) return -1;
    this.options.onResult('hit');
    return this.write(res, answer, head, marker, 'hit');
  }

  /** Serves `marker`'s copy of the playlist at `pathAndQuery` (the upstream URL, also the key). */
  serve(res: ServerResponse, pathAndQuery: string, headers: readonly string[], head: boolean, marker: string, observer: ResponseObserver): void {
    const answer = this.answers.get(pathAndQuery);
    if (answer !== undefined) {
      if (answer.expiresAt > this.now()) {
        this.options.onResult('hit');
        this.send(res, answer, head, marker, 'hit', observer);
        return;
      }
      this.answers.delete(pathAndQuery);
    }
    const waiting = this.pending.get(pathAndQuery);
    const waiter: Waiter = { res, head, marker, observer };
    if (waiting !== undefined) {
      this.options.onResult('coalesced');
      waiting.push(waiter);
      return;
    }
    this.options.onResult('miss');
    this.pending.set(pathAndQuery, [waiter]);
    this.options.dispatch({ origin: this.options.origin, method: 'GET', path: pathAndQuery, headers: fetchHeaders(headers) }, new PlaylistFetch(this, pathAndQuery));
  }

  /** @internal the fetch for `key` ended with an answer (or failed: `error`). */
  settle(key: string, answer: PlaylistAnswer | undefined, error: Error | undefined): void {
    this.options.onFetchDone(error);
    const waiters = this.pending.get(key) ?? [];
    this.pending.delete(key);
    if (answer !== undefined && answer.expiresAt > this.now()) {
      if (this.answers.size >= MAX_PLAYLISTS) this.answers.delete(this.answers.keys().next().value!);
      this.answers.set(key, answer);
    }
    for (let i = 0; i < waiters.length; i++) {
      const w = waiters[i]!;
      if (w.res.destroyed) {
        w.observer.finished(499, false);
        continue;
      }
      if (answer !== undefined) this.send(w.res, answer, w.head, w.marker, i === 0 ? 'miss' : 'coalesced', w.observer);
      else w.observer.failedBeforeHead(error!);
    }
  }

  /** @internal */
  answerFor(key: string, status: number, rawHeaders: (string | Buffer)[], headers: Record<string, string | string[] | undefined>, body: Buffer): PlaylistAnswer {
    const now = this.now();
    const verdict = cacheVerdict(status, headers, { defaultTtlMs: this.options.ttlMs, negativeTtlMs: this.options.negativeTtlMs, microCache: true });
    if (status === 200 && isPlaylistBody(body)) {
      const td = targetDurationOf(body);
      if (td !== undefined) this.options.onTargetDuration(key, td);
      // Half a target duration at most: a player reloads every target duration and must see each new segment.
      const ttl = Math.min(verdict.ttlMs, this.options.ttlMs, td === undefined ? Infinity : (td * 1000) / 2);
      const out = clientResponseHeaders(rawHeaders, REWRITE_DROPPED);
      // A rewritten playlist carries this viewer's session: no shared cache downstream may keep it.
      out.push('cache-control', 'private, no-cache');
      return { status, headers: out, template: compilePlaylist(body, this.options.context), raw: undefined, expiresAt: now + ttl };
    }
    return { status, headers: clientResponseHeaders(rawHeaders, PASSED_DROPPED), template: undefined, raw: body, expiresAt: now + verdict.ttlMs };
  }

  private send(res: ServerResponse, answer: PlaylistAnswer, head: boolean, marker: string, result: CacheResult, observer: ResponseObserver): void {
    const sent = this.write(res, answer, head, marker, result);
    observer.started(answer.status);
    if (!head) observer.sent(sent);
    observer.finished(answer.status, true);
  }

  /** Writes the whole answer; returns the body bytes sent. */
  private write(res: ServerResponse, answer: PlaylistAnswer, head: boolean, marker: string, result: CacheResult): number {
    const body = answer.template !== undefined ? renderPlaylist(answer.template, marker) : answer.raw!;
    const headers = answer.headers.slice();
    headers.push('content-length', String(body.length));
    if (this.options.xCache) headers.push('x-cache', X_CACHE[result]);
    res.writeHead(answer.status, this.options.decorate(res, headers));
    if (head) {
      res.end();
      return 0;
    }
    res.end(body);
    return body.length;
  }

  close(): void {
    this.answers.clear();
  }
}

/** Collects one playlist answer (bounded by hls.maxPlaylistBytes). */
class PlaylistFetch implements Dispatcher.DispatchHandler {
  private chunks: Buffer[] = [];
  private bytes = 0;
  private status = 0;
  private rawHeaders: (string | Buffer)[] = [];
  private headers: Record<string, string | string[] | undefined> = {};

  constructor(
    private readonly cache: PlaylistCache,
    private readonly key: string,
  ) {}

  /** undici tells the new handler API from the legacy one by this method. */
  onRequestStart(): void {}

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    this.status = statusCode;
    this.headers = headers;
    this.rawHeaders = (controller.rawHeaders ?? []) as (string | Buffer)[];
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const options = this.cache.options;
    options.onUpstreamBytes(chunk.length);
    this.bytes += chunk.length;
    if (this.bytes > options.maxPlaylistBytes) {
      controller.abort(new EdgeError('EDGE_ERR_PLAYLIST_TOO_LARGE'));
      return;
    }
    this.chunks.push(chunk);
  }

  onResponseEnd(): void {
    const body = Buffer.concat(this.chunks, this.bytes);
    this.chunks = [];
    this.cache.settle(this.key, this.cache.answerFor(this.key, this.status, this.rawHeaders, this.headers, body), undefined);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.chunks = [];
    this.cache.settle(this.key, undefined, error);
  }
}

/** `#EXT-X-TARGETDURATION:<s>` of a playlist, if any (RFC 8216 §4.3.3.1: a decimal integer). */
export function targetDurationOf(body: Buffer): number | undefined {
  const at = body.indexOf(TARGET_DURATION, 0, 'latin1');
  if (at === -1) return undefined;
  let n = 0;
  let digits = 0;
  for (let i = at + TARGET_DURATION.length; i < body.length && digits < 6; i++, digits++) {
    const c = body[i]!;
    if (c < 48 || c > 57) break;
    n = n * 10 + (c - 48);
  }
  return digits === 0 || n === 0 ? undefined : n;
}

function fetchHeaders(headers: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!.toLowerCase();
    if (name === 'range' || name === 'if-range' || name === 'if-none-match' || name === 'if-modified-since' || name === 'cache-control' || name === 'pragma') continue;
    out.push(headers[i]!, headers[i + 1]!);
  }
  return out;
}
