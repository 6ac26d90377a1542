// The concurrency guard around a middleware, with a fake backend (the real AuthBackend interface)
// whose calls end when the test says: exact about who holds a slot, when, and what is counted.
import { describe, expect, it } from 'vitest';
import { CallCancelled, CallShed, GuardedBackend, MAX_QUEUED_CALLS } from '../../src/auth/guarded.js';
import type { AuthBackend, AuthRequest, BackendVerdict } from '../../src/auth/types.js';
import { EdgeMetrics } from '../../src/metrics/metrics.js';

class HeldBackend implements AuthBackend {
  readonly name = 'held';
  readonly signals: AbortSignal[] = [];
  private readonly pending: ((v: BackendVerdict) => void)[] = [];
  check(_request: AuthRequest, signal: AbortSignal): Promise<BackendVerdict> {
    this.signals.push(signal);
    return new Promise((resolve, reject) => {
      this.pending.push(resolve);
      signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
    });
  }
  answerAll(v: BackendVerdict): void {
    for (const f of this.pending.splice(0)) f(v);
  }
  async close(): Promise<void> {}
}

const request = {} as AuthRequest;

function setup(timeoutMs: number, concurrency: number) {
  const inner = new HeldBackend();
  const metrics = new EdgeMetrics({ store: { stats: () => ({ entries: 0, evictions: 0 }) }, activeSessions: () => ({ hls: 0, mpegts: 0 }) }, { processMetrics: false });
  const guard = new GuardedBackend(inner, { timeoutMs, concurrency }, metrics);
  const count = async (name: string, labels: Record<string, string> = {}): Promise<number> =>
    (await metrics.registry.getSingleMetric(name)!.get()).values.filter((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want)).reduce((n, v) => n + v.value, 0);
  return { inner, guard, count };
}

const never = new AbortController().signal;

describe('GuardedBackend', () => {
  it('a caller that times out gets its answer at once; the call keeps its slot until the middleware answers', async () => {
    const { inner, guard, count } = setup(50, 1);
    await expect(guard.check(request, never)).rejects.toMatchObject({ code: 'EDGE_ERR_BACKEND_TIMEOUT' });
    expect(guard.inFlight).toBe(1);
    expect(inner.signals[0]!.aborted).toBe(false);
    // The next caller waits for the slot, gets none in time: shed, never sent.
    await expect(guard.check(request, never)).rejects.toBeInstanceOf(CallShed);
    expect(inner.signals).toHaveLength(1);
    inner.answerAll({ allow: false, reason: 'backend_403' });
    await Promise.resolve();
    expect(guard.inFlight).toBe(0);
    expect(await count('edge_auth_backend_late_total', { end: 'answered' })).toBe(1);
    expect(await count('edge_auth_backend_requests_total', { outcome: 'timeout' })).toBe(1);
    expect(await count('edge_auth_backend_requests_total', { outcome: 'deny' })).toBe(0);
    expect(await count('edge_auth_backend_shed_total')).toBe(1);
  });

  it('a freed slot goes to the first waiter, and a cancelled caller is not counted as a failure', async () => {
    const { inner, guard, count } = setup(1000, 1);
    const cancel = new AbortController();
    const first = guard.check(request, cancel.signal);
    await Promise.resolve();
    expect(inner.signals).toHaveLength(1); // sent
    const second = guard.check(request, never);
    expect(guard.queued).toBe(1);
    cancel.abort(new CallCancelled('another backend already allowed'));
    await expect(first).rejects.toBeInstanceOf(CallCancelled);
    expect(guard.inFlight).toBe(1); // still the first call's
    inner.answerAll({ allow: true, reason: 'backend_200' });
    await new Promise((r) => setImmediate(r));
    expect(guard.queued).toBe(0);
    expect(inner.signals).toHaveLength(2);
    inner.answerAll({ allow: true, reason: 'backend_200' });
    await expect(second).resolves.toMatchObject({ allow: true });
    expect(await count('edge_auth_backend_requests_total', { outcome: 'allow' })).toBe(1);
    expect(await count('edge_auth_backend_requests_total', { outcome: 'timeout' })).toBe(0);
    expect(guard.inFlight).toBe(0);
  });

  it(`past ${MAX_QUEUED_CALLS} waiting calls a new one is shed at once; cancel() ends everything`, async () => {
    const { inner, guard, count } = setup(60_000, 1);
    const calls = Array.from({ length: MAX_QUEUED_CALLS + 1 }, () => guard.check(request, never).catch((e: unknown) => e));
    expect(guard.queued).toBe(MAX_QUEUED_CALLS);
    const overflow = await guard.check(request, never).catch((e: unknown) => e);
    expect(overflow).toBeInstanceOf(CallShed);
    expect((overflow as CallShed).retryAfterS).toBe(60);
    guard.cancel();
    const outcomes = await Promise.all(calls);
    expect(outcomes.every((e) => e instanceof CallCancelled)).toBe(true);
    expect(inner.signals[0]!.aborted).toBe(true);
    expect(guard.inFlight).toBe(0);
    expect(guard.queued).toBe(0);
    expect(await count('edge_auth_backend_shed_total')).toBe(1);
    expect(await count('edge_auth_backend_late_total')).toBe(0);
    await guard.close();
  });

  it('without a caller signal (the Authorizer\'s way): the caller times out at backend.timeout, and a call that never ends is abandoned at the hard limit', async () => {
    const { inner, guard, count } = setup(20, 1);
    expect(guard.boundsCallers).toBe(true);
    const started = performance.now();
    await expect(guard.check(request)).rejects.toMatchObject({ code: 'EDGE_ERR_BACKEND_TIMEOUT' });
    expect(inner.signals[0]!.aborted).toBe(false);
    expect(guard.inFlight).toBe(1);
    await new Promise((r) => setTimeout(r, 10 * 20 + 50));
    expect(inner.signals[0]!.aborted).toBe(true);
    expect(performance.now() - started).toBeGreaterThanOrEqual(10 * 20 - 5);
    expect(guard.inFlight).toBe(0);
    expect(await count('edge_auth_backend_late_total', { end: 'abandoned' })).toBe(1);
    expect(await count('edge_auth_backend_requests_total', { outcome: 'timeout' })).toBe(1);
  });

  it('without a caller signal, cancel() still ends a caller waiting on the wire and one in the queue', async () => {
    const { inner, guard, count } = setup(60_000, 1);
    const onWire = guard.check(request);
    const queued = guard.check(request);
    await Promise.resolve();
    expect(inner.signals).toHaveLength(1);
    expect(guard.queued).toBe(1);
    guard.cancel();
    await expect(onWire).rejects.toBeInstanceOf(CallCancelled);
    await expect(queued).rejects.toBeInstanceOf(CallCancelled);
    expect(guard.inFlight).toBe(0);
    expect(await count('edge_auth_backend_late_total')).toBe(0);
    expect(await count('edge_auth_backend_requests_total')).toBe(0);
  });

  it('close() waits for the calls in flight, then closes the backend', async () => {
    const { inner, guard } = setup(30, 1);
    await expect(guard.check(request, never)).rejects.toMatchObject({ code: 'EDGE_ERR_BACKEND_TIMEOUT' });
    let closed = false;
    const closing = guard.close().then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(closed).toBe(false);
    inner.answerAll({ allow: true, reason: 'backend_200' });
    await closing;
    expect(closed).toBe(true);
  });
});
