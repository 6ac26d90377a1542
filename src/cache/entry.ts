/**
 * One cached upstream response: its head (status, client-ready headers) and
 * its body, which grows while the single upstream fetch is under way. Every
 * viewer of the same URL reads the same bytes from here, each at its own
 * offset, as they arrive: the first byte never waits for the last.
 *
 * The body is one contiguous buffer (preallocated from Content-Length, else
 * grown by doubling), so a hit is a single `res.end(buffer)` and the bytes
 * the cache holds are exactly the bytes it counts.
 */

export interface ResponseHead {
  readonly status: number;
  /** Flat [name, value, …] as `res.writeHead` takes it: hop-by-hop headers already removed. */
  readonly headers: readonly string[];
  /** Upstream Content-Length, when it sent one. */
  readonly contentLength: number | undefined;
}

/** What an entry tells the responses that read it. */
export interface EntryReader {
  /** The head arrived (or was already there): write it, then call `entry.readFrom`. */
  onHead(entry: CacheEntry): void;
  /** More bytes are available. */
  onData(entry: CacheEntry): void;
  /** The body is complete. */
  onEnd(entry: CacheEntry): void;
  /**
   * The fetch failed. `beforeHead`: nothing was written yet (the reader may
   * answer with an error or go upstream on its own); otherwise the body is cut.
   */
  onError(entry: CacheEntry, error: Error, beforeHead: boolean): void;
}

export type EntryState = 'pending' | 'streaming' | 'complete' | 'failed';

/** Smallest buffer for a body of unknown length. */
const INITIAL_UNKNOWN_LENGTH_BYTES = 64 * 1024;

export class CacheEntry {
  state: EntryState = 'pending';
  head: ResponseHead | undefined = undefined;
  /** ms since epoch after which the entry is not served; set when the body completes. */
  expiresAt = 0;
  /** Bytes of memory held (the buffer's capacity), as the cache counts them. */
  reserved = 0;
  /** In the cache's index (false once evicted, expired or never to be stored). */
  indexed = false;
  /** Requests that found this entry while the fetch was under way (metrics: coalesced). */
  private buffer: Buffer = EMPTY;
  private filled = 0;
  private readonly readers = new Set<EntryReader>();
  error: Error | undefined = undefined;

  constructor(
    readonly key: string,
    /** Largest body kept; a longer one fails the entry (see MediaCache.maxEntryBytes). */
    private readonly maxBytes: number,
    /** Called with the change in reserved bytes (the cache's accounting). */
    private readonly onResize: (entry: CacheEntry, delta: number) => void,
  ) {}

  get size(): number {
    return this.filled;
  }

  get readerCount(): number {
    return this.readers.size;
  }

  /** The complete body (state `complete`), or the part received so far. */
  get body(): Buffer {
    return this.buffer.subarray(0, this.filled);
  }

  /** Bytes from `offset` to what has arrived (empty when the reader is up to date). */
  readFrom(offset: number): Buffer {
    return this.buffer.subarray(offset, this.filled);
  }

  /** Adds a reader; it hears about everything from where the entry is now. */
  attach(reader: EntryReader): void {
    if (this.state === 'failed') {
      reader.onError(this, this.error!, true);
      return;
    }
    this.readers.add(reader);
    if (this.head !== undefined) {
      reader.onHead(this);
      if (this.state === 'complete') reader.onEnd(this);
    }
  }

  detach(reader: EntryReader): void {
    this.readers.delete(reader);
  }

  /** Upstream response head. Returns false when the body would be too large to keep. */
  start(head: ResponseHead): boolean {
    if (head.contentLength !== undefined && head.contentLength > this.maxBytes) return false;
    this.head = head;
    this.state = 'streaming';
    this.grow(head.contentLength ?? INITIAL_UNKNOWN_LENGTH_BYTES);
    for (const reader of this.readers) reader.onHead(this);
    return true;
  }

  /** A body chunk from upstream (copied: undici's chunk is a view on the socket's read buffer). Returns false past maxBytes. */
  append(chunk: Buffer): boolean {
    const needed = this.filled + chunk.length;
    if (needed > this.maxBytes) return false;
    if (needed > this.buffer.length) this.grow(Math.min(this.maxBytes, Math.max(needed, this.buffer.length * 2)));
    chunk.copy(this.buffer, this.filled);
    this.filled = needed;
    for (const reader of this.readers) reader.onData(this);
    return true;
  }

  /** The body is complete; memory beyond it is given back. */
  finish(expiresAt: number): void {
    this.state = 'complete';
    this.expiresAt = expiresAt;
    if (this.buffer.length > this.filled) {
      // Unknown length grown by doubling, or a body shorter than announced: keep exactly what we have.
      const exact = Buffer.allocUnsafeSlow(this.filled);
      this.buffer.copy(exact, 0, 0, this.filled);
      this.setBuffer(exact);
    }
    for (const reader of [...this.readers]) reader.onEnd(this);
    this.readers.clear();
  }

  fail(error: Error): void {
    if (this.state === 'complete' || this.state === 'failed') return;
    const beforeHead = this.head === undefined;
    this.state = 'failed';
    this.error = error;
    this.setBuffer(EMPTY);
    this.filled = 0;
    for (const reader of [...this.readers]) reader.onError(this, error, beforeHead);
    this.readers.clear();
  }

  private grow(capacity: number): void {
    const next = Buffer.allocUnsafeSlow(capacity);
    if (this.filled > 0) this.buffer.copy(next, 0, 0, this.filled);
    this.setBuffer(next);
  }

  private setBuffer(next: Buffer): void {
    const delta = next.length - this.buffer.length;
    this.buffer = next;
    this.reserved += delta;
    if (delta !== 0) this.onResize(this, delta);
  }
}

const EMPTY = Buffer.alloc(0);
