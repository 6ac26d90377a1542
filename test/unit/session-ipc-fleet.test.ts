// IpcFleet (a worker's side of --workers N) against the primary's side (FleetHost + PrimaryState),
// in one process: every message goes through structuredClone (what the channel does) and the same
// validation as between processes. Limits across workers, batching and its order, ends told to the
// other workers, lookups, and what happens when the primary does not answer.
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { FleetHost } from '../../src/cluster/fleet-host.js';
import { PrimaryState, type Slot } from '../../src/cluster/primary-state.js';
import { envelope, parseFromPrimary, parseFromWorker, type FromPrimary, type FromWorker } from '../../src/cluster/protocol.js';
import { createLogger } from '../../src/log.js';
import type { AdmitRequest, FleetEnd } from '../../src/session/fleet.js';
import { IpcFleet, MAX_FULL_PER_FLUSH, MAX_IDS_PER_FLUSH } from '../../src/session/ipc.js';
import { Session, newSessionId } from '../../src/session/session.js';
import { sleep, waitFor } from '../helpers/wait.js';

const FLUSH_MS = 5;

interface Rig {
  readonly state: PrimaryState;
  readonly host: FleetHost;
  readonly fleets: Map<Slot, IpcFleet>;
  /** Messages each worker sent, as the primary received them. */
  readonly received: FromWorker[];
  readonly logs: Record<string, unknown>[];
  /** While true the primary drops what it receives (a stalled primary). */
  deaf: boolean;
}

const rigs: Rig[] = [];
afterEach(async () => {
  for (const rig of rigs.splice(0)) {
    for (const f of rig.fleets.values()) await f.close();
    rig.host.close();
  }
});

function rig(workers: number, timeoutMs = 250): Rig {
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line !== '') logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const state = new PrimaryState({ edgeName: (slot) => `host/w${slot}` });
  const fleets = new Map<Slot, IpcFleet>();
  const received: FromWorker[] = [];
  const r: Rig = { state, host: undefined as unknown as FleetHost, fleets, received, logs, deaf: false };
  const toWorker = (slot: Slot, m: FromPrimary): void => {
    const wire = structuredClone(envelope(m));
    setImmediate(() => {
      const parsed = parseFromPrimary(wire);
      if (parsed !== undefined) fleets.get(slot)?.receive(parsed);
    });
  };
  const host = new FleetHost({ state, send: toWorker, slots: () => fleets.keys() });
  (r as { host: FleetHost }).host = host;
  for (let slot = 1; slot <= workers; slot++) {
    const toPrimary = (m: FromWorker): boolean => {
      const wire = structuredClone(envelope(m));
      setImmediate(() => {
        const parsed = parseFromWorker(wire);
        if (parsed === undefined) throw new Error(`invalid message from worker ${slot}: ${JSON.stringify(wire)}`);
        received.push(parsed);
        if (!r.deaf) host.handle(slot, parsed);
      });
      return true;
    };
    fleets.set(slot, new IpcFleet({ nodeName: `host/w${slot}`, send: toPrimary, log: createLogger('info', sink), timeoutMs, flushMs: FLUSH_MS }));
  }
  rigs.push(r);
  return r;
}

function session(channel = 'ch1', marker?: string): Session {
  const now = Date.now();
  const s = new Session(newSessionId(), { channel, kind: 'hls', clientIp: '10.0.0.1', userAgent: 'ua', host: 'edge', path: `/play/${channel}/index.m3u8`, query: 'token=t', token: 't', referer: '' }, now);
  s.decision = { allow: true, reason: 'backend_200', source: 'backend', decidedAt: now, sessionName: 'alice' };
  s.active = true;
  if (marker !== undefined) s.marker = marker;
  return s;
}

function admit(sessionId: string, max: number): AdmitRequest {
  return { userKey: 'alice', sessionId, max, unique: false, policy: 'refuse', openedAt: Date.now(), ttlMs: 30_000 };
}

describe('IpcFleet ↔ primary', () => {
  it('a per-user limit holds across workers; a session released on one worker frees its place', async () => {
    const { fleets } = rig(2);
    const [w1, w2] = [fleets.get(1)!, fleets.get(2)!];
    const a = newSessionId();
    expect(await w1.admit(admit(a, 1))).toEqual({ admitted: true, end: [] });
    expect(await w2.admit(admit(newSessionId(), 1))).toEqual({ admitted: false });
    // The release is batched, the admission is not: the batch goes first, so the primary sees them in order.
    w1.release('alice', a);
    expect(await w1.admit(admit(newSessionId(), 1))).toEqual({ admitted: true, end: [] });
  });

  it('sessions published by one worker are listed and found by the others; figures follow; unpublish removes', async () => {
    const { fleets, state } = rig(2);
    const [w1, w2] = [fleets.get(1)!, fleets.get(2)!];
    const s = session('news', 'MARKER');
    w1.publish(s);
    await waitFor(() => state.size === 1);
    const page = await w2.list({}, undefined, 10);
    expect(page).toMatchObject({ total: 1, complete: true, sessions: [{ id: s.id, channel: 'news', edge: 'host/w1', name: 'alice' }] });
    expect(await w2.findMarker({ joinKey: s.joinKey })).toMatchObject({ marker: 'MARKER', session: { id: s.id, edge: 'host/w1' } });
    expect(await w2.findMarker({ sessionId: s.id })).toMatchObject({ marker: 'MARKER' });
    expect(await w2.findMarker({ joinKey: s.joinKey + 1 })).toBeUndefined();
    s.requests = 7;
    s.bytes = 7000;
    w1.publish(s);
    await waitFor(() => state.get(s.id)?.bytes === 7000);
    w1.unpublish(s.id);
    await waitFor(() => state.size === 0);
  });

  it('batches: many calls within a flush are one message; a session goes whole once, then as figures only', async () => {
    const { fleets, received, state } = rig(1);
    const w1 = fleets.get(1)!;
    const sessions = [session(), session(), session()];
    for (let i = 0; i < 100; i++) for (const s of sessions) w1.publish(s);
    await waitFor(() => state.size === 3);
    const batches = received.filter((m) => m.t === 'batch');
    expect(batches).toHaveLength(1);
    expect(batches[0]).toMatchObject({ publish: [{}, {}, {}], touch: [] });
    sessions[0]!.requests++;
    w1.publish(sessions[0]!);
    await waitFor(() => received.filter((m) => m.t === 'batch').length === 2);
    expect(received.at(-1)).toMatchObject({ publish: [], touch: [{ id: sessions[0]!.id, requests: 1 }] });
    // A new decision: whole again.
    sessions[0]!.decision = { ...sessions[0]!.decision!, decidedAt: Date.now() + 1 };
    w1.publish(sessions[0]!);
    await waitFor(() => received.filter((m) => m.t === 'batch').length === 3);
    expect(received.at(-1)).toMatchObject({ publish: [{ id: sessions[0]!.id }], touch: [] });
  });

  it('a burst of new sessions spreads over batches of at most MAX_FULL_PER_FLUSH', async () => {
    const { fleets, received, state } = rig(1);
    const w1 = fleets.get(1)!;
    const n = MAX_FULL_PER_FLUSH * 2 + 17;
    for (let i = 0; i < n; i++) w1.publish(session());
    await waitFor(() => state.size === n, { timeoutMs: 5000 });
    const sizes = received.filter((m) => m.t === 'batch').map((m) => (m as Extract<FromWorker, { t: 'batch' }>).publish.length);
    expect(sizes).toEqual([MAX_FULL_PER_FLUSH, MAX_FULL_PER_FLUSH, 17]);
  });

  it('a mass close (12,000 sessions idle at once) goes in batches the primary accepts: every one unlisted', async () => {
    const { fleets, received, state } = rig(1);
    const w1 = fleets.get(1)!;
    const sessions = Array.from({ length: 12_000 }, () => session());
    for (const s of sessions) w1.publish(s);
    await waitFor(() => state.size === sessions.length, { timeoutMs: 10_000 });
    received.length = 0;
    for (const s of sessions) w1.unpublish(s.id);
    await waitFor(() => state.size === 0, { timeoutMs: 5000 });
    const sizes = received.filter((m) => m.t === 'batch').map((m) => (m as Extract<FromWorker, { t: 'batch' }>).unpublish.length);
    expect(sizes).toEqual([MAX_IDS_PER_FLUSH, sessions.length - MAX_IDS_PER_FLUSH]);
  });

  it('an end reported by one worker reaches every other worker, once; a worker that starts later learns it from its config', async () => {
    const { fleets, host } = rig(3);
    const heard = new Map<Slot, FleetEnd[]>();
    for (const [slot, f] of fleets) f.onEnd((e) => heard.set(slot, [...(heard.get(slot) ?? []), e]));
    const end = { sessionId: newSessionId(), reason: 'kicked', untilMs: Date.now() + 60_000 };
    fleets.get(1)!.end(end);
    fleets.get(2)!.end(end); // the same end, seen by a second worker: nothing new to tell
    await waitFor(() => (heard.get(2)?.length ?? 0) > 0 && (heard.get(3)?.length ?? 0) > 0);
    await sleep(30);
    expect(heard.get(1)).toBeUndefined();
    expect(heard.get(2)).toEqual([end]);
    expect(heard.get(3)).toEqual([end]);
    expect(host.liveEnds()).toEqual([end]);
  });

  it('a primary that does not answer: requests resolve undefined after the timeout (decide locally), logged once, and again when it answers', async () => {
    const r = rig(1, 50);
    const w1 = r.fleets.get(1)!;
    r.deaf = true;
    const t0 = Date.now();
    expect(await w1.admit(admit(newSessionId(), 1))).toBeUndefined();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(45);
    expect(await w1.findMarker({ joinKey: 1 })).toBeUndefined();
    expect(await w1.list({}, undefined, 10)).toMatchObject({ complete: false, total: 0 });
    expect(w1.connected).toBe(false);
    expect(r.logs.filter((l) => String(l['msg']).startsWith('the primary did not answer'))).toHaveLength(1);
    r.deaf = false;
    expect(await w1.admit(admit(newSessionId(), 1))).toEqual({ admitted: true, end: [] });
    expect(w1.connected).toBe(true);
    expect(r.logs.filter((l) => String(l['msg']).startsWith('the primary answers again'))).toHaveLength(1);
  });

  it('close() sends what is pending, answers pending requests undefined, and is idempotent', async () => {
    const r = rig(1);
    const w1 = r.fleets.get(1)!;
    const s = session();
    w1.publish(s);
    r.deaf = true;
    const pending = w1.admit(admit(newSessionId(), 1));
    await w1.close();
    await w1.close();
    expect(await pending).toBeUndefined();
    await waitFor(() => r.received.some((m) => m.t === 'batch'));
    expect(w1.connected).toBe(false);
    // After close, nothing more is sent.
    const before = r.received.length;
    w1.publish(session());
    w1.end({ sessionId: newSessionId(), reason: 'kicked', untilMs: Date.now() + 1000 });
    expect(await w1.admit(admit(newSessionId(), 1))).toBeUndefined();
    await sleep(30);
    expect(r.received.length).toBe(before);
  });
});
