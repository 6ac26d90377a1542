// The hardening battery, load: thousands of idle keep-alive connections, and thousands of players
// aborting segment downloads mid-body. Bounded in count and concurrency; what is asserted is that
// the edge keeps serving and that descriptors, sockets and memory come back to where they were,
// not how fast anything went.
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { httpRequest } from '../helpers/client.js';
import { backToBaseline, collectGarbage, describe as describeSnapshot, snapshot } from '../helpers/resources.js';
import { useStack, type Stack, type StackOptions } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

const startStack = useStack();
// A small decision store: the default (1,000,000 entries) costs ~0.5 s of lru-cache allocation per edge.
const start = (file: Record<string, unknown> = {}, options: StackOptions = {}): Promise<Stack> =>
  startStack({ ...file, auth: { maxEntries: 10_000, ...(file['auth'] as object | undefined) } }, options);

const IDLE_CONNECTIONS = 5000;
const ABORTS = 8000;
const BAD_TOKENS = 1000;
const ABORT_CONCURRENCY = 200;
/** Upstream pool size in the abort test: the bound the origin's connection count must respect. */
const UPSTREAM_CONNECTIONS = 64;

/** The soft limit on open descriptors of this process (Linux), or Infinity when unknown. */
function fdSoftLimit(): number {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = line?.trim().split(/\s{2,}/)[1];
    return soft === undefined || soft === 'unlimited' ? Infinity : Number(soft);
  } catch {
    return Infinity;
  }
}

/** Both ends of each connection live in this process (the edge runs in-process): 2 descriptors per connection, plus headroom. */
const idleCount = Math.min(IDLE_CONNECTIONS, Math.floor((fdSoftLimit() - 1024) / 2));
const IDLE_MIN = 500;

/** Runs `task(i)` for i in [0, total) with at most `concurrency` in flight. */
async function bounded(total: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < total) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
}

interface IdleConnection {
  readonly socket: Socket;
  /** The edge closed it (FIN): its keep-alive timeout for an idle connection. */
  closedByEdge: boolean;
  /** A reset or another socket error: never expected. */
  error: string | undefined;
}

/** One request on a new connection, answered with keep-alive, then left open and idle. */
function idleKeepAlive(url: URL): Promise<IdleConnection> {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname);
    const conn: IdleConnection = { socket, closedByEdge: false, error: undefined };
    let received = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('idle keep-alive connection: no answer in 20 s'));
    }, 20_000);
    socket.setEncoding('latin1');
    socket.on('error', (err: NodeJS.ErrnoException) => {
      conn.error = err.code ?? err.message;
      clearTimeout(timer);
      reject(err);
    });
    socket.on('end', () => (conn.closedByEdge = true));
    socket.on('data', (chunk: string) => {
      received += chunk;
      if (received.endsWith('ok\n')) {
        clearTimeout(timer);
        if (!received.startsWith('HTTP/1.1 200') || !/\r\nConnection: keep-alive\r\n/i.test(received)) reject(new Error(`unexpected answer: ${received}`));
        else resolve(conn);
      }
    });
    socket.write('GET /healthz HTTP/1.1\r\nHost: edge\r\n\r\n');
  });
}

/** GETs `target` and destroys the connection as soon as the first body bytes arrived. Resolves with the status. */
function abortAfterFirstBytes(target: URL): Promise<number> {
  return new Promise((resolve, reject) => {
    let status = 0;
    const timer = setTimeout(() => req.destroy(new Error('abortAfterFirstBytes: no body in 10 s')), 10_000);
    const req = http.request({ host: target.hostname, port: target.port, path: target.pathname + target.search, agent: false }, (res) => {
      status = res.statusCode ?? 0;
      res.once('data', () => req.destroy());
      res.on('error', () => undefined);
    });
    req.on('error', () => undefined);
    req.on('close', () => {
      clearTimeout(timer);
      if (status === 0) reject(new Error('abortAfterFirstBytes: no response'));
      else resolve(status);
    });
    req.end();
  });
}

describe('battery: load', () => {
  it.skipIf(idleCount < IDLE_MIN)(
    `${idleCount} idle keep-alive connections: the edge still serves, and closing them brings descriptors, sockets and memory back to baseline${idleCount < IDLE_CONNECTIONS ? ` (SCALED DOWN from ${IDLE_CONNECTIONS}: the open-files soft limit is ${fdSoftLimit()}; raise \`ulimit -n\` for the full count)` : ''}`,
    async () => {
      const stack = await start({ health: { public: true } });
      expect((await httpRequest(`${stack.edge.url}/play/ch1/v1/seg-1.ts?token=t`)).status).toBe(200);
      collectGarbage();
      const baseline = await snapshot();
      const url = new URL(stack.edge.url);
      const conns: IdleConnection[] = [];
      try {
        await bounded(idleCount, 250, async () => {
          conns.push(await idleKeepAlive(url));
        });
        // Every connection was answered and kept alive. Opening them all takes seconds on a busy
        // machine, so the first ones may already have been closed by the edge's keep-alive timeout
        // (5 s idle): that is the edge bounding them, with a FIN, never a reset.
        expect(conns).toHaveLength(idleCount);
        const open = conns.filter((c) => !c.closedByEdge).length;
        const loaded = await snapshot();
        expect(loaded.sockets - baseline.sockets, `both ends of the ${open} open connections (${describeSnapshot(loaded)})`).toBeGreaterThanOrEqual(open);
        // A player still gets its segment while they sit there.
        const res = await httpRequest(`${stack.edge.url}/play/ch1/v1/seg-2.ts?token=t`, { timeoutMs: 10_000 });
        expect(res.status).toBe(200);
        expect(res.body.equals(stack.origin.expectedBytes('/play/ch1/v1/seg-2.ts'))).toBe(true);
        expect(conns.filter((c) => c.error !== undefined).map((c) => c.error)).toEqual([]);
        expect(open, 'connections idle at the same time').toBeGreaterThanOrEqual(Math.min(idleCount, 1000));
      } finally {
        for (const c of conns) c.socket.destroy();
      }
      await backToBaseline(baseline, { timeoutMs: 10_000 });
    },
    120_000,
  );

  // Regression (hardening #6): an expired entry used to stay in the decision store (lru-cache, lazy
  // TTL) until --max-sessions pushed it out; the store's sweep now removes it.
  it(`a flood of ${BAD_TOKENS} bad tokens: once their deny TTL has passed, the decision store and the heap are back to baseline`, async () => {
    const stack = await start({ auth: { denyTtl: '1s' } });
    stack.mw.setBehavior('deny');
    collectGarbage();
    const baseline = await snapshot();
    const statuses = new Map<number, number>();
    await bounded(BAD_TOKENS, 50, async (i) => {
      const res = await httpRequest(`${stack.edge.url}/play/ch1/index.m3u8?token=bad-${i}`);
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    });
    expect(Object.fromEntries(statuses)).toEqual({ 403: BAD_TOKENS });
    expect(stack.mw.requests).toHaveLength(BAD_TOKENS);
    await waitFor(async () => (await stack.edge.metric('edge_decision_store_entries')) === 0, { timeoutMs: 10_000, message: 'expired denies leave the decision store' });
    await backToBaseline(baseline, { timeoutMs: 10_000, heapBytes: 4 * 1024 * 1024 });
  }, 60_000);

  it(`${ABORTS} segment downloads aborted mid-body (${ABORT_CONCURRENCY} at a time): every upstream exchange ends, the upstream pool stays within upstream.connections, and resources return to baseline`, async () => {
    // A decision that outlives the run, however slow the machine: no re-check call to count. The
    // forward path (one upstream exchange per request): the edge cache is off here, and has its
    // own abort flood below.
    const stack = await start({ upstream: { connections: UPSTREAM_CONNECTIONS }, auth: { allowTtl: '1h' }, cache: { size: 0 } }, { origin: { segmentBytes: 16 * 1024, bodyChunks: 16 } });
    expect((await httpRequest(`${stack.edge.url}/play/ch1/v1/seg-0.ts?token=t`)).status).toBe(200);
    stack.origin.reset();
    collectGarbage();
    const baseline = await snapshot();
    let maxOriginConnections = 0;
    const sampler = setInterval(() => (maxOriginConnections = Math.max(maxOriginConnections, stack.origin.activeConnections())), 20);
    const statuses = new Map<number, number>();
    try {
      await bounded(ABORTS, ABORT_CONCURRENCY, async (i) => {
        const status = await abortAfterFirstBytes(new URL(`${stack.edge.url}/play/ch1/v1/seg-${i % 50}.ts?token=t`));
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
      });
    } finally {
      clearInterval(sampler);
    }
    expect(Object.fromEntries(statuses)).toEqual({ 200: ABORTS });
    // One session (same token, address and User-Agent): one middleware call for all of them.
    expect(stack.mw.requests).toHaveLength(1);
    expect(stack.origin.requests).toHaveLength(ABORTS);
    // Every exchange is accounted for exactly once, as aborted or (when the body was already all sent) ok.
    await waitFor(async () => (await stack.edge.metric('edge_upstream_requests_total')) === ABORTS + 1, { timeoutMs: 10_000, message: 'every upstream exchange counted' });
    const aborted = await stack.edge.metric('edge_upstream_requests_total', { outcome: 'aborted' });
    expect(aborted, 'aborted mid-body').toBeGreaterThan(ABORTS / 2);
    expect(await stack.edge.metric('edge_upstream_requests_total', { outcome: 'ok' })).toBe(ABORTS + 1 - aborted);
    // Every origin response is over, and the connection of every cut one is closed.
    await waitFor(() => stack.origin.requests.every((r) => r.closedAt !== null && (r.finished || r.connectionClosedAt !== null)), { timeoutMs: 10_000, message: 'origin responses closed' });
    expect(maxOriginConnections, 'upstream connections at most upstream.connections').toBeLessThanOrEqual(UPSTREAM_CONNECTIONS);
    expect(stack.origin.activeConnections()).toBeLessThanOrEqual(UPSTREAM_CONNECTIONS);
    // Idle pooled upstream connections may remain (both ends are in this process).
    await backToBaseline(baseline, { timeoutMs: 10_000, sockets: 2 * UPSTREAM_CONNECTIONS + 8, fds: 2 * UPSTREAM_CONNECTIONS + 8 });
  }, 180_000);

  it(`${ABORTS} aborted downloads of cached and coalesced segments: each segment fetched once, the fills complete, and resources return to baseline`, async () => {
    const stack = await start({ upstream: { connections: UPSTREAM_CONNECTIONS }, auth: { allowTtl: '1h' } }, { origin: { segmentBytes: 16 * 1024, bodyChunks: 16 } });
    expect((await httpRequest(`${stack.edge.url}/play/ch1/v1/seg-0.ts?token=t`)).status).toBe(200);
    stack.origin.reset();
    collectGarbage();
    const baseline = await snapshot();
    const statuses = new Map<number, number>();
    await bounded(ABORTS, ABORT_CONCURRENCY, async (i) => {
      const status = await abortAfterFirstBytes(new URL(`${stack.edge.url}/play/ch1/v1/seg-${i % 50}.ts?token=t`));
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    });
    expect(Object.fromEntries(statuses)).toEqual({ 200: ABORTS });
    expect(stack.mw.requests).toHaveLength(1);
    // seg-0 was cached before the flood: the other 49 segments, once each, whoever aborted.
    expect(stack.origin.requests).toHaveLength(49);
    await waitFor(() => stack.origin.requests.every((r) => r.finished), { timeoutMs: 10_000, message: 'every fill completes though its viewers left' });
    expect(await stack.edge.metric('edge_cache_entries')).toBe(50);
    await backToBaseline(baseline, { timeoutMs: 10_000, sockets: 2 * UPSTREAM_CONNECTIONS + 8, fds: 2 * UPSTREAM_CONNECTIONS + 8 });
  }, 180_000);
});
