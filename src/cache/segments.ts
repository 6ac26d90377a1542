/**
 * Segments (and keys, init sections: anything that is not a playlist or a
 * stream) through the edge cache: a hit is answered from memory, concurrent
 * misses for one URL make ONE upstream request and every viewer streams the
 * same bytes as they arrive. Requests are authorized before they get here
 * (the cache never lets a request skip the session/decision step).
 *
 * The key is the upstream path and query as the edge forwards them: without
 * the session marker, and without the token unless upstream.forwardToken.
 */
import type { ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { EdgeError } from '../errors.js';
import type { ResponseObserver } from '../proxy/observer.js';
import { socketAcceptedBytes, type StallTarget, type StallWatch } from '../proxy/stall.js';
import { CacheFill } from './fill.js';
import type { MediaCache } from './media-cache.js';
import type { PolicyDefaults } from './policy.js';
import { serveComplete, StreamingReader, type CacheResult, type ServeOptions } from './respond.js';

/** Request headers that would make the shared fetch one viewer's (a part, a validation): never sent on a fill. */
const NOT_ON_FILL: ReadonlySet<string> = new Set(['range', 'if-range', 'if-none-match', 'if-modified-since', 'if-match', 'if-unmodified-since', 'cache-control', 'pragma']);

/** A body too large to cache is fetched per request for this long before the cache tries again. */
const TOO_LARGE_MEMORY_MS = 60_000;
/** Bound on the too-large memory (URLs). */
const TOO_LARGE_MAX_KEYS = 1024;

export interface SegmentRequest {
  readonly head: boolean;
  /** Upstream path and query: also the cache key. */
  readonly pathAndQuery: string;
  /** Upstream request headers (flat list) of this viewer. */
  readonly headers: readonly string[];
  readonly range: string | undefined;
}

export interface SegmentCacheOptions {
  readonly cache: MediaCache;
  readonly origin: string;
  readonly dispatch: (options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler) => boolean;
  /** TTL defaults for a segment at this path (auto TTLs depend on the playlist that listed it). */
  readonly defaults: (pathAndQuery: string) => PolicyDefaults;
  readonly xCache: boolean;
  /** CORS headers and the like (Forwarder.withCors). */
  readonly decorate: (res: ServerResponse, headers: string[]) => string[];
  readonly stalls: StallWatch;
  readonly onUpstreamBytes: (n: number) => void;
  readonly onResult: (result: CacheResult) => void;
  /** A fill's upstream exchange ended (undefined: complete). */
  readonly onFetchDone: (error: Error | undefined) => void;
}

export class SegmentCache {
  /** URLs whose body was too large to cache: passed through until the entry expires. */
  private readonly tooLarge = new Map<string, number>();

  constructor(private readonly options: SegmentCacheOptions) {}

  /** False: not for the cache (too large lately): the caller forwards it itself. */
  serve(res: ServerResponse, request: SegmentRequest, observer: ResponseObserver): boolean {
    const key = request.pathAndQuery;
    if (this.tooLarge.size > 0 && this.isTooLarge(key)) return false;
    const serveOptions: ServeOptions = { head: request.head, range: request.range, xCache: this.options.xCache, decorate: this.options.decorate };
    const entry = this.options.cache.get(key);
    if (entry !== undefined && entry.state === 'complete') {
      this.options.onResult('hit');
      serveComplete(res, entry, 'hit', serveOptions, observer);
      this.watchTail(res);
      return true;
    }
    if (entry !== undefined) {
      this.options.onResult('coalesced');
      entry.attach(new StreamingReader(res, entry, 'coalesced', serveOptions, this.readerObserver(key, observer), this.options.stalls));
      return true;
    }
    if (request.head) return false; // a HEAD miss is forwarded as it is: no body to fill the cache with
    this.options.onResult('miss');
    const fresh = this.options.cache.open(key);
    fresh.attach(new StreamingReader(res, fresh, 'miss', serveOptions, this.readerObserver(key, observer), this.options.stalls));
    const fill = new CacheFill(this.options.cache, fresh, this.options.defaults(key), {
      upstreamBytes: this.options.onUpstreamBytes,
      done: (error) => {
        this.options.onFetchDone(error);
        if (error instanceof EdgeError && error.code === 'EDGE_ERR_CACHE_OBJECT_TOO_LARGE') this.rememberTooLarge(key);
      },
    });
    this.options.dispatch({ origin: this.options.origin, method: 'GET', path: key, headers: fillHeaders(request.headers) }, fill);
    return true;
  }

  /** A reader's "failed before anything was written" for a body too large to cache becomes the caller's own request. */
  private readerObserver(key: string, observer: ResponseObserver): ResponseObserver {
    return {
      started: (s) => observer.started(s),
      sent: (n) => observer.sent(n),
      finished: (s, c) => observer.finished(s, c),
      failedBeforeHead: (error) => {
        if (error instanceof EdgeError && error.code === 'EDGE_ERR_CACHE_OBJECT_TOO_LARGE') this.rememberTooLarge(key);
        observer.failedBeforeHead(error);
      },
    };
  }

  /** A hit written in one go may sit in the socket of a client that stopped reading: watch it until flushed. */
  private watchTail(res: ServerResponse): void {
    const socket = res.socket;
    if (!this.options.stalls.enabled || socket === null || !socket.writableNeedDrain) return;
    const target: StallTarget = {
      stallIndex: -1,
      stallSince: 0,
      stallAccepted: 0,
      acceptedBytes: () => socketAcceptedBytes(socket),
      onStall: () => socket.destroy(),
    };
    this.options.stalls.watch(target);
    const done = (): void => this.options.stalls.unwatch(target);
    res.once('finish', done);
    res.once('close', done);
  }

  private isTooLarge(key: string): boolean {
    const until = this.tooLarge.get(key);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.tooLarge.delete(key);
    return false;
  }

  private rememberTooLarge(key: string): void {
    if (this.tooLarge.size >= TOO_LARGE_MAX_KEYS) this.tooLarge.delete(this.tooLarge.keys().next().value!);
    this.tooLarge.set(key, Date.now() + TOO_LARGE_MEMORY_MS);
  }
}

function fillHeaders(headers: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    if (!NOT_ON_FILL.has(headers[i]!.toLowerCase())) out.push(headers[i]!, headers[i + 1]!);
  }
  return out;
}
