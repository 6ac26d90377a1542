/**
 * Serving one client response from a cache entry: the whole body in one
 * write when the entry is complete, or, while its fetch is under way, the
 * bytes as they arrive at this reader's own pace (backpressure per reader:
 * a slow player waits on its own socket, never on the fetch or on others).
 */
import type { ServerResponse } from 'node:http';
import type { ResponseObserver } from '../proxy/observer.js';
import { socketAcceptedBytes, type StallTarget, type StallWatch } from '../proxy/stall.js';
import type { CacheEntry, EntryReader } from './entry.js';
import { parseRange } from './range.js';

export type CacheResult = 'hit' | 'miss' | 'coalesced';

/** X-Cache values, one constant each. */
const X_CACHE: Readonly<Record<CacheResult, string>> = { hit: 'HIT', miss: 'MISS', coalesced: 'COALESCED' };

export interface ServeOptions {
  readonly head: boolean;
  readonly range: string | undefined;
  /** Add `X-Cache` (cache.header). */
  readonly xCache: boolean;
  /** Adds what every answer of the edge carries (CORS headers: proxy/cors.ts via Forwarder.withCors). */
  readonly decorate: (res: ServerResponse, headers: string[]) => string[];
}

function headersFor(res: ServerResponse, entry: CacheEntry, result: CacheResult, options: ServeOptions, length: number | undefined, extra?: readonly string[]): string[] {
  const out = entry.head!.headers.slice();
  if (length !== undefined) out.push('content-length', String(length));
  if (entry.head!.status === 200) out.push('accept-ranges', 'bytes');
  if (extra !== undefined) out.push(...extra);
  if (options.xCache) out.push('x-cache', X_CACHE[result]);
  return options.decorate(res, out);
}

/** A complete entry: one writeHead, one end. Returns the status sent. */
export function serveComplete(res: ServerResponse, entry: CacheEntry, result: CacheResult, options: ServeOptions, observer: ResponseObserver): void {
  const head = entry.head!;
  const size = entry.size;
  if (head.status === 200 && options.range !== undefined) {
    const range = parseRange(options.range, size);
    if (range.kind === 'unsatisfiable') {
      const headers = ['content-range', `bytes */${size}`, 'content-length', '0'];
      if (options.xCache) headers.push('x-cache', X_CACHE[result]);
      res.writeHead(416, options.decorate(res, headers));
      res.end();
      observer.started(416);
      observer.finished(416, true);
      return;
    }
    if (range.kind === 'partial') {
      const length = range.end - range.start + 1;
      res.writeHead(206, headersFor(res, entry, result, options, length, ['content-range', `bytes ${range.start}-${range.end}/${size}`]));
      observer.started(206);
      if (options.head) res.end();
      else {
        res.end(entry.body.subarray(range.start, range.end + 1));
        observer.sent(length);
      }
      observer.finished(206, true);
      return;
    }
  }
  res.writeHead(head.status, headersFor(res, entry, result, options, size));
  observer.started(head.status);
  if (options.head) res.end();
  else {
    res.end(entry.body);
    observer.sent(size);
  }
  observer.finished(head.status, true);
}

/**
 * A reader of an entry still being fetched. A Range request waits for the
 * whole body (a segment is short) and is then served like a hit.
 */
export class StreamingReader implements EntryReader, StallTarget {
  stallIndex = -1;
  stallSince = 0;
  stallAccepted = 0;
  private offset = 0;
  private blocked = false;
  private done = false;
  private wroteHead = false;
  private ended = false;
  private readonly onDrain = (): void => {
    this.stalls.unwatch(this);
    this.blocked = false;
    this.pump();
  };
  private readonly onClose = (): void => {
    this.stalls.unwatch(this);
    if (this.done) return;
    this.done = true;
    this.entry.detach(this);
    this.observer.finished(this.res.statusCode, false);
  };

  constructor(
    private readonly res: ServerResponse,
    private readonly entry: CacheEntry,
    private readonly result: CacheResult,
    private readonly options: ServeOptions,
    private readonly observer: ResponseObserver,
    /** A reader that takes nothing for proxy.clientStallTimeout is cut (it holds no upstream, but a socket and its place in the entry). */
    private readonly stalls: StallWatch,
  ) {
    res.once('close', this.onClose);
  }

  acceptedBytes(): number {
    const socket = this.res.socket;
    return socket === null ? this.stallAccepted : socketAcceptedBytes(socket);
  }

  onStall(): void {
    this.res.destroy();
  }

  onHead(entry: CacheEntry): void {
    if (this.done) return;
    if (this.options.range !== undefined && entry.head!.status === 200) return; // served whole at onEnd
    const length = entry.head!.contentLength;
    this.res.writeHead(entry.head!.status, headersFor(this.res, entry, this.result, this.options, length));
    this.wroteHead = true;
    this.observer.started(entry.head!.status);
    if (this.options.head) {
      this.finish(true);
      return;
    }
    this.pump();
  }

  onData(): void {
    if (!this.done && this.wroteHead && !this.blocked) this.pump();
  }

  onEnd(entry: CacheEntry): void {
    if (this.done) return;
    this.ended = true;
    if (!this.wroteHead) {
      this.done = true;
      this.res.off('close', this.onClose);
      serveComplete(this.res, entry, this.result, this.options, this.observer);
      return;
    }
    if (!this.blocked) this.pump();
  }

  onError(_entry: CacheEntry, error: Error, beforeHead: boolean): void {
    if (this.done) return;
    this.done = true;
    this.res.off('close', this.onClose);
    if (beforeHead || !this.wroteHead) {
      this.observer.failedBeforeHead(error);
      return;
    }
    // Mid-body: a cut body must not look complete.
    this.res.destroy();
    this.observer.finished(this.res.statusCode, false);
  }

  private pump(): void {
    for (;;) {
      const chunk = this.entry.readFrom(this.offset);
      if (chunk.length === 0) break;
      this.offset += chunk.length;
      this.observer.sent(chunk.length);
      if (!this.res.write(chunk)) {
        this.blocked = true;
        this.res.once('drain', this.onDrain);
        this.stalls.watch(this);
        return;
      }
    }
    if (this.ended) this.finish(true);
  }

  private finish(complete: boolean): void {
    if (this.done) return;
    this.done = true;
    this.entry.detach(this);
    this.res.off('close', this.onClose);
    this.res.end();
    this.observer.finished(this.res.statusCode, complete);
  }
}
