import { afterEach, describe, expect, it } from 'vitest';
import type { CacheEntry, EntryReader } from '../../src/cache/entry.js';
import { MediaCache } from '../../src/cache/media-cache.js';

const caches: MediaCache[] = [];
afterEach(() => {
  for (const c of caches.splice(0)) c.close();
});

function cacheOf(maxBytes: number, maxEntryBytes = maxBytes, now = () => 0): MediaCache {
  const c = new MediaCache({ maxBytes, maxEntryBytes, now });
  caches.push(c);
  return c;
}

function fill(cache: MediaCache, key: string, size: number, ttlMs = 10_000): CacheEntry {
  const entry = cache.open(key);
  entry.start({ status: 200, headers: [], contentLength: size });
  entry.append(Buffer.alloc(size, key.charCodeAt(0)));
  cache.complete(entry, ttlMs);
  return entry;
}

function recorder(): EntryReader & { events: string[]; bytes: number; offset: number } {
  const r = {
    events: [] as string[],
    bytes: 0,
    offset: 0,
    onHead(e: CacheEntry) {
      r.events.push(`head ${e.head!.status}`);
    },
    onData(e: CacheEntry) {
      const chunk = e.readFrom(r.offset);
      r.offset += chunk.length;
      r.bytes += chunk.length;
      r.events.push(`data ${chunk.length}`);
    },
    onEnd() {
      r.events.push('end');
    },
    onError(_e: CacheEntry, err: Error, beforeHead: boolean) {
      r.events.push(`error ${err.message} ${beforeHead}`);
    },
  };
  return r;
}

describe('MediaCache', () => {
  it('is bounded in bytes, evicting the least recently used', () => {
    const cache = cacheOf(3000);
    fill(cache, 'a', 1000);
    fill(cache, 'b', 1000);
    fill(cache, 'c', 1000);
    expect(cache.bytes).toBe(3000);
    cache.get('a'); // a is now the most recently used
    fill(cache, 'd', 1000);
    expect(cache.bytes).toBe(3000);
    expect(cache.evictions).toBe(1);
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')?.size).toBe(1000);
    expect(cache.get('c')).toBeDefined();
    expect(cache.get('d')).toBeDefined();
  });

  it('counts the bytes of entries still being fetched, and never evicts the one growing', () => {
    const cache = cacheOf(2000);
    fill(cache, 'a', 1000);
    const growing = cache.open('g');
    growing.start({ status: 200, headers: [], contentLength: 1500 });
    expect(cache.bytes).toBe(2500 - 1000); // a evicted to make room
    expect(cache.get('a')).toBeUndefined();
    expect(cache.get('g')).toBe(growing);
  });

  it('drops expired entries when asked for them and in its sweep', () => {
    let t = 0;
    const cache = cacheOf(10_000, 10_000, () => t);
    fill(cache, 'a', 100, 1000);
    t = 999;
    expect(cache.get('a')).toBeDefined();
    t = 1000;
    expect(cache.get('a')).toBeUndefined();
    expect(cache.bytes).toBe(0);
  });

  it('a TTL of 0 serves the waiters and keeps nothing', () => {
    const cache = cacheOf(10_000);
    const entry = cache.open('x');
    const r = recorder();
    entry.attach(r);
    entry.start({ status: 503, headers: [], contentLength: 3 });
    entry.append(Buffer.from('err'));
    cache.complete(entry, 0);
    expect(r.events).toEqual(['head 503', 'data 3', 'end']);
    expect(cache.get('x')).toBeUndefined();
    expect(cache.bytes).toBe(0);
  });

  it('readers attached mid-fetch see the head at once and every byte after', () => {
    const cache = cacheOf(10_000);
    const entry = cache.open('s');
    const early = recorder();
    entry.attach(early);
    entry.start({ status: 200, headers: ['content-type', 'video/mp2t'], contentLength: 6 });
    entry.append(Buffer.from('abc'));
    const late = recorder();
    entry.attach(late);
    expect(late.events).toEqual(['head 200']);
    late.onData(entry); // a reader pulls what is already there
    entry.append(Buffer.from('def'));
    cache.complete(entry, 1000);
    expect(early.bytes).toBe(6);
    expect(late.bytes).toBe(6);
    expect(entry.body.toString()).toBe('abcdef');
    expect(early.events.at(-1)).toBe('end');
  });

  it('an unknown length grows by doubling and ends with exactly its bytes', () => {
    const cache = cacheOf(10 * 1024 * 1024);
    const entry = cache.open('u');
    entry.start({ status: 200, headers: [], contentLength: undefined });
    for (let i = 0; i < 100; i++) entry.append(Buffer.alloc(5000, i));
    cache.complete(entry, 1000);
    expect(entry.size).toBe(500_000);
    expect(entry.reserved).toBe(500_000);
    expect(cache.bytes).toBe(500_000);
    expect(entry.body[4999]).toBe(0);
    expect(entry.body[5000]).toBe(1);
  });

  it('refuses a body over maxEntryBytes, announced or grown', () => {
    const cache = cacheOf(10_000, 1000);
    const announced = cache.open('big');
    expect(announced.start({ status: 200, headers: [], contentLength: 1001 })).toBe(false);
    const grown = cache.open('grown');
    expect(grown.start({ status: 200, headers: [], contentLength: undefined })).toBe(true);
    expect(grown.append(Buffer.alloc(1000))).toBe(true);
    expect(grown.append(Buffer.alloc(1))).toBe(false);
  });

  it('a failed fetch tells its readers whether anything was written, and leaves the index', () => {
    const cache = cacheOf(10_000);
    const before = cache.open('f1');
    const r1 = recorder();
    before.attach(r1);
    cache.remove(before);
    before.fail(new Error('refused'));
    expect(r1.events).toEqual(['error refused true']);
    const during = cache.open('f2');
    const r2 = recorder();
    during.attach(r2);
    during.start({ status: 200, headers: [], contentLength: 10 });
    during.append(Buffer.alloc(4));
    cache.remove(during);
    during.fail(new Error('reset'));
    expect(r2.events).toEqual(['head 200', 'data 4', 'error reset false']);
    expect(cache.bytes).toBe(0);
    expect(cache.entries).toBe(0);
  });
});
