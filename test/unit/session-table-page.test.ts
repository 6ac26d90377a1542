// SessionTable.page: keyset paging over the table's (openedAt, first-entry) order, against a model
// that sorts the open sessions on every call. Sessions enter out of order (a resume after idling,
// a middleware that decided a younger session first), leave, come back, and the index compacts.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Session, newSessionId } from '../../src/session/session.js';
import { SessionTable, type SessionFilter } from '../../src/session/table.js';

function session(openedAt: number, channel: string, name: string): Session {
  const s = new Session(newSessionId(), { channel, kind: 'hls', clientIp: '10.0.0.1', userAgent: 'ua', host: 'edge', path: '/', query: '', token: undefined, referer: '' }, openedAt);
  s.decision = { allow: true, reason: 'ok', source: 'backend', decidedAt: openedAt, sessionName: name };
  return s;
}

/** Every page of `filter` with page size `limit`, concatenated; also checks each page's total. */
function walk(table: SessionTable, filter: SessionFilter, limit: number): Session[] {
  const out: Session[] = [];
  let after = undefined as ReturnType<SessionTable['page']>['next'];
  for (let pages = 0; pages < 10_000; pages++) {
    const page = table.page(filter, after, limit);
    expect(page.total).toBe(table.list(filter).length);
    expect(page.sessions.length).toBeLessThanOrEqual(limit);
    out.push(...page.sessions);
    if (page.next === undefined) return out;
    expect(page.sessions.length).toBe(limit);
    after = page.next;
  }
  throw new Error('walk did not end');
}

type Op = { kind: 'open'; dt: number; channel: number; name: number } | { kind: 'close'; pick: number } | { kind: 'resume'; pick: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  // Mostly newer than the last one; sometimes older (decided after a younger session), sometimes the same millisecond.
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('open' as const), dt: fc.integer({ min: -5, max: 3 }), channel: fc.integer({ min: 0, max: 2 }), name: fc.integer({ min: 0, max: 2 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('close' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('resume' as const), pick: fc.nat() }) },
);

describe('SessionTable.page', () => {
  it('walks every open session exactly once, in (openedAt, entry) order, for any page size and filter, whatever entered or left before', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 400 }), fc.integer({ min: 1, max: 7 }), (ops, limit) => {
        const table = new SessionTable();
        const firstEntry = new Map<Session, number>();
        const closed: Session[] = [];
        let clock = 1_000_000;
        const enter = (s: Session): void => {
          if (!firstEntry.has(s)) firstEntry.set(s, firstEntry.size);
          table.add(s, undefined);
        };
        for (const o of ops) {
          if (o.kind === 'open') {
            clock += o.dt;
            enter(session(clock, `ch${o.channel}`, `User${o.name}`));
          } else if (o.kind === 'close') {
            const open = [...table.values()];
            if (open.length === 0) continue;
            const s = open[o.pick % open.length]!;
            table.remove(s);
            closed.push(s);
          } else if (closed.length > 0) {
            enter(closed.splice(o.pick % closed.length, 1)[0]!);
          }
        }
        const model = [...table.values()].sort((a, b) => a.openedAt - b.openedAt || firstEntry.get(a)! - firstEntry.get(b)!);
        for (const filter of [{}, { channel: 'ch1' }, { name: 'User2' }, { text: 'user1' }, { channel: 'ch0', text: 'ch' }] as SessionFilter[]) {
          const want = model.filter((s) => table.list(filter).includes(s));
          expect(walk(table, filter, limit)).toEqual(want);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('a page resumes after its cursor even when the session at the cursor has closed since', () => {
    const table = new SessionTable();
    const all = Array.from({ length: 10 }, (_, i) => session(1000 + i, 'ch', 'u'));
    for (const s of all) table.add(s, undefined);
    const first = table.page({}, undefined, 4);
    expect(first.sessions).toEqual(all.slice(0, 4));
    table.remove(all[3]!);
    table.remove(all[4]!);
    const second = table.page({}, first.next, 4);
    expect(second.sessions).toEqual(all.slice(5, 9));
    expect(second.total).toBe(8);
  });

  it('closed sessions do not pile up in the order index (compaction)', () => {
    const table = new SessionTable();
    for (let i = 0; i < 5000; i++) {
      const s = session(i, 'ch', 'u');
      table.add(s, undefined);
      if (i % 10 !== 0) table.remove(s);
    }
    expect(table.size).toBe(500);
    // Not public: the index is what a leak would grow. At most twice the open sessions plus slack.
    expect((table as unknown as { ordered: unknown[] }).ordered.length).toBeLessThanOrEqual(2 * 500 + 64);
    expect(walk(table, {}, 100)).toHaveLength(500);
  });
});
