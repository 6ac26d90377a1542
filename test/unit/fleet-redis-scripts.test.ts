// The Lua scripts of the Redis fleet store (src/session/redis-scripts.ts), each against a real
// private redis-server (test/helpers/redis.ts): the per-user limit's semantics (refuse,
// close-oldest, X-Unique, soft keys, a crashed edge's entries released by expiry), and the
// publish / unpublish / end / find / sweep steps the edges rely on.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { defineFleetCommands, type FleetClient } from '../../src/session/redis-scripts.js';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';
import { TOOLS, requireTool } from '../helpers/tools.js';
import { sleep } from '../helpers/wait.js';

const redisServer = requireTool(TOOLS.redisServer);

describe.skipIf(redisServer.skip)(`fleet store scripts on a real Redis${redisServer.note}`, () => {
  let server: TestRedis;
  let raw: Redis;
  let client: FleetClient;
  /** Each test its own prefix: nothing is flushed, keys of one test never meet another's. */
  let p: string;

  beforeAll(async () => {
    void redisServer.path; // under CI=true a missing redis-server fails here, naming it
    server = await startTestRedis();
    raw = new Redis(server.url, { protocol: 2, lazyConnect: true });
    await raw.connect();
    client = defineFleetCommands(raw);
  });
  afterAll(async () => {
    await raw?.quit();
    await server?.close();
  });
  beforeEach(() => {
    p = `t${randomBytes(4).toString('hex')}:`;
  });

  type Policy = 'refuse' | 'close-oldest';
  const admit = (user: string, id: string, o: { max?: number; unique?: boolean; policy?: Policy; openedAt?: number; ttlMs?: number } = {}): Promise<unknown> =>
    client.edgeAdmit(`${p}u:${user}`, `${p}uo:${user}`, id, o.max ?? 0, o.unique === true ? 1 : 0, o.policy ?? 'refuse', o.openedAt ?? Date.now(), o.ttlMs ?? 60_000);
  const members = (user: string): Promise<string[]> => raw.zrange(`${p}uo:${user}`, 0, '-1');

  describe('per-user limit (admit)', () => {
    it('refuse: the third of max 2 is refused and not counted; one released makes room', async () => {
      expect(await admit('u', 'a', { max: 2 })).toEqual([1]);
      expect(await admit('u', 'b', { max: 2 })).toEqual([1]);
      expect(await admit('u', 'c', { max: 2 })).toEqual([0]);
      expect(await members('u')).toEqual(['a', 'b']);
      await raw.zrem(`${p}u:u`, 'a');
      await raw.zrem(`${p}uo:u`, 'a');
      expect(await admit('u', 'c', { max: 2 })).toEqual([1]);
    });

    it('close-oldest: the new one is counted and the oldest by openedAt returned to end (not by arrival)', async () => {
      expect(await admit('u', 'b', { max: 2, policy: 'close-oldest', openedAt: 2000 })).toEqual([1]);
      expect(await admit('u', 'a', { max: 2, policy: 'close-oldest', openedAt: 1000 })).toEqual([1]);
      expect(await admit('u', 'c', { max: 2, policy: 'close-oldest', openedAt: 3000 })).toEqual([1, 'a']);
      expect(await members('u')).toEqual(['b', 'c']);
    });

    it('close-oldest under a lowered limit ends as many as it takes', async () => {
      for (const [i, id] of ['a', 'b', 'c', 'd'].entries()) await admit('u', id, { max: 5, openedAt: 1000 + i });
      expect(await admit('u', 'e', { max: 2, policy: 'close-oldest', openedAt: 2000 })).toEqual([1, 'a', 'b', 'c']);
      expect(await members('u')).toEqual(['d', 'e']);
    });

    it('X-Unique: every other session of the user is returned to end; the new one alone counts', async () => {
      await admit('u', 'a', { openedAt: 1 });
      await admit('u', 'b', { openedAt: 2 });
      expect(await admit('u', 'c', { unique: true, openedAt: 3 })).toEqual([1, 'a', 'b']);
      expect(await members('u')).toEqual(['c']);
    });

    it('an ID already counted (a retry, a re-publish) is refreshed, never counted twice or ended by itself', async () => {
      await admit('u', 'a', { max: 1 });
      expect(await admit('u', 'a', { max: 1 })).toEqual([1]);
      expect(await admit('u', 'a', { max: 1, unique: true })).toEqual([1]);
      expect(await raw.zcard(`${p}u:u`)).toBe(1);
    });

    it('soft keys (user + "\\n" + channel) count apart; the key holds any bytes', async () => {
      expect(await admit('u\nch1', 'a', { max: 1 })).toEqual([1]);
      expect(await admit('u\nch2', 'b', { max: 1 })).toEqual([1]);
      expect(await admit('u\nch2', 'c', { max: 1 })).toEqual([0]);
      expect(await admit('ü ser\n€', 'd', { max: 1 })).toEqual([1]);
      expect(await members('ü ser\n€')).toEqual(['d']);
    });

    it('a crashed edge\'s entries stop counting after their TTL (not refreshed), and the keys expire', async () => {
      expect(await admit('u', 'a', { max: 2, ttlMs: 300 })).toEqual([1]);
      expect(await admit('u', 'b', { max: 2, ttlMs: 300 })).toEqual([1]);
      expect(await admit('u', 'c', { max: 2, ttlMs: 300 })).toEqual([0]);
      // The edge that held a and b is gone: nobody refreshes them.
      await sleep(400);
      expect(await admit('u', 'c', { max: 2, ttlMs: 60_000 })).toEqual([1]);
      expect(await members('u')).toEqual(['c']);
      // A key whose members all expired disappears by itself.
      await admit('gone', 'x', { ttlMs: 200 });
      await sleep(350);
      expect(await raw.exists(`${p}u:gone`, `${p}uo:gone`)).toBe(0);
    });

    it('a key\'s TTL is never shortened by a shorter-lived member', async () => {
      await admit('u', 'a', { ttlMs: 60_000 });
      await admit('u', 'b', { ttlMs: 1000 });
      expect(await raw.pttl(`${p}u:u`)).toBeGreaterThan(50_000);
    });

    it('two edges admitting at once: exactly max are admitted (the script runs alone)', async () => {
      const other = new Redis(server.url, { protocol: 2 });
      try {
        const second = defineFleetCommands(other);
        const answers = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            (i % 2 === 0 ? client : second).edgeAdmit(`${p}u:u`, `${p}uo:u`, `s${i}`, 3, 0, 'refuse', i, 60_000),
          ),
        );
        expect(answers.filter((a) => (a as number[])[0] === 1)).toHaveLength(3);
        expect(await raw.zcard(`${p}u:u`)).toBe(3);
      } finally {
        await other.quit();
      }
    });
  });

  describe('publish, unpublish, end, find, sweep', () => {
    const id = 'AAAAAAAAAAAAAAAAAAAAAA';
    const keysOf = (sessionId: string, joinKey: number, user?: string): string[] => [
      `${p}s:${sessionId}`,
      `${p}j:${joinKey}`,
      `${p}end:${sessionId}`,
      `${p}list`,
      `${p}lx`,
      ...(user === undefined ? [] : [`${p}u:${user}`, `${p}uo:${user}`]),
    ];
    const publish = async (sessionId: string, joinKey: number, member: string, previous = '', ttlMs = 60_000, user?: string): Promise<unknown> => {
      const keys = keysOf(sessionId, joinKey, user);
      const [err, reply] = (await client.pipeline().edgePublish(keys.length, ...keys, JSON.stringify({ e: 'A', m: sessionId, v: { id: sessionId } }), sessionId, ttlMs, member, previous, 1000).exec())![0]!;
      if (err !== null) throw err;
      return reply;
    };

    it('publish lists, indexes by join key and counts the user; find answers by ID and join key', async () => {
      expect(await publish(id, 42, `m1${id}`, '', 60_000, 'u')).toBeNull();
      expect(await raw.zrange(`${p}list`, 0, '-1')).toEqual([`m1${id}`]);
      expect(await raw.zrange(`${p}uo:u`, 0, '-1')).toEqual([id]);
      const byId = (await client.edgeFind(p, 'i', id)) as [string, string];
      expect(byId[0]).toBe('s');
      expect(JSON.parse(byId[1])).toMatchObject({ e: 'A', m: id });
      expect(await client.edgeFind(p, 'j', '42')).toEqual(byId);
      expect(await client.edgeFind(p, 'j', '43')).toBeNull();
      expect(await client.edgeFind(p, 'i', 'BBBBBBBBBBBBBBBBBBBBBB')).toBeNull();
    });

    it('a new member (a changed name) replaces the old one in the list', async () => {
      await publish(id, 42, `m1${id}`);
      await publish(id, 42, `m2${id}`, `m1${id}`);
      expect(await raw.zrange(`${p}list`, 0, '-1')).toEqual([`m2${id}`]);
      expect(await raw.zrange(`${p}lx`, 0, '-1')).toEqual([`m2${id}`]);
    });

    it('an end leaves a tombstone (never shortened), tells the channel, and refuses the next publish', async () => {
      await publish(id, 42, `m1${id}`);
      const sub = new Redis(server.url, { protocol: 2 });
      try {
        const heard: string[] = [];
        sub.on('message', (_c: string, m: string) => heard.push(m));
        await sub.subscribe(`${p}ends`);
        const tombstone = JSON.stringify({ sessionId: id, reason: 'kicked', untilMs: Date.now() + 60_000 });
        await client.pipeline().edgeEnd(`${p}end:${id}`, tombstone, 60_000, `${p}ends`, 'msg-1').exec();
        await client.pipeline().edgeEnd(`${p}end:${id}`, JSON.stringify({ sessionId: id, reason: 'limit', untilMs: 0 }), 1000, `${p}ends`, 'msg-2').exec();
        expect(await raw.get(`${p}end:${id}`)).toBe(tombstone);
        expect(await raw.pttl(`${p}end:${id}`)).toBeGreaterThan(50_000);
        await sleep(50);
        expect(heard).toEqual(['msg-1', 'msg-2']);
      } finally {
        await sub.quit();
      }
      expect(await client.edgeFind(p, 'i', id)).toEqual(['e', await raw.get(`${p}end:${id}`)]);
      expect(await client.edgeFind(p, 'j', '42')).toEqual(['e', await raw.get(`${p}end:${id}`)]);
      // The holder's refresh does not bring it back: it learns of the end instead.
      expect(await publish(id, 42, `m1${id}`)).toBe(await raw.get(`${p}end:${id}`));
    });

    it('unpublish drops the record and the listing; an ended one keeps its join key on the tombstone', async () => {
      await publish(id, 42, `m1${id}`);
      await client.pipeline().edgeUnpublish(`${p}s:${id}`, `${p}j:42`, `${p}list`, `${p}lx`, id, `m1${id}`, 0).exec();
      expect(await raw.exists(`${p}s:${id}`, `${p}j:42`)).toBe(0);
      expect(await raw.zcard(`${p}list`)).toBe(0);
      await publish(id, 42, `m1${id}`);
      await client.pipeline().edgeUnpublish(`${p}s:${id}`, `${p}j:42`, `${p}list`, `${p}lx`, id, `m1${id}`, 5000).exec();
      expect(await raw.get(`${p}j:42`)).toBe(id);
      expect(await raw.pttl(`${p}j:42`)).toBeGreaterThan(4000);
      // Another session that took the join key since is not dropped with it.
      await raw.set(`${p}j:7`, 'other');
      await client.pipeline().edgeUnpublish(`${p}s:${id}`, `${p}j:7`, `${p}list`, `${p}lx`, id, '', 0).exec();
      expect(await raw.get(`${p}j:7`)).toBe('other');
    });

    it('the sweep drops listing entries whose edge stopped refreshing them, and only those', async () => {
      await publish(id, 1, `old${id}`, '', 200);
      await publish('BBBBBBBBBBBBBBBBBBBBBB', 2, 'newBBBBBBBBBBBBBBBBBBBBBB', '', 60_000);
      await sleep(300);
      expect(await client.edgeSweep(`${p}list`, `${p}lx`, 100)).toBe(1);
      expect(await raw.zrange(`${p}list`, 0, '-1')).toEqual(['newBBBBBBBBBBBBBBBBBBBBBB']);
      expect(await raw.exists(`${p}s:${id}`)).toBe(0);
    });
  });
});
