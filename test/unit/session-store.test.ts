import { describe, expect, it } from 'vitest';
import { MemorySessionStore } from '../../src/cache/session-store.js';
import { Session, isWellFormedSessionId, newSessionId } from '../../src/session/session.js';
import { sleep } from '../helpers/wait.js';

function session(joinKey: string): Session {
  return new Session(newSessionId(), { channel: 'ch', kind: 'hls', joinKey, clientIp: '1.1.1.1', userAgent: 'ua', host: 'h', path: '/play/ch/index.m3u8', query: '', token: undefined, referer: '' }, Date.now());
}

describe('session IDs', () => {
  it('are 128 random bits in 22 URL-safe characters, never repeating', () => {
    const ids = new Set(Array.from({ length: 10_000 }, newSessionId));
    expect(ids.size).toBe(10_000);
    for (const id of [...ids].slice(0, 100)) expect(isWellFormedSessionId(id)).toBe(true);
    expect(isWellFormedSessionId('a'.repeat(21))).toBe(false);
    expect(isWellFormedSessionId(`${'a'.repeat(21)}=`)).toBe(false);
  });
});

describe('MemorySessionStore', () => {
  it('finds a session by ID and by join key', () => {
    const store = new MemorySessionStore(10);
    const s = session('k1');
    store.put(s, 60_000);
    expect(store.get(s.id)).toBe(s);
    expect(store.getByJoinKey('k1')).toBe(s);
    store.delete(s);
    expect(store.get(s.id)).toBeUndefined();
    expect(store.getByJoinKey('k1')).toBeUndefined();
  });

  it('is bounded: least recently used sessions are evicted and counted', () => {
    const store = new MemorySessionStore(100);
    const all = Array.from({ length: 250 }, (_, i) => session(`k${i}`));
    for (const s of all) store.put(s, 60_000);
    expect(store.size).toBe(100);
    expect(store.evictions).toBe(150);
    expect(store.get(all[0]!.id)).toBeUndefined();
    expect(store.getByJoinKey('k0')).toBeUndefined();
    expect(store.get(all[249]!.id)).toBe(all[249]);
  });

  it('forgets a session when its TTL passes, unless it is put again', async () => {
    const store = new MemorySessionStore(10);
    const a = session('a');
    const b = session('b');
    store.put(a, 50);
    store.put(b, 50);
    await sleep(30);
    store.put(b, 500);
    await sleep(40);
    expect(store.get(a.id)).toBeUndefined();
    expect(store.getByJoinKey('a')).toBeUndefined();
    expect(store.get(b.id)).toBe(b);
  });

  it('a join key taken over by a newer session points at the newer one only', () => {
    const store = new MemorySessionStore(10);
    const old = session('same');
    const fresh = session('same');
    store.put(old, 60_000);
    store.put(fresh, 60_000);
    expect(store.getByJoinKey('same')).toBe(fresh);
    store.delete(old);
    expect(store.getByJoinKey('same')).toBe(fresh);
  });
});
