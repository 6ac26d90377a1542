// The decision policy with a fake backend (implementing the real AuthBackend interface) and a
// controllable clock: fast and exact where the integration tests can only be approximate.
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Authorizer } from '../../src/auth/authorizer.js';
import type { AuthBackend, AuthRequest, BackendVerdict, Decision } from '../../src/auth/types.js';
import { buildConfig } from '../../src/config/load.js';
import { EdgeError } from '../../src/errors.js';
import { CallShed } from '../../src/auth/guarded.js';
import { EdgeMetrics } from '../../src/metrics/metrics.js';
import { MemorySessionStore } from '../../src/session/memory.js';
import { SessionRegistry } from '../../src/session/registry.js';
import type { Session } from '../../src/session/session.js';

type Answer = BackendVerdict | EdgeError;

class FakeBackend implements AuthBackend {
  readonly name = 'fake';
  readonly calls: AuthRequest[] = [];
  private waiting: ((a: Answer) => void)[] = [];
  check(request: AuthRequest): Promise<BackendVerdict> {
    this.calls.push(request);
    return new Promise((resolve, reject) => this.waiting.push((a) => (a instanceof EdgeError ? reject(a) : resolve(a))));
  }
  /** Answers every call waiting so far. */
  answer(a: Answer): void {
    const w = this.waiting;
    this.waiting = [];
    for (const f of w) f(a);
  }
  async close(): Promise<void> {}
}

function setup(auth: Record<string, unknown> = {}) {
  let now = 1_000_000;
  const config = buildConfig({ file: { auth: { allowTtl: '10s', denyTtl: '2s', unavailableTtl: '1s', staleGrace: '5s', ...auth } } });
  const store = new MemorySessionStore({ maxGranted: 100, maxUngranted: 100 });
  const log = pino({ level: 'silent' });
  const backend = new FakeBackend();
  const metrics = new EdgeMetrics({ store, activeSessions: () => sessions.table.countByKind() }, { processMetrics: false });
  const sessions: SessionRegistry = new SessionRegistry({
    store,
    auth: config.auth,
    limits: config.limits,
    idleTimeoutMs: config.session.idleTimeoutMs,
    log,
    metrics,
    onExpiry: (s) => authorizer.recheck(s),
    now: () => now,
  });
  const authorizer: Authorizer = new Authorizer({ backend, auth: config.auth, backendTimeoutMs: 1000, sessions, metrics, log, now: () => now });
  const open = (token = 't'): Session =>
    sessions.joinOrOpen({ channel: 'ch', kind: 'hls', clientIp: '1.1.1.1', userAgent: 'ua', host: 'h', path: '/play/ch/index.m3u8', query: `token=${token}`, token, referer: '' }, now);
  return { backend, authorizer, sessions, open, metrics, advance: (ms: number) => (now += ms), now: () => now };
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('Authorizer', () => {
  it('concurrent requests of a session share one backend call; later ones are answered synchronously', async () => {
    const { backend, authorizer, open, now } = setup();
    const s = open();
    const results = Array.from({ length: 20 }, () => authorizer.authorize(s, now()));
    expect(backend.calls).toHaveLength(1);
    expect(backend.calls[0]).toMatchObject({ sessionId: s.id, channel: 'ch', query: 'token=t', requestType: 'new' });
    backend.answer({ allow: true, reason: 'backend_200', sessionName: 'u1' });
    const decisions = await Promise.all(results);
    expect(new Set(decisions).size).toBe(1);
    const sync = authorizer.authorize(s, now());
    expect(sync).not.toBeInstanceOf(Promise);
    expect((sync as Decision).sessionName).toBe('u1');
  });

  it('serves an expired allow while re-checking, and a deny from the re-check ends the session', async () => {
    const { backend, authorizer, open, advance, now } = setup();
    const s = open();
    const first = authorizer.authorize(s, now());
    backend.answer({ allow: true, reason: 'backend_200' });
    await first;
    advance(10_001);
    const stale = authorizer.authorize(s, now());
    expect(stale).not.toBeInstanceOf(Promise);
    expect((stale as Decision).allow).toBe(true);
    expect(backend.calls.map((c) => c.requestType)).toEqual(['new', 'update']);
    // Only one re-check at a time.
    authorizer.authorize(s, now());
    expect(backend.calls).toHaveLength(2);
    let closed = 0;
    s.addStream({ destroy: () => closed++ });
    backend.answer({ allow: false, reason: 'backend_403' });
    await settle();
    expect(s.endReason).toBe('backend_403');
    expect(closed).toBe(1);
    expect((authorizer.authorize(s, now()) as Decision).allow).toBe(false);
  });

  it('--recheck never: the first answer holds past its TTL and past --max-ttl (held again), with no call', async () => {
    const { backend, authorizer, sessions, open, advance, now } = setup({ recheck: 'never', maxTtl: '1h' });
    const s = open();
    const p = authorizer.authorize(s, now());
    backend.answer({ allow: true, reason: 'backend_200', ttlMs: 5000 }); // the middleware's TTL is not a re-check date under never
    await p;
    expect(s.expiresAt - now()).toBe(3_600_000);
    advance(3_600_001);
    expect(authorizer.authorize(s, now())).toMatchObject({ allow: true, source: 'backend' });
    expect(backend.calls.map((c) => c.requestType)).toEqual(['new']);
    expect(s.expiresAt - now()).toBe(3_600_000);
    expect(sessions.store.get(s.id)).toBe(s);
  });

  it('--recheck never: a default-action decision is no answer; the middleware is asked again, and its answer holds', async () => {
    const { backend, authorizer, open, advance, now } = setup({ recheck: 'never' });
    const s = open();
    const p = authorizer.authorize(s, now());
    backend.answer(new EdgeError('EDGE_ERR_BACKEND_HTTP_5XX'));
    expect(await p).toMatchObject({ allow: true, source: 'default' });
    advance(1001); // --unavailable-ttl
    authorizer.authorize(s, now());
    expect(backend.calls.map((c) => c.requestType)).toEqual(['new', 'update']);
    backend.answer({ allow: true, reason: 'backend_200' });
    await settle();
    advance(60_000);
    expect(authorizer.authorize(s, now())).toMatchObject({ allow: true, source: 'backend' });
    expect(backend.calls).toHaveLength(2);
  });

  it('the middleware TTL wins over the configured one, capped by maxTtl', async () => {
    const { backend, authorizer, open, now } = setup({ maxTtl: '1h' });
    const s = open();
    const p = authorizer.authorize(s, now());
    backend.answer({ allow: true, reason: 'backend_200', ttlMs: 36_000_000 });
    await p;
    expect(s.expiresAt - now()).toBe(3_600_000);
  });

  it.each([
    ['allow', true, true],
    ['deny', false, false],
    ['keep-granted', false, true],
  ] as const)('default action %s: new session allowed=%s, granted session kept=%s', async (defaultAction, newAllowed, grantedKept) => {
    const { backend, authorizer, open, advance, now, metrics } = setup({ defaultAction });
    const granted = open('granted');
    const p = authorizer.authorize(granted, now());
    backend.answer({ allow: true, reason: 'backend_200', sessionName: 'kept' });
    await p;

    const fresh = open('fresh');
    const q = authorizer.authorize(fresh, now());
    backend.answer(new EdgeError('EDGE_ERR_BACKEND_HTTP_5XX'));
    const d = await q;
    expect(d.allow).toBe(newAllowed);
    expect(d.source).toBe('default');
    expect(d.reason).toBe('middleware_unavailable');

    advance(10_001);
    authorizer.authorize(granted, now());
    backend.answer(new EdgeError('EDGE_ERR_BACKEND_TIMEOUT'));
    await settle();
    expect(granted.endReason === undefined).toBe(grantedKept);
    if (grantedKept) expect(granted.decision?.sessionName).toBe('kept');
    // Counted per request served on it by the request handler, not per decision here (test/operator/counters.test.ts).
    const allowed = (await metrics.registry.getSingleMetric('edge_auth_failure_mode_allowed_total')!.get()).values[0]!.value;
    expect(allowed).toBe(0);
  });

  it.each(['allow', 'deny', 'keep-granted'] as const)('a shed call is no decision, whatever the default action (%s)', async (defaultAction) => {
    const { backend, authorizer, sessions, open, advance, now, metrics } = setup({ defaultAction });
    const count = async (name: string, labels: Record<string, string> = {}): Promise<number> =>
      (await metrics.registry.getSingleMetric(name)!.get()).values.filter((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want)).reduce((n, v) => n + v.value, 0);

    // A new session: 503 material, nothing kept; its viewer's next request asks again.
    const fresh = open('fresh');
    const both = [authorizer.authorize(fresh, now()), authorizer.authorize(fresh, now())];
    expect(backend.calls).toHaveLength(1);
    backend.answer(new CallShed('queue full', 2));
    const [d1, d2] = await Promise.all(both);
    expect(d1).toMatchObject({ allow: false, source: 'shed', reason: 'edge_overloaded', retryAfterS: 2 });
    expect(d2).toBe(d1);
    expect(fresh.pending).toBeUndefined();
    expect(fresh.decision).toBeUndefined();
    expect(sessions.store.get(fresh.id)).toBeUndefined();
    expect(await count('edge_auth_shed_total', { check: 'new' })).toBe(1);
    expect(await count('edge_auth_failure_mode_allowed_total')).toBe(0);
    const again = open('fresh');
    expect(again).not.toBe(fresh);
    void authorizer.authorize(again, now());
    expect(backend.calls).toHaveLength(2);
    backend.answer({ allow: true, reason: 'backend_200' });
    await settle();

    // A granted session whose re-check is shed keeps its decision, unchanged, and asks again later.
    const granted = open('granted');
    const p = authorizer.authorize(granted, now());
    backend.answer({ allow: true, reason: 'backend_200', sessionName: 'kept' });
    const decision = await p;
    granted.addStream({ destroy: () => undefined }); // an MPEG-TS viewer: no requests, its timer re-checks
    advance(10_001);
    expect(authorizer.authorize(granted, now())).toBe(decision);
    backend.answer(new CallShed('no slot in time', 1));
    await settle();
    expect(granted.pending).toBeUndefined();
    expect(granted.decision).toBe(decision);
    expect(granted.endReason).toBeUndefined();
    expect(granted.recheckTimer).toBeDefined();
    expect(await count('edge_auth_shed_total', { check: 'recheck' })).toBe(1);
    expect(authorizer.authorize(granted, now())).toBe(decision);
    expect(backend.calls.map((c) => c.requestType)).toEqual(['new', 'new', 'new', 'update', 'update']);
    clearTimeout(granted.recheckTimer);
  });

  it('a deny is remembered for the deny TTL, then the session is gone', async () => {
    const { backend, authorizer, sessions, open, now } = setup({ denyTtl: '50ms' });
    const s = open();
    const p = authorizer.authorize(s, now());
    backend.answer({ allow: false, reason: 'backend_403' });
    await p;
    expect(sessions.store.get(s.id)).toBe(s);
    await new Promise((r) => setTimeout(r, 80));
    expect(sessions.store.get(s.id)).toBeUndefined();
  });
});
