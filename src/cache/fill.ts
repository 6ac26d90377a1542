/**
 * The one upstream fetch behind a cache entry: an undici dispatch handler
 * that copies the response into the entry as it arrives. It never pauses for
 * a slow viewer (each reader keeps its own offset into the entry), so one
 * stalled player cannot slow the fetch the others are waiting on.
 */
import type { Dispatcher } from 'undici';
import { EdgeError } from '../errors.js';
import { clientResponseHeaders } from '../proxy/headers.js';
import type { CacheEntry } from './entry.js';
import type { MediaCache } from './media-cache.js';
import { cacheVerdict, type PolicyDefaults } from './policy.js';

/** Headers recomputed for each cached response (length and range are the cache's business). */
const DROPPED: ReadonlySet<string> = new Set(['content-length', 'accept-ranges', 'content-range', 'age']);

export interface FillObserver {
  /** Body bytes received from upstream. */
  upstreamBytes(n: number): void;
  /** The exchange ended (ok, or the transport failure). */
  done(error: Error | undefined): void;
}

export class CacheFill implements Dispatcher.DispatchHandler {
  private ttlMs = 0;
  private controller: Dispatcher.DispatchController | undefined;

  constructor(
    private readonly cache: MediaCache,
    private readonly entry: CacheEntry,
    private readonly defaults: PolicyDefaults,
    private readonly observer: FillObserver,
  ) {}

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    this.ttlMs = cacheVerdict(statusCode, headers, this.defaults).ttlMs;
    const raw = (controller.rawHeaders ?? []) as (string | Buffer)[];
    const length = headers['content-length'];
    const contentLength = typeof length === 'string' && /^\d{1,15}$/.test(length) ? Number(length) : undefined;
    if (!this.entry.start({ status: statusCode, headers: clientResponseHeaders(raw, DROPPED), contentLength })) {
      controller.abort(new EdgeError('EDGE_ERR_CACHE_OBJECT_TOO_LARGE'));
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.observer.upstreamBytes(chunk.length);
    if (!this.entry.append(chunk)) controller.abort(new EdgeError('EDGE_ERR_CACHE_OBJECT_TOO_LARGE'));
  }

  onResponseEnd(): void {
    const head = this.entry.head;
    // A body shorter than its Content-Length is a cut response: never keep it.
    const truncated = head?.contentLength !== undefined && this.entry.size !== head.contentLength;
    if (truncated) {
      this.fail(new EdgeError('EDGE_ERR_UPSTREAM_INVALID', 'upstream body shorter than its Content-Length'));
      return;
    }
    this.cache.complete(this.entry, this.ttlMs);
    this.observer.done(undefined);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.fail(error);
  }

  /** Shutdown: stop the fetch. */
  abort(reason: Error): void {
    this.controller?.abort(reason);
  }

  private fail(error: Error): void {
    this.cache.remove(this.entry);
    this.entry.fail(error);
    this.observer.done(error);
  }
}
