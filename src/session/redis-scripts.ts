/**
 * The Lua scripts of the Redis fleet store (session/redis.ts), apart so the
 * unit tests can run each one against a real redis-server. Each script is one
 * atomic step (Redis runs a script alone), so two edges admitting sessions of
 * one user at the same instant cannot both see room for one more.
 *
 * Times are the Redis server's clock (TIME), never an edge's: the edges of a
 * fleet may disagree by seconds, and an entry's expiry must mean the same
 * thing to all of them. Key names are built by the caller (redis.ts documents
 * the layout); scripts that look a session up by ID build the key from the
 * prefix, so this store needs one Redis (or a primary behind Sentinel or a
 * proxy), not Redis Cluster.
 */
import type { ChainableCommander, Redis } from 'ioredis';

/** Server time in ms; `replicate_commands` lets a script that read TIME write on Redis < 5 (a no-op since). */
const NOW = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/** Extends a key's life to at least `ms` (never shortens it: another edge may have refreshed a longer-lived member). */
const EXTEND = `
local function extend(key, ms)
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, ms) end
end
`;

/** ZREM of many members, in pieces: Lua's unpack() has a bounded stack. */
const ZREM_ALL = `
local function zremAll(key, members)
  for i = 1, #members, 1000 do
    redis.call('ZREM', key, unpack(members, i, math.min(i + 999, #members)))
  end
end
`;

/**
 * A session entering its user's count, fleet-wide.
 * KEYS[1] u:<user> (member: session ID, score: expiry), KEYS[2] uo:<user> (score: openedAt).
 * ARGV: sessionId, max (0 = none), unique (1/0), policy (refuse | close-oldest), openedAt, ttlMs.
 * Returns {1, id...} admitted (the IDs to end: X-Unique, or the oldest under
 * close-oldest), or {0} refused. Entries past their expiry (an edge that
 * crashed, or lost Redis for longer than the idle timeout) are dropped first.
 */
export const ADMIT_SCRIPT = `${NOW}${EXTEND}${ZREM_ALL}
local id = ARGV[1]
local max = tonumber(ARGV[2])
local unique = ARGV[3] == '1'
local closeOldest = ARGV[4] == 'close-oldest'
local openedAt = tonumber(ARGV[5])
local ttl = tonumber(ARGV[6])
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
if #expired > 0 then
  zremAll(KEYS[1], expired)
  zremAll(KEYS[2], expired)
end
local ended = {}
if redis.call('ZSCORE', KEYS[1], id) == false then
  if unique then
    ended = redis.call('ZRANGE', KEYS[2], 0, -1)
  elseif max > 0 then
    local n = redis.call('ZCARD', KEYS[1])
    if n >= max then
      if not closeOldest then return {0} end
      -- Oldest first: uo is ordered by openedAt (ties: by ID).
      ended = redis.call('ZRANGE', KEYS[2], 0, n - max)
    end
  end
  if #ended > 0 then
    zremAll(KEYS[1], ended)
    zremAll(KEYS[2], ended)
  end
end
redis.call('ZADD', KEYS[1], now + ttl, id)
redis.call('ZADD', KEYS[2], openedAt, id)
extend(KEYS[1], ttl)
extend(KEYS[2], ttl)
local out = {1}
for i = 1, #ended do out[i + 1] = ended[i] end
return out
`;

/**
 * A session of this edge listed (or refreshed) fleet-wide. Refused when the
 * session was ended meanwhile: returns its tombstone, so the edge ends it
 * (an end it missed while Redis or pub/sub was away), and nothing is written.
 * KEYS: s:<id>, j:<joinKey>, end:<id>, list, lx, then u:<user>, uo:<user> when the session has a user.
 * ARGV: record JSON, id, ttlMs, member, previous member ('' if none), openedAt.
 */
export const PUBLISH_SCRIPT = `${NOW}${EXTEND}
local ended = redis.call('GET', KEYS[3])
if ended then return ended end
local ttl = tonumber(ARGV[3])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
redis.call('SET', KEYS[2], ARGV[2], 'PX', ttl)
if ARGV[5] ~= '' and ARGV[5] ~= ARGV[4] then
  redis.call('ZREM', KEYS[4], ARGV[5])
  redis.call('ZREM', KEYS[5], ARGV[5])
end
redis.call('ZADD', KEYS[4], 0, ARGV[4])
redis.call('ZADD', KEYS[5], now + ttl, ARGV[4])
extend(KEYS[4], ttl)
extend(KEYS[5], ttl)
if KEYS[6] then
  redis.call('ZADD', KEYS[6], now + ttl, ARGV[2])
  redis.call('ZADD', KEYS[7], ARGV[6], ARGV[2])
  extend(KEYS[6], ttl)
  extend(KEYS[7], ttl)
end
return false
`;

/**
 * A session left this edge's table: no longer listed nor findable. An ended
 * one keeps its join key pointing at its ID for `keepJoinMs`, so a reload of
 * its original URL on any edge finds the tombstone.
 * KEYS: s:<id>, j:<joinKey>, list, lx. ARGV: id, member ('' if never listed), keepJoinMs (0: drop).
 */
export const UNPUBLISH_SCRIPT = `
redis.call('DEL', KEYS[1])
if tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])
elseif redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
end
if ARGV[2] ~= '' then
  redis.call('ZREM', KEYS[3], ARGV[2])
  redis.call('ZREM', KEYS[4], ARGV[2])
end
return 1
`;

/**
 * A session ended fleet-wide: its tombstone (kept at least `ttlMs`, never
 * shortened) and the message every edge hears.
 * KEYS: end:<id>. ARGV: tombstone JSON, ttlMs, channel, message.
 */
export const END_SCRIPT = `
local ttl = tonumber(ARGV[2])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl) end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
`;

/**
 * What the fleet knows of a session by join key or ID: {'e', tombstone} when
 * it was ended, {'s', record} when it is listed, or nil.
 * ARGV: prefix, 'j' (join key) or 'i' (ID), the key.
 */
export const FIND_SCRIPT = `
local p = ARGV[1]
local id = ARGV[3]
if ARGV[2] == 'j' then
  id = redis.call('GET', p .. 'j:' .. ARGV[3])
  if not id then return false end
end
local ended = redis.call('GET', p .. 'end:' .. id)
if ended then return {'e', ended} end
local record = redis.call('GET', p .. 's:' .. id)
if record then return {'s', record} end
return false
`;

/**
 * Drops the listing entries whose session was not refreshed in time (its
 * edge crashed or lost Redis): at most `ARGV[1]` per call. KEYS: list, lx.
 */
export const SWEEP_SCRIPT = `${NOW}${ZREM_ALL}
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
if #gone > 0 then
  zremAll(KEYS[1], gone)
  zremAll(KEYS[2], gone)
end
return #gone
`;

type Arg = string | number;

/** The scripts as client commands (EVALSHA, falling back to EVAL once after a Redis restart). */
export interface FleetCommands {
  edgeAdmit(userKey: string, openedKey: string, ...args: Arg[]): Promise<unknown>;
  edgeFind(...args: Arg[]): Promise<unknown>;
  edgeSweep(listKey: string, expiryKey: string, max: number): Promise<unknown>;
}

export interface FleetPipelineCommands {
  edgePublish(numKeys: number, ...keysAndArgs: Arg[]): FleetPipeline;
  edgeUnpublish(...keysAndArgs: Arg[]): FleetPipeline;
  edgeEnd(endKey: string, ...args: Arg[]): FleetPipeline;
}

export type FleetClient = Omit<Redis, 'pipeline'> & FleetCommands & { pipeline(): FleetPipeline };
export type FleetPipeline = ChainableCommander & FleetPipelineCommands;

/** Registers the scripts on a client (each is sent once, then called by its SHA). */
export function defineFleetCommands(client: Redis): FleetClient {
  client.defineCommand('edgeAdmit', { numberOfKeys: 2, lua: ADMIT_SCRIPT });
  // The user keys are there only for a session with a user: the key count is the first argument.
  client.defineCommand('edgePublish', { lua: PUBLISH_SCRIPT });
  client.defineCommand('edgeUnpublish', { numberOfKeys: 4, lua: UNPUBLISH_SCRIPT });
  client.defineCommand('edgeEnd', { numberOfKeys: 1, lua: END_SCRIPT });
  client.defineCommand('edgeFind', { numberOfKeys: 0, lua: FIND_SCRIPT, readOnly: true });
  client.defineCommand('edgeSweep', { numberOfKeys: 2, lua: SWEEP_SCRIPT });
  return client as unknown as FleetClient;
}
