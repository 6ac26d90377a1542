import { describe, expect, it } from 'vitest';
import { cacheVerdict } from '../../src/cache/policy.js';
import { parseRange } from '../../src/cache/range.js';

const defaults = { defaultTtlMs: 30_000, negativeTtlMs: 1000 };

describe('cacheVerdict', () => {
  it.each([
    [200, {}, 30_000],
    [200, { 'cache-control': 'max-age=6' }, 6000],
    [200, { 'cache-control': 'public, max-age=6, s-maxage=2' }, 2000],
    [200, { 'cache-control': 'max-age=0' }, 0],
    [200, { 'cache-control': 'no-store' }, 0],
    [200, { 'cache-control': 'private, max-age=60' }, 0],
    [200, { 'cache-control': 'No-Cache' }, 0],
    [200, { 'cache-control': 'private="set-cookie"' }, 0],
    [200, { 'cache-control': 'max-age=abc' }, 30_000],
    [200, { 'set-cookie': 'a=b' }, 0],
    [200, { vary: 'Accept-Encoding' }, 30_000],
    [200, { vary: 'User-Agent' }, 0],
    [200, { vary: '*' }, 0],
    [404, {}, 1000],
    [410, { 'cache-control': 'max-age=600' }, 1000],
    [404, { 'cache-control': 'max-age=0' }, 0],
    [404, { 'cache-control': 'no-store' }, 0],
    [500, {}, 0],
    [503, { 'cache-control': 'max-age=60' }, 0],
    [302, {}, 0],
    [206, {}, 0],
  ] as const)('%i %j → %i ms', (status, headers, ttl) => {
    expect(cacheVerdict(status, headers, defaults).ttlMs).toBe(ttl);
  });

  it('micro-cache (live playlists): no-cache and max-age=0 take the default TTL; no-store and private still forbid', () => {
    const micro = { ...defaults, defaultTtlMs: 1000, microCache: true };
    expect(cacheVerdict(200, { 'cache-control': 'no-cache' }, micro).ttlMs).toBe(1000);
    expect(cacheVerdict(200, { 'cache-control': 'max-age=0, must-revalidate' }, micro).ttlMs).toBe(1000);
    expect(cacheVerdict(200, { 'cache-control': 'max-age=2' }, micro).ttlMs).toBe(2000);
    expect(cacheVerdict(200, { 'cache-control': 'no-store' }, micro).ttlMs).toBe(0);
    expect(cacheVerdict(200, { 'cache-control': 'private' }, micro).ttlMs).toBe(0);
  });

  it('a zero default TTL stores nothing without an explicit max-age', () => {
    expect(cacheVerdict(200, {}, { defaultTtlMs: 0, negativeTtlMs: 0 }).ttlMs).toBe(0);
    expect(cacheVerdict(200, { 'cache-control': 'max-age=5' }, { defaultTtlMs: 0, negativeTtlMs: 0 }).ttlMs).toBe(5000);
  });
});

describe('parseRange', () => {
  it.each([
    [undefined, 100, { kind: 'full' }],
    ['bytes=0-9', 100, { kind: 'partial', start: 0, end: 9 }],
    ['bytes=90-', 100, { kind: 'partial', start: 90, end: 99 }],
    ['bytes=90-500', 100, { kind: 'partial', start: 90, end: 99 }],
    ['bytes=-10', 100, { kind: 'partial', start: 90, end: 99 }],
    ['bytes=-500', 100, { kind: 'partial', start: 0, end: 99 }],
    ['BYTES = 1 - 2', 100, { kind: 'partial', start: 1, end: 2 }],
    ['bytes=100-', 100, { kind: 'unsatisfiable' }],
    ['bytes=-0', 100, { kind: 'unsatisfiable' }],
    ['bytes=5-1', 100, { kind: 'full' }],
    ['bytes=0-1,5-6', 100, { kind: 'full' }],
    ['items=0-1', 100, { kind: 'full' }],
    ['bytes=-', 100, { kind: 'full' }],
    ['bytes=0-', 0, { kind: 'unsatisfiable' }],
  ] as const)('%s of %i', (header, size, want) => {
    expect(parseRange(header, size)).toEqual(want);
  });
});
