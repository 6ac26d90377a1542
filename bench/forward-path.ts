/**
 * Forward-path benchmark: undici (Pool.stream, Pool.request + stream.pipeline, Pool.pipeline) vs
 * http-proxy (node-http-proxy) as the reverse proxy in front of an HLS / MPEG-TS origin.
 *
 *   npx tsx bench/forward-path.ts            # full run (~3 min), prints markdown, writes bench/results/forward-path.json
 *   npx tsx bench/forward-path.ts --quick    # 1 s runs, 200/100 aborts: smoke test only, figures meaningless
 *
 * Process layout (everything on 127.0.0.1, ports chosen by the OS):
 *   - parent: orchestration, autocannon load generator, abort-leak client;
 *   - origin child: node http server; /live/playlist.m3u8 = 600-byte body, /live/seg.ts = 1 MiB
 *     pre-allocated Buffer written in 64 KiB chunks with backpressure, /live/stream.ts = endless-style
 *     live HTTP-TS (64 KiB every 40 ms, capped at 8 MiB); records per-request finish/close;
 *   - proxy children: one per proxy kind, reporting CPU time, memory after a forced GC, active TCP
 *     handles and pool stats over IPC. All five stay up during the load phase (idle ones cost nothing);
 *     every abort phase gets a fresh one so growth is measured from a clean process.
 *
 * Load phase: autocannon against the origin directly and through each proxy, 3 interleaved rounds,
 * best round reported plus the proxy's CPU time per request (robust to other load on the box).
 * Abort phase: N requests for the 1 MiB segment (then for the live stream); the client destroys the
 * request as soon as the first body chunk arrives. Then: does the origin see its response closed
 * without 'finish', and how fast? How many upstream sockets / in-flight responses / kernel-queued bytes
 * are left after a settle? How much did the proxy grow?
 * http-proxy 1.18.1 only aborts its upstream request on `req.on('aborted')`, which Node >= 15.5 no
 * longer emits once the request body has been fully read (always the case for a piped GET).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http, { type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import httpProxy from 'http-proxy';
import { Pool } from 'undici';
import { HOP_BY_HOP as EDGE_HOP_BY_HOP } from '../src/proxy/headers.js';

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

const QUICK = process.argv.includes('--quick');
const HOST = '127.0.0.1';
const PLAYLIST_PATH = '/live/playlist.m3u8';
const SEGMENT_PATH = '/live/seg.ts';
const STREAM_PATH = '/live/stream.ts'; // endless HTTP MPEG-TS, as Astra serves a live channel (capped here)
const PLAYLIST_BYTES = 600;
const SEGMENT_BYTES = 1024 * 1024;
const ORIGIN_CHUNK = 64 * 1024;
const STREAM_INTERVAL_MS = 40; // 64 KiB / 40 ms ~ 13 Mbit/s, an HD channel
const STREAM_CAP_BYTES = 8 * 1024 * 1024; // ~5 s, so a leaked stream cannot run forever

// Three short interleaved rounds (order reversed every other round), best round reported: on a shared
// 2-core box outside load only ever slows a run down, and interleaving spreads it across targets.
// undici's WASM llhttp needs ~10-20k requests before it is at full speed, hence a separate warm-up
// run per target before round 1 (proxies stay up between rounds, so later rounds are warm).
const LOAD = {
  small: { connections: 50, duration: QUICK ? 1 : 2, warmupSeconds: QUICK ? 1 : 3 },
  segment: { connections: 10, duration: QUICK ? 1 : 2, warmupSeconds: 1 },
  rounds: QUICK ? 2 : 3,
};
const ABORT = {
  total: { segment: QUICK ? 200 : 2000, stream: QUICK ? 100 : 200 },
  concurrency: 20,
  perRequestTimeoutMs: 3_000,
  loopDeadlineMs: 60_000,
  settleMs: 1_000,
  warmupRequests: 20,
  // Safety bound: a leaking proxy parks every aborted response's unread bytes in kernel socket buffers
  // (~0.5 MiB per 1 MiB segment here). Stop the loop early rather than push the host into tcp_mem pressure.
  kernelRxGuardBytes: 768 * 1024 * 1024,
};

const PROXY_KINDS = ['undici-stream', 'undici-request', 'undici-pipeline', 'http-proxy', 'http-proxy+close-fix'] as const;
type ProxyKind = (typeof PROXY_KINDS)[number];
type Target = 'direct' | ProxyKind;

const PROXY_DESCRIPTIONS: Record<Target, string> = {
  direct: 'autocannon -> origin (baseline)',
  'undici-stream': 'Pool.stream(opts, factory returning the ServerResponse)',
  'undici-request': 'await Pool.request() then stream.pipeline(body, res)',
  'undici-pipeline': 'stream.pipeline(req, Pool.pipeline(opts, handler), res)',
  'http-proxy': 'httpProxy.createProxyServer({ target, agent }).web(req, res), as documented',
  'http-proxy+close-fix': "same + on 'proxyReq': res.on('close', () => !res.writableFinished && proxyReq.destroy())",
};

// ---------------------------------------------------------------------------------------------
// IPC plumbing (tiny request/response protocol over the fork channel)
// ---------------------------------------------------------------------------------------------

interface RpcRequest {
  rpc: number;
  cmd: 'stats' | 'reset' | 'mem' | 'cpu';
}
interface RpcReply {
  rpc: number;
  data: unknown;
}
interface ReadyMessage {
  ready: true;
  port: number;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null;
}

function serveRpc(handler: (cmd: RpcRequest['cmd']) => unknown): void {
  process.on('message', (m: unknown) => {
    if (!isObject(m) || typeof m.rpc !== 'number' || typeof m.cmd !== 'string') return;
    const req = m as unknown as RpcRequest;
    let data: unknown;
    if (req.cmd === 'cpu') {
      const c = process.cpuUsage();
      data = c.user + c.system; // microseconds of CPU used by this process so far
    } else {
      data = handler(req.cmd);
    }
    const reply: RpcReply = { rpc: req.rpc, data };
    process.send?.(reply);
  });
  // Parent gone -> exit (never leave a stray server behind).
  process.on('disconnect', () => process.exit(0));
}

function announceReady(port: number): void {
  const msg: ReadyMessage = { ready: true, port };
  process.send?.(msg);
}

let rpcSeq = 0;
function rpc<T>(child: ChildProcess, cmd: RpcRequest['cmd'], timeoutMs = 10_000): Promise<T> {
  const id = ++rpcSeq;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.off('message', onMessage);
      reject(new Error(`rpc ${cmd} timed out`));
    }, timeoutMs);
    const onMessage = (m: unknown): void => {
      if (!isObject(m) || m.rpc !== id) return;
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve((m as unknown as RpcReply).data as T);
    };
    child.on('message', onMessage);
    const req: RpcRequest = { rpc: id, cmd };
    child.send(req);
  });
}

const SELF = fileURLToPath(import.meta.url);
const TSX_LOADER = import.meta.resolve('tsx');

interface Spawned {
  child: ChildProcess;
  port: number;
}

function spawnRole(args: string[]): Promise<Spawned> {
  return new Promise((resolve, reject) => {
    const child = fork(SELF, args, {
      execArgv: ['--expose-gc', '--import', TSX_LOADER],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child ${args.join(' ')} did not become ready`));
    }, 20_000);
    const onMessage = (m: unknown): void => {
      if (isObject(m) && m.ready === true && typeof m.port === 'number') {
        clearTimeout(timer);
        child.off('message', onMessage);
        resolve({ child, port: m.port });
      }
    };
    child.on('message', onMessage);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`child ${args.join(' ')} exited early (${String(code)})`));
    });
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
  await exited;
  clearTimeout(timer);
}

function now(): number {
  return performance.timeOrigin + performance.now();
}

// ---------------------------------------------------------------------------------------------
// Origin (child role)
// ---------------------------------------------------------------------------------------------

interface OriginRecord {
  startAt: number;
  closeAt: number | null;
  finished: boolean;
}

/** Counters for the tracked responses (segment + stream; the playlist is not tracked). Reset per phase. */
interface OriginStats {
  openSockets: number;
  connectionsAccepted: number;
  started: number;
  finished: number;
  closedWithoutFinish: number;
  inFlight: number;
  requestsWithBodyHeaders: number;
  records: Record<string, OriginRecord>;
}

function makePlaylist(): Buffer {
  const head = '#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:1042\n';
  let body = head;
  for (let i = 0; body.length < PLAYLIST_BYTES - 40; i++) body += `#EXTINF:6.000,\nseg-${1042 + i}.ts\n`;
  return Buffer.from(body.padEnd(PLAYLIST_BYTES, '\n'));
}

function makeSegment(): Buffer {
  const seg = Buffer.alloc(SEGMENT_BYTES, 0xff);
  for (let off = 0; off < SEGMENT_BYTES; off += 188) seg[off] = 0x47; // MPEG-TS sync bytes, cosmetic
  return seg;
}

async function originMain(): Promise<void> {
  const playlist = makePlaylist();
  const segment = makeSegment();
  const sockets = new Set<Socket>();
  let stats: OriginStats;
  const resetStats = (): void => {
    stats = {
      openSockets: 0,
      connectionsAccepted: 0,
      started: 0,
      finished: 0,
      closedWithoutFinish: 0,
      inFlight: 0,
      requestsWithBodyHeaders: 0,
      records: {},
    };
  };
  resetStats();

  const sendSegment = (res: ServerResponse): void => {
    let off = 0;
    const pump = (): void => {
      while (off < segment.length && !res.destroyed) {
        const end = Math.min(off + ORIGIN_CHUNK, segment.length);
        const chunk = segment.subarray(off, end);
        off = end;
        if (off === segment.length) {
          res.end(chunk);
          return;
        }
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
    };
    pump();
  };

  // Live stream: 64 KiB every STREAM_INTERVAL_MS with backpressure, until STREAM_CAP_BYTES.
  const sendStream = (res: ServerResponse): void => {
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    const tick = (): void => {
      if (res.destroyed) return;
      if (sent >= STREAM_CAP_BYTES) {
        res.end();
        return;
      }
      sent += ORIGIN_CHUNK;
      const schedule = (): void => {
        timer = setTimeout(tick, STREAM_INTERVAL_MS);
      };
      if (res.write(segment.subarray(0, ORIGIN_CHUNK))) schedule();
      else res.once('drain', schedule);
    };
    res.once('close', () => clearTimeout(timer));
    tick();
  };

  const server = http.createServer((req, res) => {
    if (req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0') stats.requestsWithBodyHeaders++;
    req.resume();
    if (req.url === PLAYLIST_PATH) {
      res.writeHead(200, { 'content-type': 'application/vnd.apple.mpegurl', 'content-length': playlist.length, 'cache-control': 'no-cache' });
      res.end(playlist);
      return;
    }
    if (req.url === SEGMENT_PATH || req.url === STREAM_PATH) {
      stats.started++;
      stats.inFlight++;
      const id = req.headers['x-req-id'];
      const rec: OriginRecord | null = typeof id === 'string' ? { startAt: now(), closeAt: null, finished: false } : null;
      if (rec && typeof id === 'string') stats.records[id] = rec;
      const s = stats; // a reset must not be polluted by late events of a previous phase
      res.once('finish', () => {
        s.finished++;
        if (rec) rec.finished = true;
      });
      res.once('close', () => {
        s.inFlight--;
        if (!res.writableFinished) s.closedWithoutFinish++;
        if (rec) rec.closeAt = now();
      });
      if (req.url === SEGMENT_PATH) {
        res.writeHead(200, { 'content-type': 'video/mp2t', 'content-length': segment.length });
        sendSegment(res);
      } else {
        res.writeHead(200, { 'content-type': 'video/mp2t' }); // no length: chunked, like a live channel
        sendStream(res);
      }
      return;
    }
    res.writeHead(404, { 'content-length': 0 });
    res.end();
  });
  server.on('connection', (socket) => {
    stats.connectionsAccepted++;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  serveRpc((cmd) => {
    if (cmd === 'reset') {
      resetStats();
      return true;
    }
    return { ...stats, openSockets: sockets.size };
  });
  server.listen(0, HOST, () => announceReady((server.address() as AddressInfo).port));
}

// ---------------------------------------------------------------------------------------------
// Proxies (child role)
// ---------------------------------------------------------------------------------------------

// The edge's own hop-by-hop list (RFC 9110 §7.6.1), plus Host, which every proxy here sets itself.
const HOP_BY_HOP: ReadonlySet<string> = new Set([...EDGE_HOP_BY_HOP, 'host']);

function forwardRequestHeaders(h: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

function forwardResponseHeaders(h: Record<string, string | string[] | undefined>): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

function failResponse(res: ServerResponse, err: unknown): void {
  if (res.destroyed) return;
  if (!res.headersSent) {
    res.writeHead(502, { 'content-type': 'text/plain', 'content-length': 11 });
    res.end('bad gateway');
  } else {
    res.destroy(err instanceof Error ? err : undefined);
  }
}

interface ProxyCounters {
  requests: number;
  clientClosedEarly: number; // res 'close' before 'finish' = client went away mid-response
  reqAbortedEvents: number; // the deprecated IncomingMessage 'aborted' event that http-proxy relies on
  upstreamAborted: number; // upstream request cancelled because the client went away (expected here)
  errors: number; // any other upstream error
  clientSockets: number;
}

interface ProxyMem {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  tcpHandles: number;
  counters: ProxyCounters;
  pool: Record<string, number>;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

function buildProxy(kind: ProxyKind, origin: string, counters: ProxyCounters): { handler: Handler; poolStats: () => Record<string, number> } {
  if (kind === 'undici-stream' || kind === 'undici-request' || kind === 'undici-pipeline') {
    // Unlimited connections (same as the http.Agent below): a leak shows up as growth, not as a stall.
    const pool = new Pool(origin, { connections: null, pipelining: 1, keepAliveTimeout: 4_000 });
    const poolStats = (): Record<string, number> => {
      const s = pool.stats;
      return { connected: s.connected, free: s.free, pending: s.pending, queued: s.queued, running: s.running, size: s.size };
    };
    const abortOnClientGone = (res: ServerResponse): AbortSignal => {
      const ac = new AbortController();
      res.once('close', () => {
        if (!res.writableFinished) ac.abort();
      });
      return ac.signal;
    };
    const onUpstreamError = (res: ServerResponse, err: unknown): void => {
      if (res.destroyed) counters.upstreamAborted++;
      else counters.errors++;
      failResponse(res, err);
    };

    if (kind === 'undici-stream') {
      return {
        poolStats,
        handler: (req, res) => {
          pool.stream(
            { path: req.url ?? '/', method: 'GET', headers: forwardRequestHeaders(req.headers), signal: abortOnClientGone(res), opaque: res },
            ({ statusCode, headers, opaque }) => {
              opaque.writeHead(statusCode, forwardResponseHeaders(headers));
              return opaque; // undici writes each chunk, honours write() === false / 'drain', then end()
            },
            (err) => {
              if (err) onUpstreamError(res, err);
            },
          );
        },
      };
    }

    if (kind === 'undici-request') {
      return {
        poolStats,
        handler: (req, res) => {
          pool
            .request({ path: req.url ?? '/', method: 'GET', headers: forwardRequestHeaders(req.headers), signal: abortOnClientGone(res) })
            .then(
              ({ statusCode, headers, body }) => {
                res.writeHead(statusCode, forwardResponseHeaders(headers));
                pipeline(body, res, (err) => {
                  if (err) onUpstreamError(res, err); // pipeline already destroyed both sides
                });
              },
              (err: unknown) => onUpstreamError(res, err),
            );
        },
      };
    }

    return {
      poolStats,
      handler: (req, res) => {
        const upstream = pool.pipeline(
          { path: req.url ?? '/', method: 'GET', headers: forwardRequestHeaders(req.headers), signal: abortOnClientGone(res) },
          ({ statusCode, headers, body }) => {
            res.writeHead(statusCode, forwardResponseHeaders(headers));
            return body;
          },
        );
        pipeline(req, upstream, res, (err) => {
          if (err) onUpstreamError(res, err);
        });
      },
    };
  }

  // http-proxy
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 256 });
  const proxy = httpProxy.createProxyServer({ target: origin, agent, xfwd: false });
  proxy.on('econnreset', () => counters.upstreamAborted++);
  proxy.on('error', (err, _req, res) => {
    counters.errors++;
    if (res instanceof http.ServerResponse) failResponse(res, err);
    else res.destroy();
  });
  if (kind === 'http-proxy+close-fix') {
    // The workaround from http-party/node-http-proxy#1559 / #1580, applied from outside the library.
    proxy.on('proxyReq', (proxyReq, _req, res) => {
      res.once('close', () => {
        if (!res.writableFinished) proxyReq.destroy();
      });
    });
  }
  const count = (m: NodeJS.ReadOnlyDict<readonly unknown[]>): number => Object.values(m).reduce((n, list) => n + (list?.length ?? 0), 0);
  return {
    poolStats: () => ({ sockets: count(agent.sockets), freeSockets: count(agent.freeSockets), queued: count(agent.requests) }),
    handler: (req, res) => proxy.web(req, res),
  };
}

async function proxyMain(kind: ProxyKind, originPort: number): Promise<void> {
  const counters: ProxyCounters = { requests: 0, clientClosedEarly: 0, reqAbortedEvents: 0, upstreamAborted: 0, errors: 0, clientSockets: 0 };
  const { handler, poolStats } = buildProxy(kind, `http://${HOST}:${originPort}`, counters);
  const server = http.createServer((req, res) => {
    counters.requests++;
    req.once('aborted', () => counters.reqAbortedEvents++);
    res.once('close', () => {
      if (!res.writableFinished) counters.clientClosedEarly++;
    });
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-length': 0 });
      res.end();
      return;
    }
    handler(req, res);
  });
  server.on('connection', (socket) => {
    counters.clientSockets++;
    socket.once('close', () => counters.clientSockets--);
  });
  serveRpc((cmd): ProxyMem | boolean => {
    if (cmd !== 'mem') return false;
    globalThis.gc?.();
    globalThis.gc?.();
    const m = process.memoryUsage();
    return {
      rss: m.rss,
      heapUsed: m.heapUsed,
      heapTotal: m.heapTotal,
      external: m.external,
      arrayBuffers: m.arrayBuffers,
      tcpHandles: process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length,
      counters: { ...counters },
      pool: poolStats(),
    };
  });
  server.listen(0, HOST, () => announceReady((server.address() as AddressInfo).port));
}

// ---------------------------------------------------------------------------------------------
// Parent: load phase
// ---------------------------------------------------------------------------------------------

interface LoadFigures {
  reqPerSec: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  throughputMiBs: number;
  totalRequests: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  loadAvg1: number;
  /** CPU time the proxy process (origin for `direct`) spent per completed request: robust to preemption. */
  proxyCpuUsPerReq: number;
  originCpuUsPerReq: number;
  ratioVsDirect: number | null;
}

interface LoadRow {
  target: Target;
  small: LoadFigures; // best round
  segment: LoadFigures; // best round
  smallRounds: LoadFigures[];
  segmentRounds: LoadFigures[];
}

async function cannon(
  port: number,
  urlPath: string,
  conf: { connections: number; duration: number; warmupSeconds: number },
  warmup: boolean,
  proxy: ChildProcess | null,
  origin: ChildProcess,
): Promise<LoadFigures> {
  const url = `http://${HOST}:${port}${urlPath}`;
  if (warmup) await autocannon({ url, connections: conf.connections, duration: conf.warmupSeconds, pipelining: 1, timeout: 10 });
  const o0 = await rpc<number>(origin, 'cpu');
  const p0 = proxy ? await rpc<number>(proxy, 'cpu') : o0;
  const r = await autocannon({ url, connections: conf.connections, duration: conf.duration, pipelining: 1, timeout: 10 });
  const o1 = await rpc<number>(origin, 'cpu');
  const p1 = proxy ? await rpc<number>(proxy, 'cpu') : o1;
  const done = Math.max(1, r.requests.total ?? r.latency.totalCount);
  return {
    reqPerSec: r.requests.average,
    latencyP50Ms: r.latency.p50,
    latencyP99Ms: r.latency.p99,
    throughputMiBs: r.throughput.average / (1024 * 1024),
    totalRequests: r.requests.total ?? r.latency.totalCount,
    errors: r.errors,
    timeouts: r.timeouts,
    non2xx: r.non2xx,
    loadAvg1: os.loadavg()[0] ?? 0,
    proxyCpuUsPerReq: (p1 - p0) / done,
    originCpuUsPerReq: (o1 - o0) / done,
    ratioVsDirect: null,
  };
}

// ---------------------------------------------------------------------------------------------
// Parent: abort-leak phase
// ---------------------------------------------------------------------------------------------

type Resource = 'segment' | 'stream';
const RESOURCE_PATH: Record<Resource, string> = { segment: SEGMENT_PATH, stream: STREAM_PATH };
type AbortOutcome = 'aborted' | 'timeout' | 'error' | 'completed';

interface AbortClientResult {
  sent: number;
  stoppedByKernelGuard: boolean;
  outcomes: Record<AbortOutcome, number>;
  abortAt: Map<string, number>;
  wallMs: number;
}

function fetchFull(port: number, agent: http.Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: HOST, port, path: SEGMENT_PATH, agent }, (res) => {
      let n = 0;
      res.on('data', (c: Buffer) => (n += c.length));
      res.on('end', () => resolve(n));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(5_000, () => req.destroy(new Error('warm-up request timed out')));
  });
}

function abortAfterFirstChunk(port: number, urlPath: string, agent: http.Agent, id: string, abortAt: Map<string, number>): Promise<AbortOutcome> {
  return new Promise((resolve) => {
    let done = false;
    const settle = (o: AbortOutcome): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(o);
    };
    const req = http.get({ host: HOST, port, path: urlPath, agent, headers: { 'x-req-id': id } }, (res) => {
      res.on('error', () => undefined); // destroy() below makes the response emit 'aborted'/'error'
      res.once('data', () => {
        abortAt.set(id, now());
        req.destroy();
        settle('aborted');
      });
      res.once('end', () => settle('completed'));
    });
    req.on('error', () => settle('error'));
    const timer = setTimeout(() => {
      req.destroy();
      settle('timeout');
    }, ABORT.perRequestTimeoutMs);
  });
}

/** Bounded: at most `total` requests, `concurrency` in flight, and a hard wall-clock deadline. */
async function runAbortClient(port: number, resource: Resource, originPort: number): Promise<AbortClientResult> {
  const total = ABORT.total[resource];
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  const outcomes: Record<AbortOutcome, number> = { aborted: 0, timeout: 0, error: 0, completed: 0 };
  const abortAt = new Map<string, number>();
  const t0 = Date.now();
  const deadline = t0 + ABORT.loopDeadlineMs;
  let next = 0;
  let stoppedByKernelGuard = false;
  const worker = async (): Promise<void> => {
    while (next < total && Date.now() < deadline && !stoppedByKernelGuard) {
      const n = next++;
      if (n % 100 === 99 && (kernelView(originPort)?.upstreamRxQueuedBytes ?? 0) > ABORT.kernelRxGuardBytes) {
        stoppedByKernelGuard = true;
        break;
      }
      outcomes[await abortAfterFirstChunk(port, RESOURCE_PATH[resource], agent, `${resource}-${n}`, abortAt)]++;
    }
  };
  await Promise.all(Array.from({ length: ABORT.concurrency }, () => worker()));
  agent.destroy();
  return { sent: abortAt.size + outcomes.timeout + outcomes.error + outcomes.completed, stoppedByKernelGuard, outcomes, abortAt, wallMs: Date.now() - t0 };
}

/**
 * Kernel view (Linux /proc/net/tcp, IPv4): sockets whose REMOTE port is the origin (the proxy's upstream
 * sockets, or the client's for `direct`), by TCP state, and the bytes sitting unread in their receive
 * queues. A proxy that pauses an upstream response and forgets it shows up here as ESTABLISHED /
 * CLOSE_WAIT sockets with a full rx queue, whatever its own bookkeeping says.
 */
interface KernelView {
  upstreamByState: Record<string, number>;
  upstreamOpen: number;
  upstreamRxQueuedBytes: number;
  originSideOpen: number;
}

const TCP_STATES: Record<string, string> = {
  '01': 'ESTABLISHED',
  '02': 'SYN_SENT',
  '03': 'SYN_RECV',
  '04': 'FIN_WAIT1',
  '05': 'FIN_WAIT2',
  '06': 'TIME_WAIT',
  '07': 'CLOSE',
  '08': 'CLOSE_WAIT',
  '09': 'LAST_ACK',
  '0A': 'LISTEN',
  '0B': 'CLOSING',
};

function kernelView(originPort: number): KernelView | null {
  let text: string;
  try {
    text = readFileSync('/proc/net/tcp', 'utf8');
  } catch {
    return null;
  }
  const view: KernelView = { upstreamByState: {}, upstreamOpen: 0, upstreamRxQueuedBytes: 0, originSideOpen: 0 };
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    const local = f[1];
    const remote = f[2];
    const st = f[3];
    const queues = f[4];
    if (!local || !remote || !st || !queues) continue;
    const localPort = parseInt(local.split(':')[1] ?? '', 16);
    const remotePort = parseInt(remote.split(':')[1] ?? '', 16);
    const state = TCP_STATES[st] ?? st;
    const open = state !== 'TIME_WAIT' && state !== 'LISTEN' && state !== 'CLOSE';
    if (remotePort === originPort) {
      view.upstreamByState[state] = (view.upstreamByState[state] ?? 0) + 1;
      if (open) view.upstreamOpen++;
      view.upstreamRxQueuedBytes += parseInt(queues.split(':')[1] ?? '0', 16);
    } else if (localPort === originPort && open) {
      view.originSideOpen++;
    }
  }
  return view;
}

interface AbortRow {
  target: Target;
  resource: Resource;
  clientSent: number;
  clientStoppedByKernelGuard: boolean;
  clientOutcomes: Record<AbortOutcome, number>;
  clientWallMs: number;
  originConnectionsAccepted: number;
  originClosedWithoutFinish: number;
  originFinishedAnyway: number;
  originInFlightAfterSettle: number;
  originOpenSocketsAfterSettle: number;
  originNeverSawRequest: number;
  originRequestsWithBodyHeaders: number;
  abortToOriginCloseP50Ms: number | null;
  abortToOriginCloseP99Ms: number | null;
  abortToOriginCloseMaxMs: number | null;
  kernelAfterSettle: KernelView | null;
  proxyHeapDeltaMiB: number | null;
  proxyRssDeltaMiB: number | null;
  proxyExternalDeltaMiB: number | null;
  proxyTcpHandlesAfter: number | null;
  proxyPoolAfter: Record<string, number> | null;
  proxyCountersAfter: ProxyCounters | null;
}

function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const idx = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, idx)] ?? null;
}

const MiB = 1024 * 1024;
const r1 = (x: number): number => Math.round(x * 10) / 10;

async function abortPhase(target: Target, resource: Resource, origin: Spawned): Promise<AbortRow> {
  const proxy = target === 'direct' ? null : await spawnRole(['--role', 'proxy', target, String(origin.port)]);
  try {
    const port = proxy ? proxy.port : origin.port;
    // Warm-up: full fetches so lazy init (pool, JIT, buffers) is not counted as growth.
    const warmAgent = new http.Agent({ keepAlive: true });
    for (let i = 0; i < ABORT.warmupRequests; i++) {
      const n = await fetchFull(port, warmAgent);
      if (n !== SEGMENT_BYTES) throw new Error(`${target}: warm-up got ${n} bytes`);
    }
    warmAgent.destroy();
    await sleep(200);
    await rpc(origin.child, 'reset');
    const before = proxy ? await rpc<ProxyMem>(proxy.child, 'mem') : null;

    const client = await runAbortClient(port, resource, origin.port);
    await sleep(ABORT.settleMs);

    const o = await rpc<OriginStats>(origin.child, 'stats');
    const kernel = kernelView(origin.port);
    const after = proxy ? await rpc<ProxyMem>(proxy.child, 'mem') : null;

    const delays: number[] = [];
    let closedWithoutFinish = 0;
    let finishedAnyway = 0;
    let neverSaw = 0;
    for (const [id, at] of client.abortAt) {
      const rec = o.records[id];
      if (!rec) {
        neverSaw++;
        continue;
      }
      if (rec.finished) finishedAnyway++;
      else if (rec.closeAt !== null) {
        closedWithoutFinish++;
        delays.push(Math.max(0, rec.closeAt - at));
      }
    }
    delays.sort((a, b) => a - b);
    const d = (p: number): number | null => {
      const v = percentile(delays, p);
      return v === null ? null : r1(v);
    };
    return {
      target,
      resource,
      clientSent: client.sent,
      clientStoppedByKernelGuard: client.stoppedByKernelGuard,
      clientOutcomes: client.outcomes,
      clientWallMs: client.wallMs,
      originConnectionsAccepted: o.connectionsAccepted,
      originClosedWithoutFinish: closedWithoutFinish,
      originFinishedAnyway: finishedAnyway,
      originInFlightAfterSettle: o.inFlight,
      originOpenSocketsAfterSettle: o.openSockets,
      originNeverSawRequest: neverSaw,
      originRequestsWithBodyHeaders: o.requestsWithBodyHeaders,
      abortToOriginCloseP50Ms: d(50),
      abortToOriginCloseP99Ms: d(99),
      abortToOriginCloseMaxMs: d(100),
      kernelAfterSettle: kernel,
      proxyHeapDeltaMiB: before && after ? r1((after.heapUsed - before.heapUsed) / MiB) : null,
      proxyRssDeltaMiB: before && after ? r1((after.rss - before.rss) / MiB) : null,
      proxyExternalDeltaMiB: before && after ? r1((after.external - before.external) / MiB) : null,
      proxyTcpHandlesAfter: after ? after.tcpHandles : null,
      proxyPoolAfter: after ? after.pool : null,
      proxyCountersAfter: after ? after.counters : null,
    };
  } finally {
    if (proxy) await stopChild(proxy.child);
    await sleep(300); // let the origin see the proxy's sockets close before the next phase
  }
}

// ---------------------------------------------------------------------------------------------
// Parent: report
// ---------------------------------------------------------------------------------------------

function f(x: number | null | undefined, digits = 1): string {
  if (x === null || x === undefined) return 'n/a';
  return x.toLocaleString('en-US', { maximumFractionDigits: digits });
}

function table(header: string[], rows: string[][]): string {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

function abortTable(rows: AbortRow[]): string {
  return table(
    [
      'target',
      'client aborted / timed out',
      'origin conns opened',
      'origin: closed w/o finish',
      'origin: finished anyway',
      'abort→origin close p50 / p99 ms',
      'origin in-flight after settle',
      'origin open sockets after settle',
      'kernel: upstream sockets open / rx-queued KiB',
      'proxy heap Δ / RSS Δ MiB',
      "proxy: res closed early / req 'aborted' fired",
    ],
    rows.map((a) => [
      a.target,
      `${a.clientOutcomes.aborted} / ${a.clientOutcomes.timeout}${a.clientStoppedByKernelGuard ? ' (stopped: kernel-memory guard)' : ''}`,
      f(a.originConnectionsAccepted, 0),
      f(a.originClosedWithoutFinish, 0),
      f(a.originFinishedAnyway, 0),
      `${f(a.abortToOriginCloseP50Ms)} / ${f(a.abortToOriginCloseP99Ms)}`,
      f(a.originInFlightAfterSettle, 0),
      f(a.originOpenSocketsAfterSettle, 0),
      a.kernelAfterSettle ? `${a.kernelAfterSettle.upstreamOpen} / ${f(a.kernelAfterSettle.upstreamRxQueuedBytes / 1024, 0)}` : 'n/a',
      a.proxyHeapDeltaMiB === null ? 'n/a' : `${f(a.proxyHeapDeltaMiB)} / ${f(a.proxyRssDeltaMiB)}`,
      a.proxyCountersAfter ? `${a.proxyCountersAfter.clientClosedEarly} / ${a.proxyCountersAfter.reqAbortedEvents}` : 'n/a',
    ]),
  );
}

async function parentMain(): Promise<void> {
  const started = Date.now();
  const loadAvgAtStart = os.loadavg()[0] ?? 0;
  const log = (s: string): void => {
    process.stderr.write(`[forward-path +${((Date.now() - started) / 1000).toFixed(0)}s] ${s}\n`);
  };
  const origin = await spawnRole(['--role', 'origin']);
  log(`origin on ${HOST}:${origin.port}`);
  const targets: Target[] = ['direct', ...PROXY_KINDS];
  const load: LoadRow[] = [];
  const aborts: AbortRow[] = [];
  try {
    // Load: all proxies up at once (idle ones cost nothing), rounds interleaved across targets.
    const proxies = new Map<Target, Spawned>();
    try {
      const spawned = await Promise.allSettled(PROXY_KINDS.map((kind) => spawnRole(['--role', 'proxy', kind, String(origin.port)])));
      PROXY_KINDS.forEach((kind, i) => {
        const sp = spawned[i];
        if (sp?.status === 'fulfilled') proxies.set(kind, sp.value);
      });
      const failed = spawned.find((x): x is PromiseRejectedResult => x.status === 'rejected');
      if (failed) throw failed.reason;
      const rounds = new Map<Target, { small: LoadFigures[]; segment: LoadFigures[] }>(targets.map((t) => [t, { small: [], segment: [] }]));
      for (let round = 1; round <= LOAD.rounds; round++) {
        for (const target of round % 2 === 1 ? targets : [...targets].reverse()) {
          const proxy = proxies.get(target);
          const port = proxy?.port ?? origin.port;
          const warm = round === 1;
          log(`load round ${round} ${target}: playlist x${LOAD.small.connections} conns ${LOAD.small.duration}s, segment x${LOAD.segment.connections} conns ${LOAD.segment.duration}s`);
          const bucket = rounds.get(target);
          bucket?.small.push(await cannon(port, PLAYLIST_PATH, LOAD.small, warm, proxy?.child ?? null, origin.child));
          bucket?.segment.push(await cannon(port, SEGMENT_PATH, LOAD.segment, warm, proxy?.child ?? null, origin.child));
        }
      }
      const best = (xs: LoadFigures[]): LoadFigures => {
        const b = xs.reduce<LoadFigures | undefined>((acc, x) => (!acc || x.reqPerSec > acc.reqPerSec ? x : acc), undefined);
        if (!b) throw new Error('no load rounds');
        return b;
      };
      for (const target of targets) {
        const b = rounds.get(target);
        if (b) load.push({ target, small: best(b.small), segment: best(b.segment), smallRounds: b.small, segmentRounds: b.segment });
      }
    } finally {
      for (const p of proxies.values()) await stopChild(p.child);
    }
    for (const resource of ['segment', 'stream'] as const) {
      for (const target of targets) {
        log(`abort-leak ${target}: ${ABORT.total[resource]} x ${RESOURCE_PATH[resource]}, abort after first chunk`);
        aborts.push(await abortPhase(target, resource, origin));
      }
    }
  } finally {
    await stopChild(origin.child);
  }

  const direct = load.find((r) => r.target === 'direct');
  for (const r of load) {
    if (!direct) break;
    r.small.ratioVsDirect = r.small.reqPerSec / direct.small.reqPerSec;
    r.segment.ratioVsDirect = r.segment.reqPerSec / direct.segment.reqPerSec;
  }

  const others = (rounds: LoadFigures[], best: LoadFigures): string =>
    rounds
      .filter((x) => x !== best)
      .map((x) => f(x.reqPerSec, 0))
      .join(', ');
  const minCpu = (rounds: LoadFigures[]): number => Math.min(...rounds.map((x) => x.proxyCpuUsPerReq));
  const out: string[] = [];
  out.push(`## Forward path (node ${process.version}, ${os.cpus().length} cores, ${new Date().toISOString()}${QUICK ? ', QUICK MODE' : ''})`);
  out.push('');
  out.push(
    `### Load: autocannon, playlist ${PLAYLIST_BYTES} B x ${LOAD.small.connections} connections, 1 MiB segment x ${LOAD.segment.connections} connections, ${LOAD.small.duration} s per run, best of ${LOAD.rounds} interleaved rounds (other rounds in parentheses)`,
  );
  out.push('');
  out.push(
    table(
      [
        'target',
        'playlist req/s',
        'p50 ms',
        'p99 ms',
        'vs direct',
        'CPU µs/req*',
        'segment req/s',
        'p50 ms',
        'p99 ms',
        'MiB/s',
        'vs direct',
        'CPU µs/req*',
        'errors/timeouts/non2xx',
      ],
      load.map((r) => [
        r.target,
        `${f(r.small.reqPerSec, 0)} (${others(r.smallRounds, r.small)})`,
        f(r.small.latencyP50Ms),
        f(r.small.latencyP99Ms),
        r.small.ratioVsDirect === null ? 'n/a' : `${f(r.small.ratioVsDirect * 100, 0)}%`,
        f(minCpu(r.smallRounds), 0),
        `${f(r.segment.reqPerSec, 0)} (${others(r.segmentRounds, r.segment)})`,
        f(r.segment.latencyP50Ms),
        f(r.segment.latencyP99Ms),
        f(r.segment.throughputMiBs, 0),
        r.segment.ratioVsDirect === null ? 'n/a' : `${f(r.segment.ratioVsDirect * 100, 0)}%`,
        f(minCpu(r.segmentRounds), 0),
        `${r.small.errors + r.segment.errors}/${r.small.timeouts + r.segment.timeouts}/${r.small.non2xx + r.segment.non2xx}`,
      ]),
    ),
  );
  out.push('');
  out.push(
    '\\* CPU µs/req: user+system CPU of the proxy process per completed request, lowest over the rounds (for `direct`: the origin). ' +
      'Less sensitive than req/s to other processes stealing the cores, but still noisy for the 1 MiB runs (a few hundred requests each); ' +
      'all rounds and the origin CPU per request are in the JSON.',
  );
  out.push('');
  out.push(
    `### Abort leak (a): ${ABORT.total.segment} x 1 MiB segment, client destroys the request on the first body chunk (${ABORT.concurrency} in flight), ${ABORT.settleMs} ms settle`,
  );
  out.push('');
  out.push(abortTable(aborts.filter((a) => a.resource === 'segment')));
  out.push('');
  out.push(
    `### Abort leak (b): ${ABORT.total.stream} x live HTTP-TS stream (64 KiB / ${STREAM_INTERVAL_MS} ms, capped at ${STREAM_CAP_BYTES / MiB} MiB), same client behaviour`,
  );
  out.push('');
  out.push(abortTable(aborts.filter((a) => a.resource === 'stream')));
  out.push('');
  for (const t of targets) out.push(`- \`${t}\`: ${PROXY_DESCRIPTIONS[t]}`);
  out.push('');
  out.push(
    `Note: ${os.cpus().length} cores shared by autocannon, origin and proxy (3 busy processes); absolute figures are machine-bound, compare ratios. ` +
      `1-min load average at start ${f(loadAvgAtStart, 2)}, end ${f(os.loadavg()[0], 2)} (anything above ~2 here means other work competed for the cores).`,
  );
  out.push(`Total wall time ${((Date.now() - started) / 1000).toFixed(1)} s.`);
  console.log(out.join('\n'));

  const dir = path.join(path.dirname(SELF), 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, QUICK ? 'forward-path.quick.json' : 'forward-path.json');
  const meta = {
    date: new Date().toISOString(),
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    quick: QUICK,
    loadAvg1AtStart: loadAvgAtStart,
    loadAvg1AtEnd: os.loadavg()[0] ?? 0,
    load: LOAD,
    abort: ABORT,
    stream: { intervalMs: STREAM_INTERVAL_MS, chunkBytes: ORIGIN_CHUNK, capBytes: STREAM_CAP_BYTES },
    proxies: PROXY_DESCRIPTIONS,
    wallSeconds: (Date.now() - started) / 1000,
  };
  writeFileSync(file, `${JSON.stringify({ meta, load, aborts }, null, 2)}\n`);
  console.log(`\nJSON written to ${path.relative(process.cwd(), file)}`);
}

// ---------------------------------------------------------------------------------------------
// Entry
// ---------------------------------------------------------------------------------------------

const roleIdx = process.argv.indexOf('--role');
if (roleIdx === -1) {
  await parentMain();
} else {
  const role = process.argv[roleIdx + 1];
  if (role === 'origin') {
    await originMain();
  } else if (role === 'proxy') {
    const kind = process.argv[roleIdx + 2];
    const originPort = Number(process.argv[roleIdx + 3]);
    if (!PROXY_KINDS.includes(kind as ProxyKind) || !Number.isInteger(originPort)) throw new Error(`bad proxy args: ${process.argv.join(' ')}`);
    await proxyMain(kind as ProxyKind, originPort);
  } else {
    throw new Error(`unknown role ${String(role)}`);
  }
}
