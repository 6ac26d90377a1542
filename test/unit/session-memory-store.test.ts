// The in-memory session store (src/session/memory.ts) with a controllable clock: tiers and their
// bounds, expiry without reads, the sweep's slices; plus the compact pieces a stored session is
// made of (join key, interned strings, the user index of the table).
import { afterEach, describe, expect, it } from 'vitest';
import { Interner, flatCopy } from '../../src/session/intern.js';
import { MemorySessionStore, SWEEP_SLICE, type MemoryStoreOptions } from '../../src/session/memory.js';
import { Session, isSameJoin, isWellFormedSessionId, joinKeyOf, newSessionId, type SessionOrigin } from '../../src/session/session.js';
import { SessionTable } from '../../src/session/table.js';
import { collectGarbage } from '../helpers/resources.js';
import { waitFor } from '../helpers/wait.js';

const ORIGIN: SessionOrigin = { channel: 'ch', kind: 'hls', clientIp: '1.1.1.1', userAgent: 'ua', host: 'h', path: '/play/ch/index.m3u8', query: 'token=t', token: 't', referer: '' };

function session(token = newSessionId(), granted = false): Session {
  const s = new Session(newSessionId(), { ...ORIGIN, query: `token=${token}`, token }, 0);
  s.granted = granted;
  return s;
}

const stores: MemorySessionStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

/** A store on a clock the test moves; its own timer is kept out of the way (the test calls sweep()). */
function setup(options: Partial<MemoryStoreOptions> = {}) {
  let now = 1_000_000;
  const evicted: Session[] = [];
  const store = new MemorySessionStore({ maxGranted: 100, maxUngranted: 100, onEvict: (s) => evicted.push(s), now: () => now, sweepIntervalMs: 100, ...options });
  stores.push(store);
  const sweepAll = (): number => {
    let slices = 1;
    while (store.sweep()) slices++;
    return slices;
  };
  return { store, evicted, sweepAll, advance: (ms: number) => (now += ms) };
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
  it('finds a session by ID and by join key until it is deleted', () => {
    const { store } = setup();
    const s = session('k1');
    store.put(s, 60_000);
    expect(store.get(s.id)).toBe(s);
    expect(store.getByJoinKey(s.joinKey)).toBe(s);
    store.delete(s);
    expect(store.get(s.id)).toBeUndefined();
    expect(store.getByJoinKey(s.joinKey)).toBeUndefined();
    expect(store.size).toBe(0);
  });

  it('a join key taken over by a newer session points at the newer one only', () => {
    const { store } = setup();
    const old = session('same');
    const fresh = session('same');
    expect(fresh.joinKey).toBe(old.joinKey);
    store.put(old, 60_000);
    store.put(fresh, 60_000);
    expect(store.getByJoinKey(old.joinKey)).toBe(fresh);
    store.delete(old);
    expect(store.getByJoinKey(old.joinKey)).toBe(fresh);
  });

  it('the ungranted tier is bounded on its own: oldest evicted first, counted, reported', () => {
    const { store, evicted } = setup({ maxGranted: 100, maxUngranted: 10 });
    const all = Array.from({ length: 25 }, () => session());
    for (const s of all) store.put(s, 60_000);
    expect(store.stats('ungranted')).toEqual({ entries: 10, evictions: 15 });
    expect(evicted).toEqual(all.slice(0, 15));
    expect(store.get(all[0]!.id)).toBeUndefined();
    expect(store.get(all[24]!.id)).toBe(all[24]);
  });

  it('never-granted sessions do not push out granted ones, however many come', () => {
    const { store } = setup({ maxGranted: 5, maxUngranted: 3 });
    const viewers = Array.from({ length: 5 }, () => session(undefined, true));
    for (const s of viewers) store.put(s, 60_000);
    for (let i = 0; i < 1000; i++) store.put(session(), 60_000);
    for (const s of viewers) expect(store.get(s.id)).toBe(s);
    expect(store.stats('granted')).toEqual({ entries: 5, evictions: 0 });
    expect(store.stats('ungranted')).toEqual({ entries: 3, evictions: 997 });
    expect(store.size).toBe(8);
    expect(store.evictions).toBe(997);
  });

  it('a session moves to the granted tier when it is first allowed', () => {
    const { store } = setup({ maxGranted: 2, maxUngranted: 2 });
    const s = session();
    store.put(s, 1000);
    expect(store.stats('ungranted').entries).toBe(1);
    s.granted = true;
    store.put(s, 60_000);
    expect(store.stats('ungranted').entries).toBe(0);
    expect(store.stats('granted').entries).toBe(1);
    // A flood of new sessions now passes it by.
    for (let i = 0; i < 10; i++) store.put(session(), 1000);
    expect(store.get(s.id)).toBe(s);
  });

  it('a full granted tier evicts the oldest put, but gives open sessions a second chance', () => {
    const { store, evicted } = setup({ maxGranted: 3 });
    const [playing, idle1, idle2, next] = Array.from({ length: 4 }, () => session(undefined, true));
    playing!.active = true;
    for (const s of [playing!, idle1!, idle2!, next!]) store.put(s, 60_000);
    expect(evicted).toEqual([idle1]);
    expect(store.get(playing!.id)).toBe(playing);
    // When every granted session is open, the oldest goes anyway: the tier stays bounded.
    for (const s of [idle2!, next!]) s.active = true;
    store.put(session(undefined, true), 60_000);
    expect(store.stats('granted').entries).toBe(3);
  });

  it('an entry expires at its TTL, read or not: the sweep removes it', () => {
    const { store, advance, sweepAll } = setup();
    const read = session();
    const unread = session();
    store.put(read, 500);
    store.put(unread, 500);
    advance(499);
    expect(store.get(read.id)).toBe(read);
    advance(1);
    expect(store.get(read.id)).toBeUndefined();
    expect(store.size).toBe(1); // the unread one waits for the sweep …
    advance(100);
    sweepAll();
    expect(store.size).toBe(0); // … which takes it without anyone asking for it
    expect(store.getByJoinKey(unread.joinKey)).toBeUndefined();
  });

  it('a session put again lives on from the new TTL; the old expiry does not take it', () => {
    const { store, advance, sweepAll } = setup();
    const s = session();
    store.put(s, 200);
    advance(150);
    store.put(s, 1000);
    advance(500);
    sweepAll();
    expect(store.get(s.id)).toBe(s);
    advance(600);
    sweepAll();
    expect(store.size).toBe(0);
  });

  it('a session that leaves the store before its TTL is not kept alive by the expiry index', async () => {
    const { store } = setup({ maxGranted: 100, onEvict: () => undefined });
    const refs: WeakRef<Session>[] = [];
    // Evicted (10,000 into a tier of 100), deleted, or put again with a shorter TTL: all with a 10 h TTL first.
    for (let i = 0; i < 10_000; i++) {
      const s = session(undefined, true);
      store.put(s, 36_000_000);
      if (i % 100 === 0) refs.push(new WeakRef(s));
    }
    ((deleted: Session) => {
      store.put(deleted, 36_000_000);
      store.delete(deleted);
      refs.push(new WeakRef(deleted));
    })(session(undefined, true));
    expect(store.stats('granted')).toEqual({ entries: 99, evictions: 9_901 });
    await new Promise((r) => setImmediate(r)); // WeakRefs made in this job hold until it ends
    collectGarbage();
    // Of 101 samples, only those the store still holds are still in memory.
    const alive = refs.map((r) => r.deref()).filter((s) => s !== undefined);
    expect(alive.every((s) => store.get(s.id) === s)).toBe(true);
    expect(alive.length).toBeLessThanOrEqual(1);
  });

  it('the sweep works in slices (at most SWEEP_SLICE entries, SWEEP_SLICE_MS), so a mass expiry never holds the event loop long', () => {
    const n = SWEEP_SLICE * 3 + 10;
    const { store, advance } = setup({ maxGranted: n, maxUngranted: n });
    for (let i = 0; i < n; i++) store.put(session(undefined, i % 2 === 0), 1000);
    advance(1200);
    let slices = 0;
    let before = store.size;
    while (store.sweep()) {
      slices++;
      expect(before - store.size).toBeLessThanOrEqual(SWEEP_SLICE);
      before = store.size;
    }
    expect(slices).toBeGreaterThanOrEqual(3);
    expect(store.size).toBe(0);
  });

  it('sweeps by itself on its timer (no reads at all)', async () => {
    const store = new MemorySessionStore({ maxGranted: 1000, maxUngranted: 1000, sweepIntervalMs: 20 });
    stores.push(store);
    for (let i = 0; i < 500; i++) store.put(session(undefined, i % 2 === 0), 30);
    expect(store.size).toBe(500);
    await waitFor(() => store.size === 0, { timeoutMs: 2000, message: 'store emptied by its sweep' });
  });

  it('close() forgets everything, stops the timer and is idempotent', async () => {
    const { store } = setup();
    store.put(session(), 1000);
    await store.close();
    await store.close();
    expect(store.size).toBe(0);
  });
});

describe('the join key', () => {
  it('is the same for the same channel, token, IP and User-Agent, and differs when any of them does', () => {
    const k = joinKeyOf(ORIGIN);
    expect(joinKeyOf({ ...ORIGIN, path: '/other', host: 'x', referer: 'r', query: 'token=t&lang=en' })).toBe(k);
    const others = [{ channel: 'ch2' }, { token: 't2', query: 'token=t2' }, { clientIp: '1.1.1.2' }, { userAgent: 'ub' }, { token: undefined, query: 't' }];
    for (const o of others) expect(joinKeyOf({ ...ORIGIN, ...o }), JSON.stringify(o)).not.toBe(k);
    expect(Number.isSafeInteger(k)).toBe(true);
  });

  it('a match is confirmed field by field: a hash collision cannot join another player', () => {
    const s = new Session(newSessionId(), ORIGIN, 0);
    expect(isSameJoin(s, { ...ORIGIN, query: 'token=t&x=1' })).toBe(true);
    expect(isSameJoin(s, { ...ORIGIN, userAgent: 'other' })).toBe(false);
    expect(isSameJoin(s, { ...ORIGIN, token: undefined })).toBe(false);
    const noToken = new Session(newSessionId(), { ...ORIGIN, query: 'a=1', token: undefined }, 0);
    expect(isSameJoin(noToken, { ...ORIGIN, query: 'a=1', token: undefined })).toBe(true);
    expect(isSameJoin(noToken, { ...ORIGIN, query: 'a=2', token: undefined })).toBe(false);
  });
});

describe('compact strings', () => {
  it('the interner returns one shared copy per value and stays bounded', () => {
    const strings = new Interner(4);
    const ua = 'Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0)';
    const a = strings.intern(ua.slice(0));
    const b = strings.intern(`${ua.slice(0, 10)}${ua.slice(10)}`);
    expect(a).toBe(ua);
    expect(b).toBe(a);
    for (let i = 0; i < 100; i++) strings.intern(`agent-${i}-${'x'.repeat(20)}`);
    expect(strings.size).toBeLessThanOrEqual(8);
    expect(strings.intern('')).toBe('');
  });

  it('flatCopy keeps the content (latin1 and wider)', () => {
    for (const s of ['', 'short', 'token=abcdef0123456789abcdef', 'ünïcödé header value é', 'emoji 📺 in a user agent string']) expect(flatCopy(s)).toBe(s);
  });
});

describe('the user index of the session table', () => {
  it('keeps a user’s open sessions oldest first, in O(1) per add, without sorting', () => {
    const table = new SessionTable();
    const s = Array.from({ length: 5 }, () => session(undefined, true));
    for (const x of s) table.add(x, 'alice');
    expect(table.countOfUser('alice')).toBe(5);
    expect([...table.ofUser('alice')]).toEqual(s);
    table.remove(s[1]!);
    table.add(s[1]!, 'alice'); // resumed: now the newest
    expect([...table.ofUser('alice')]).toEqual([s[0], s[2], s[3], s[4], s[1]]);
    expect(table.countOfUser('bob')).toBe(0);
    expect([...table.ofUser('bob')]).toEqual([]);
  });
});
