// PrimaryState: what the workers of one host share through their primary (--workers N): per-user
// limits over every worker, sessions held by several workers at once (round-robin spreads an HLS
// player over all of them), tombstones, a worker's exit, and the session list's keyset paging.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PrimaryState, type Slot } from '../../src/cluster/primary-state.js';
import type { PublishedSession } from '../../src/cluster/protocol.js';
import type { AdmitRequest } from '../../src/session/fleet.js';
import { newSessionId } from '../../src/session/session.js';
import type { SessionView } from '../../src/session/table.js';

function stateAt(clock: { t: number }, resumableUntil?: (expiresAt: number, now: number) => number): PrimaryState {
  return new PrimaryState({ now: () => clock.t, edgeName: (slot) => `host:8080/w${slot}`, resumableUntil });
}

function admit(userKey: string, sessionId: string, over: Partial<AdmitRequest> = {}): AdmitRequest {
  return { userKey, sessionId, max: 0, unique: false, policy: 'refuse', openedAt: 1000, ttlMs: 30_000, ...over };
}

function view(id: string, o: { channel?: string; name?: string | null; kind?: 'hls' | 'mpegts'; openedAt?: number } = {}): SessionView {
  const openedAt = new Date(o.openedAt ?? 1000).toISOString();
  return {
    id,
    channel: o.channel ?? 'ch1',
    kind: o.kind ?? 'hls',
    name: o.name ?? null,
    userId: null,
    ip: '10.0.0.1',
    userAgent: 'ua',
    openedAt,
    lastSeenAt: openedAt,
    requests: 0,
    bytes: 0,
    state: 'open',
    decision: { result: 'allow', reason: 'backend_200', source: 'backend', decidedAt: openedAt, expiresAt: null },
    why: { decidedBy: 'backend', rule: null, backend: 'http', status: 200, reason: null, defaultAction: null, failure: null, ended: null, short: 'backend http 200', text: 'allowed' },
    nextCheckAt: null,
  };
}

function published(id: string, o: { openedAt?: number; expiresAt?: number; joinKey?: number; marker?: string; requests?: number; bytes?: number; lastSeenAt?: number; channel?: string; name?: string; kind?: 'hls' | 'mpegts' } = {}): PublishedSession {
  const openedAt = o.openedAt ?? 1000;
  return { id, joinKey: o.joinKey ?? 42, marker: o.marker, openedAt, expiresAt: o.expiresAt ?? openedAt + 60_000, lastSeenAt: o.lastSeenAt ?? openedAt, requests: o.requests ?? 0, bytes: o.bytes ?? 0, view: view(id, { ...o, openedAt }) };
}

describe('per-user limits across workers', () => {
  it('refuse: the cap counts sessions on every worker; a session open on two workers counts once', () => {
    const s = stateAt({ t: 0 });
    const [a, b, c] = [newSessionId(), newSessionId(), newSessionId()];
    expect(s.admit(1, admit('u', a, { max: 2 }))).toEqual({ admitted: true, end: [] });
    expect(s.admit(2, admit('u', b, { max: 2 }))).toEqual({ admitted: true, end: [] });
    // a's player reaches worker 2 (round-robin): the same session, admitted again, not counted twice.
    expect(s.admit(2, admit('u', a, { max: 2 }))).toEqual({ admitted: true, end: [] });
    expect(s.countOfUser('u')).toBe(2);
    expect(s.admit(1, admit('u', c, { max: 2 }))).toEqual({ admitted: false });
    // Released by worker 1 only: still held by worker 2, still counted.
    s.release(1, 'u', a);
    expect(s.admit(1, admit('u', c, { max: 2 }))).toEqual({ admitted: false });
    s.release(2, 'u', a);
    expect(s.countOfUser('u')).toBe(1);
    expect(s.admit(1, admit('u', c, { max: 2 }))).toEqual({ admitted: true, end: [] });
  });

  it('close-oldest ends the oldest by openedAt, wherever it is; unique ends all the others', () => {
    const s = stateAt({ t: 0 });
    const ids = [newSessionId(), newSessionId(), newSessionId()];
    s.admit(2, admit('u', ids[0]!, { openedAt: 300, max: 2, policy: 'close-oldest' }));
    s.admit(1, admit('u', ids[1]!, { openedAt: 100, max: 2, policy: 'close-oldest' }));
    expect(s.admit(1, admit('u', ids[2]!, { openedAt: 400, max: 2, policy: 'close-oldest' }))).toEqual({ admitted: true, end: [ids[1]] });
    expect(s.countOfUser('u')).toBe(2);
    const uniq = newSessionId();
    const answer = s.admit(2, admit('u', uniq, { unique: true }));
    expect(answer.admitted && [...answer.end].sort()).toEqual([ids[0], ids[2]].sort());
    expect(s.countOfUser('u')).toBe(1);
    // A release of a session ended that way changes nothing.
    s.release(1, 'u', ids[2]!);
    expect(s.countOfUser('u')).toBe(1);
  });

  it('a session ended fleet-wide is refused admission until its tombstone expires', () => {
    const clock = { t: 0 };
    const s = stateAt(clock);
    const id = newSessionId();
    expect(s.end({ sessionId: id, reason: 'kicked', untilMs: 5000 })).toBe(true);
    expect(s.end({ sessionId: id, reason: 'kicked', untilMs: 4000 })).toBe(false);
    expect(s.admit(1, admit('u', id))).toEqual({ admitted: false });
    clock.t = 5000;
    expect(s.admit(1, admit('u', id))).toEqual({ admitted: true, end: [] });
  });
});

describe('sessions published by the workers', () => {
  it('one listing per session over its holders: the latest view, requests and bytes summed; found by join key and ID', () => {
    const s = stateAt({ t: 0 });
    const id = newSessionId();
    s.publish(1, published(id, { joinKey: 7, marker: 'm1', requests: 3, bytes: 300, lastSeenAt: 2000 }));
    s.publish(2, published(id, { joinKey: 7, marker: 'm2', requests: 4, bytes: 400, lastSeenAt: 1500 }));
    s.touch(2, { id, lastSeenAt: 2500, requests: 5, bytes: 500 });
    const v = s.get(id)!;
    expect(v).toMatchObject({ id, requests: 8, bytes: 800, lastSeenAt: new Date(2500).toISOString(), edge: 'host:8080/w2' });
    expect(s.findMarker({ joinKey: 7 })).toMatchObject({ marker: 'm2' });
    expect(s.findMarker({ sessionId: id })).toMatchObject({ marker: 'm2' });
    expect(s.list({}, undefined, 10)).toMatchObject({ total: 1, complete: true });
    s.unpublish(2, id);
    expect(s.get(id)).toMatchObject({ requests: 3, edge: 'host:8080/w1' });
    s.unpublish(1, id);
    expect(s.get(id)).toBeUndefined();
    expect(s.findMarker({ joinKey: 7 })).toBeUndefined();
    expect(s.size).toBe(0);
  });

  it('a worker that exits lets go of all it held; sessions also held elsewhere stay', () => {
    const s = stateAt({ t: 0 });
    const [only1, both] = [newSessionId(), newSessionId()];
    s.publish(1, published(only1, { joinKey: 1 }));
    s.publish(1, published(both, { joinKey: 2 }));
    s.publish(2, published(both, { joinKey: 2 }));
    s.admit(1, admit('u', only1, { max: 2 }));
    s.admit(1, admit('u', both, { max: 2 }));
    s.admit(2, admit('u', both, { max: 2 }));
    s.dropWorker(1);
    expect(s.get(only1)).toBeUndefined();
    expect(s.get(both)).toMatchObject({ edge: 'host:8080/w2' });
    expect(s.countOfUser('u')).toBe(1);
    expect(s.findMarker({ joinKey: 1 })).toBeUndefined();
  });

  it('an end removes the session from the list and the counts; a late publish of it is ignored; liveEnds lists what a new worker must refuse', () => {
    const clock = { t: 0 };
    const s = stateAt(clock);
    const id = newSessionId();
    s.publish(1, published(id, { marker: 'm' }));
    s.admit(1, admit('u', id));
    s.end({ sessionId: id, reason: 'kicked', untilMs: 10_000 });
    expect(s.get(id)).toBeUndefined();
    expect(s.countOfUser('u')).toBe(0);
    s.publish(2, published(id, { marker: 'm' }));
    expect(s.get(id)).toBeUndefined();
    // Ended: what a worker learns is the end (its marker refused: 403 EDGE_ERR_SESSION_ENDED).
    expect(s.findMarker({ sessionId: id })).toEqual({ ended: { sessionId: id, reason: 'kicked', untilMs: 10_000 } });
    expect(s.liveEnds()).toEqual([{ sessionId: id, reason: 'kicked', untilMs: 10_000 }]);
    clock.t = 10_000;
    s.sweep();
    expect(s.liveEnds()).toEqual([]);
    expect(s.isEnded(id)).toBe(false);
  });

  it('a session no worker holds open (closed, or its worker died) stays findable by join key while it is resumable, not listed; an end or time ends that', () => {
    const clock = { t: 1000 };
    // As primary.ts configures it: the decision's expiry plus a 30 s grace.
    const s = stateAt(clock, (expiresAt) => expiresAt + 30_000);
    const [closed, crashed, kicked] = [newSessionId(), newSessionId(), newSessionId()];
    s.publish(1, published(closed, { joinKey: 1, marker: 'm-closed', expiresAt: 61_000 }));
    s.publish(2, published(crashed, { joinKey: 2, marker: 'm-crashed', expiresAt: 61_000 }));
    s.publish(1, published(kicked, { joinKey: 3, marker: 'm-kicked', expiresAt: 61_000 }));
    s.unpublish(1, closed);
    s.dropWorker(2);
    s.unpublish(1, kicked);
    s.end({ sessionId: kicked, reason: 'kicked', untilMs: 100_000 });
    expect(s.size).toBe(0);
    expect(s.findMarker({ joinKey: 1 })).toMatchObject({ marker: 'm-closed', session: { id: closed, edge: 'host:8080/w1' } });
    expect(s.findMarker({ joinKey: 2 })).toMatchObject({ marker: 'm-crashed', session: { id: crashed, edge: 'host:8080/w2' } });
    expect(s.findMarker({ joinKey: 3 })).toEqual({ ended: { sessionId: kicked, reason: 'kicked', untilMs: 100_000 } });
    // By ID only while open: a kick needs a holder.
    expect(s.findMarker({ sessionId: closed })).toBeUndefined();
    // Open again (a reconnect adopted it): live, no longer a closed entry.
    s.publish(2, published(closed, { joinKey: 1, marker: 'm-closed', expiresAt: 61_000 }));
    expect(s.findMarker({ sessionId: closed })).toMatchObject({ marker: 'm-closed' });
    clock.t = 91_000;
    expect(s.findMarker({ joinKey: 2 })).toBeUndefined();
    s.sweep();
    expect(s.findMarker({ joinKey: 1 })).toMatchObject({ marker: 'm-closed' });
  });

  it('without resumableUntil a closed session is forgotten at once', () => {
    const s = stateAt({ t: 0 });
    const id = newSessionId();
    s.publish(1, published(id, { joinKey: 9, marker: 'm' }));
    s.unpublish(1, id);
    expect(s.findMarker({ joinKey: 9 })).toBeUndefined();
  });

  it('tombstones are bounded: the oldest go first', () => {
    const s = new PrimaryState({ now: () => 0, edgeName: String, maxTombstones: 3 });
    const ids = Array.from({ length: 5 }, () => newSessionId());
    for (const id of ids) s.end({ sessionId: id, reason: 'kicked', untilMs: 1000 });
    expect(s.liveEnds().map((e) => e.sessionId)).toEqual(ids.slice(2));
  });

  it('filters as the session table does: channel, name or user, lower-case text; counts by kind and channel', () => {
    const s = stateAt({ t: 0 });
    s.publish(1, published(newSessionId(), { channel: 'News', name: 'Alice', openedAt: 1 }));
    s.publish(1, published(newSessionId(), { channel: 'sport', name: 'bob', kind: 'mpegts', openedAt: 2 }));
    s.publish(2, published(newSessionId(), { channel: 'sport', name: 'carol', openedAt: 3 }));
    expect(s.list({ channel: 'sport' }, undefined, 10).total).toBe(2);
    expect(s.list({ name: 'Alice' }, undefined, 10).total).toBe(1);
    expect(s.list({ text: 'news' }, undefined, 10).total).toBe(1);
    expect(s.list({ text: 'o' }, undefined, 10).sessions.map((v) => v.name)).toEqual(['bob', 'carol']);
    expect(s.countByKind()).toEqual({ hls: 2, mpegts: 1 });
    expect(s.countByChannel()).toEqual({ News: { hls: 1, mpegts: 0 }, sport: { hls: 1, mpegts: 1 } });
  });
});

describe('paging', () => {
  it('keyset pages: every session open throughout a walk is seen once, oldest first, whatever the publish order and churn', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ openedAt: fc.integer({ min: 0, max: 50 }), worker: fc.integer({ min: 1, max: 3 }), leaves: fc.boolean() }), { minLength: 0, maxLength: 60 }),
        fc.integer({ min: 1, max: 7 }),
        (items, limit) => {
          const s = stateAt({ t: 0 });
          const ids = items.map(() => newSessionId());
          items.forEach((it, i) => s.publish(it.worker as Slot, published(ids[i]!, { openedAt: it.openedAt, joinKey: i })));
          items.forEach((it, i) => it.leaves && s.unpublish(it.worker as Slot, ids[i]!));
          const expected = items
            .map((it, i) => ({ ...it, id: ids[i]!, i }))
            .filter((it) => !it.leaves)
            .sort((a, b) => a.openedAt - b.openedAt || a.i - b.i)
            .map((it) => it.id);
          const seen: string[] = [];
          let after: ReturnType<PrimaryState['list']>['next'];
          for (let pages = 0; pages < 100; pages++) {
            const page = s.list({}, after, limit);
            expect(page.total).toBe(expected.length);
            seen.push(...page.sessions.map((v) => v.id));
            if (page.next === undefined) break;
            after = page.next;
          }
          expect(seen).toEqual(expected);
        },
      ),
      { numRuns: 200 },
    );
  });
});
