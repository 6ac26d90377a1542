/**
 * Every metric of the edge, on a registry of its own (no prom-client global:
 * two edges can live in one process). Labels come from small fixed sets only;
 * never a session ID, token, IP, user or path. Every combination of those
 * sets is created at zero up front, so `rate()` sees the first increment and
 * dashboards show 0 rather than "no data".
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { BatchedCounter, BatchedHistogram, type Inc, type Observe } from './batched.js';
import { STORE_TIERS, type StoreTier, type TierStats } from '../session/store.js';

export type RequestKind = 'playlist' | 'segment' | 'stream' | 'other';
export type StatusClass = '2xx' | '3xx' | '4xx' | '5xx';
export type DecisionResult = 'allow' | 'deny';
export type DecisionMetricSource = 'cache' | 'backend' | 'coalesced' | 'rule' | 'default';
export type BackendOutcome = 'allow' | 'deny' | 'timeout' | 'refused' | 'http_5xx' | 'invalid';
export type UpstreamOutcome = 'ok' | 'refused' | 'reset' | 'timeout' | 'invalid' | 'aborted';
/** Which listener's request handler threw (a bug the edge survived). */
export type Listener = 'public' | 'admin';
/** What escaped every request handler and reached the process (a bug the edge survived). */
export type UncaughtKind = 'exception' | 'rejection';
/** How a middleware call ended after the edge stopped waiting for it (its viewer already had an answer). */
export type LateEnd = 'answered' | 'failed' | 'abandoned';
/** A session's first check, or the re-check of a granted session. */
export type CheckKind = 'new' | 'recheck';
/** pool: refused, upstream.streamConnections reached; session: the session's oldest closed, session.maxStreams reached. */
export type StreamLimit = 'pool' | 'session';

/**
 * prom-client's default metrics that break Prometheus naming: gauges ending in `_total`
 * (`promtool check metrics` exits 3 on them). Each is the sum of the per-type gauge of the same
 * family, which stays: `sum without (type) (nodejs_active_handles)` gives the same number.
 */
export const DROPPED_DEFAULT_METRICS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'] as const;

/** Label values a middleware can make us create, at most. */
const MAX_DENY_REASONS = 50;

const REQUEST_KINDS: readonly RequestKind[] = ['playlist', 'segment', 'stream', 'other'];
const STATUS_CLASSES: readonly StatusClass[] = ['2xx', '3xx', '4xx', '5xx'];
const DECISION_RESULTS: readonly DecisionResult[] = ['allow', 'deny'];
const DECISION_SOURCES: readonly DecisionMetricSource[] = ['cache', 'backend', 'coalesced', 'rule', 'default'];
const BACKEND_OUTCOMES: readonly BackendOutcome[] = ['allow', 'deny', 'timeout', 'refused', 'http_5xx', 'invalid'];
const UPSTREAM_OUTCOMES: readonly UpstreamOutcome[] = ['ok', 'refused', 'reset', 'timeout', 'invalid', 'aborted'];
const LISTENERS: readonly Listener[] = ['public', 'admin'];
const UNCAUGHT_KINDS: readonly UncaughtKind[] = ['exception', 'rejection'];
const LATE_ENDS: readonly LateEnd[] = ['answered', 'failed', 'abandoned'];
const CHECK_KINDS: readonly CheckKind[] = ['new', 'recheck'];
const STREAM_LIMITS: readonly StreamLimit[] = ['pool', 'session'];

/**
 * What the edge asks the fleet's shared store (session/redis.ts), as metric labels:
 * connect (the connection itself), admit (a new session's per-user limit), release, publish
 * (sessions listed and refreshed), end (kicks, denies, limits sent to the fleet), find (a session
 * this edge does not hold), list (the admin API's table), subscribe (ends from other edges).
 */
export const STORE_OPS = ['connect', 'admit', 'release', 'publish', 'end', 'find', 'list', 'subscribe'] as const;
export type StoreOp = (typeof STORE_OPS)[number];
/** The store calls a request or the admin API waits for. */
export const STORE_AWAITED_OPS = ['admit', 'find', 'list'] as const;
export type StoreAwaitedOp = (typeof STORE_AWAITED_OPS)[number];
/** Seconds: a Redis round trip on a LAN is ~0.2 ms; the edge gives up at 250 ms (session/redis.ts). */
const STORE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5];

/** Seconds; the auth step of a cache hit costs microseconds, a middleware call milliseconds. */
const AUTH_BUCKETS = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** A guarded middleware's load, read at scrape time (auth/guarded.ts). */
export interface BackendLoad {
  readonly name: string;
  /** Calls holding a slot: sent and not yet over, late ones included. */
  readonly inFlight: number;
  /** Calls waiting for a slot. */
  readonly queued: number;
}

export interface StoreStats {
  stats(tier: StoreTier): TierStats;
}

/** Read at scrape time (STYLE §8: gauges are computed, not tracked). */
export interface MetricSources {
  readonly store: StoreStats;
  readonly activeSessions: () => Readonly<Record<'hls' | 'mpegts', number>>;
  /** MPEG-TS streams holding an upstream connection of the stream pool. */
  readonly openStreams?: () => number;
  /** The edge cache's index (bytes held, entries, evictions), when there is one. */
  readonly cache?: { readonly bytes: number; readonly entries: number; readonly evictions: number };
  /** MPEG-TS fan-out: shared upstream connections and the viewers on them. */
  readonly fanout?: { readonly channelCount: number; readonly viewerCount: number };
  /** Whether the fleet's shared store answers (always true with the memory store). */
  readonly storeUp?: () => boolean;
}

/** What the edge cache did for a request. */
export type CacheResultLabel = 'hit' | 'miss' | 'coalesced' | 'bypass';
export type CacheKindLabel = 'segment' | 'playlist';
const CACHE_RESULTS: readonly CacheResultLabel[] = ['hit', 'miss', 'coalesced', 'bypass'];
const CACHE_KINDS: readonly CacheKindLabel[] = ['segment', 'playlist'];
/** Why a fan-out viewer was dropped. */
export type FanoutDrop = 'stall' | 'overflow';
const FANOUT_DROPS: readonly FanoutDrop[] = ['stall', 'overflow'];

export const CLOSE_REASONS = ['idle', 'disconnected', 'kicked', 'denied', 'unique', 'limit', 'evicted', 'shutdown'] as const;
export type SessionCloseReason = (typeof CLOSE_REASONS)[number];

export class EdgeMetrics {
  readonly registry = new Registry();
  private readonly cacheRequests: Record<CacheKindLabel, Record<CacheResultLabel, Inc>>;
  private readonly upstreamBytes: Record<RequestKind, Inc>;
  private readonly fanoutDrops: Record<FanoutDrop, Inc>;
  private readonly adopted: Inc;
  private readonly requests: Record<RequestKind, Record<StatusClass, Inc>>;
  private readonly decisions: Record<DecisionResult, Record<DecisionMetricSource, Inc>>;
  private readonly authDuration: Record<DecisionMetricSource, Observe>;
  private readonly upstream: Record<UpstreamOutcome, Inc>;
  private readonly bytes: Record<RequestKind, Inc>;
  private readonly stalls: Record<RequestKind, Inc>;
  private readonly streamLimits: Record<StreamLimit, Inc>;
  private readonly backendRequests: BatchedCounter<'backend' | 'outcome'>;
  private readonly backendDuration: BatchedHistogram;
  /** Each configured middleware's series, made once (backendConfigured). */
  private readonly backendSeries = new Map<string, { readonly outcomes: Record<BackendOutcome, Inc>; readonly duration: Observe }>();
  private readonly backendDenials: Counter<'backend' | 'reason'>;
  private readonly backendShed: Counter<'backend'>;
  private readonly backendLate: Counter<'backend' | 'end'>;
  private readonly backendLoads = new Set<BackendLoad>();
  private readonly shed: Record<CheckKind, Inc>;
  private readonly denyReasons = new Set<string>();
  private readonly requestDuration: Record<RequestKind, Observe>;
  private readonly opened: Inc;
  private readonly resumed: Inc;
  private readonly closed: Record<SessionCloseReason, Inc>;
  private readonly internalErrors: Record<Listener, Inc>;
  private readonly uncaughtErrors: Record<UncaughtKind, Inc>;
  private readonly failureModeAllowed: Inc;
  private readonly storeErrors: Record<StoreOp, Inc>;
  private readonly storeLatency: Record<StoreAwaitedOp, Observe>;
  readonly upstreamDuration: Observe;

  constructor(sources: MetricSources, options: { processMetrics?: boolean } = {}) {
    const store = sources.store;
    const registers = [this.registry];
    if (options.processMetrics !== false) {
      collectDefaultMetrics({ register: this.registry });
      for (const name of DROPPED_DEFAULT_METRICS) this.registry.removeSingleMetric(name);
    }

    // The metrics of every request, session and middleware call are batched (batched.ts): plain numbers here, prom-client's at each read.
    const requests = new BatchedCounter({ name: 'edge_requests_total', help: 'Client requests answered, by kind and status class.', labelNames: ['kind', 'code'] as const, registers });
    this.requests = table(REQUEST_KINDS, (kind) => table(STATUS_CLASSES, (code) => requests.series(kind, code)));

    const requestDuration = new BatchedHistogram({ name: 'edge_request_duration_seconds', help: 'Time to the first response byte to the client (response headers), by kind.', labelNames: ['kind'], buckets: LATENCY_BUCKETS, registers });
    this.requestDuration = table(REQUEST_KINDS, (kind) => requestDuration.series(kind));

    const decisions = new BatchedCounter({
      name: 'edge_auth_decisions_total',
      help: 'Requests authorized, by result and where the decision applied to each came from: backend (this request waited for a middleware call), coalesced (joined another request\'s call), cache (a stored middleware answer, or a stored rule decision), rule (a local rule decided for this request), default (the default action, made for this request or stored: the middleware was unavailable or none is configured).',
      labelNames: ['result', 'source'] as const,
      registers,
    });
    this.decisions = table(DECISION_RESULTS, (result) => table(DECISION_SOURCES, (source) => decisions.series(result, source)));

    const authDuration = new BatchedHistogram({ name: 'edge_auth_duration_seconds', help: 'Time of the whole authorize step per request, by decision source.', labelNames: ['source'], buckets: AUTH_BUCKETS, registers });
    this.authDuration = table(DECISION_SOURCES, (source) => authDuration.series(source));

    this.backendRequests = new BatchedCounter({ name: 'edge_auth_backend_requests_total', help: 'Middleware calls by backend and outcome.', labelNames: ['backend', 'outcome'] as const, registers });
    this.backendDenials = new Counter({ name: 'edge_auth_backend_denials_total', help: 'Middleware denies by backend and reason code.', labelNames: ['backend', 'reason'] as const, registers });
    this.backendDuration = new BatchedHistogram({ name: 'edge_auth_backend_duration_seconds', help: 'Middleware call duration by backend.', labelNames: ['backend'], buckets: LATENCY_BUCKETS, registers });

    this.backendShed = new Counter({ name: 'edge_auth_backend_shed_total', help: 'Calls the edge never sent to this middleware: no free slot (backend.concurrency) within backend.timeout, or the queue full.', labelNames: ['backend'] as const, registers });
    this.backendLate = new Counter({
      name: 'edge_auth_backend_late_total',
      help: 'Middleware calls that ended after the edge stopped waiting for them (timeout, or another backend allowed), by how: answered (discarded), failed, or abandoned (the connection closed at the hard limit, a multiple of backend.timeout).',
      labelNames: ['backend', 'end'] as const,
      registers,
    });
    const loads = this.backendLoads;
    const sumLoads = (field: 'inFlight' | 'queued'): Map<string, number> => {
      const sums = new Map<string, number>();
      for (const load of loads) sums.set(load.name, (sums.get(load.name) ?? 0) + load[field]);
      return sums;
    };
    new Gauge({
      name: 'edge_auth_backend_in_flight',
      help: 'Middleware calls holding a slot (at most backend.concurrency): sent and not yet over, late ones included.',
      labelNames: ['backend'] as const,
      registers,
      collect() {
        this.reset();
        for (const [backend, n] of sumLoads('inFlight')) this.set({ backend }, n);
      },
    });
    new Gauge({
      name: 'edge_auth_backend_queued',
      help: 'Middleware calls waiting for a slot.',
      labelNames: ['backend'] as const,
      registers,
      collect() {
        this.reset();
        for (const [backend, n] of sumLoads('queued')) this.set({ backend }, n);
      },
    });
    const shed = new Counter({ name: 'edge_auth_shed_total', help: 'Session checks the edge shed because the middleware queue was full or too slow: a new session got 503 + Retry-After, a re-check kept the stale decision.', labelNames: ['check'] as const, registers });
    this.shed = table(CHECK_KINDS, (check) => zeroed(shed.labels(check)));

    this.failureModeAllowed = new Counter({
      name: 'edge_auth_failure_mode_allowed_total',
      help: 'Requests allowed by the default action because the middleware was unavailable: the part of edge_auth_decisions_total{result="allow",source="default"} that is an outage (the rest: no middleware configured).',
      registers,
    });

    const upstream = new BatchedCounter({ name: 'edge_upstream_requests_total', help: 'Requests forwarded upstream, by outcome.', labelNames: ['outcome'] as const, registers });
    this.upstream = table(UPSTREAM_OUTCOMES, (outcome) => upstream.series(outcome));
    this.upstreamDuration = new BatchedHistogram({ name: 'edge_upstream_duration_seconds', help: 'Time to upstream response headers.', buckets: LATENCY_BUCKETS, registers }).series();

    const bytes = new BatchedCounter({ name: 'edge_bytes_sent_total', help: 'Body bytes sent to clients, by kind.', labelNames: ['kind'] as const, registers });
    this.bytes = table(REQUEST_KINDS, (kind) => bytes.series(kind));

    const stalls = new Counter({ name: 'edge_client_stalls_total', help: 'Clients dropped for accepting no bytes for proxy.clientStallTimeout (their upstream request released), by kind.', labelNames: ['kind'] as const, registers });
    this.stalls = table(REQUEST_KINDS, (kind) => zeroed(stalls.labels(kind)));
    const streamLimits = new Counter({
      name: 'edge_streams_limited_total',
      help: 'MPEG-TS streams refused because upstream.streamConnections were open (limit="pool"), or closed because their session opened more than session.maxStreams (limit="session").',
      labelNames: ['limit'] as const,
      registers,
    });
    this.streamLimits = table(STREAM_LIMITS, (limit) => zeroed(streamLimits.labels(limit)));
    const openStreams = sources.openStreams;
    new Gauge({ name: 'edge_upstream_streams', help: 'MPEG-TS streams open on the upstream stream pool (at most upstream.streamConnections).', registers, collect() { this.set(openStreams?.() ?? 0); } });

    new Gauge({
      name: 'edge_sessions_active',
      help: 'Open sessions (in the session table), by kind.',
      labelNames: ['kind'] as const,
      registers,
      collect() {
        const counts = sources.activeSessions();
        this.set({ kind: 'hls' }, counts.hls);
        this.set({ kind: 'mpegts' }, counts.mpegts);
      },
    });
    this.opened = new BatchedCounter({ name: 'edge_sessions_opened_total', help: 'Sessions opened: once per session (its first request that was allowed).', registers }).series();
    this.resumed = new BatchedCounter({
      name: 'edge_sessions_resumed_total',
      help: 'Closed sessions opened again on their kept decision (an MPEG-TS reconnect, an HLS player back from idling); opened + resumed - closed = active.',
      registers,
    }).series();
    const closed = new BatchedCounter({ name: 'edge_sessions_closed_total', help: 'Sessions closed, by reason.', labelNames: ['reason'] as const, registers });
    this.closed = table(CLOSE_REASONS, (reason) => closed.series(reason));

    const internal = new Counter({ name: 'edge_internal_errors_total', help: 'Requests whose handler threw or rejected unexpectedly (answered 500, the edge kept running), by listener.', labelNames: ['listener'] as const, registers });
    this.internalErrors = table(LISTENERS, (listener) => zeroed(internal.labels(listener)));
    const uncaught = new Counter({ name: 'edge_uncaught_errors_total', help: 'Exceptions and promise rejections that escaped every handler (logged, the edge kept running), by kind.', labelNames: ['kind'] as const, registers });
    this.uncaughtErrors = table(UNCAUGHT_KINDS, (kind) => zeroed(uncaught.labels(kind)));

    // tier: granted (ever allowed, bound --max-sessions) or ungranted (pending or denied, bound --max-ungranted-sessions).
    new Gauge({
      name: 'edge_decision_store_entries',
      help: 'Sessions in the decision store, by tier (granted: ever allowed; ungranted: pending or denied).',
      labelNames: ['tier'] as const,
      registers,
      collect() {
        for (const tier of STORE_TIERS) this.set({ tier }, store.stats(tier).entries);
      },
    });
    new Counter({
      name: 'edge_decision_store_evictions_total',
      help: 'Sessions evicted because their tier of the decision store was full, by tier.',
      labelNames: ['tier'] as const,
      registers,
      collect() {
        // prom-client counters only go up; computed at scrape time from the store's own count.
        this.reset();
        for (const tier of STORE_TIERS) this.inc({ tier }, store.stats(tier).evictions);
      },
    });

    this.adopted = new Counter({ name: 'edge_sessions_adopted_total', help: "Sessions this edge rebuilt from another edge's signed marker (session.secret), without a middleware call.", registers });

    const cacheRequests = new BatchedCounter({ name: 'edge_cache_requests_total', help: 'Playlist and segment requests by what the edge cache did: hit, miss (fetched upstream), coalesced (joined a fetch under way), bypass (not cacheable or opted out).', labelNames: ['kind', 'result'] as const, registers });
    this.cacheRequests = table(CACHE_KINDS, (kind) => table(CACHE_RESULTS, (result) => cacheRequests.series(kind, result)));
    const upstreamBytes = new BatchedCounter({ name: 'edge_upstream_bytes_total', help: 'Body bytes received from the upstream, by kind (what the origin served us, whatever the number of viewers).', labelNames: ['kind'] as const, registers });
    this.upstreamBytes = table(REQUEST_KINDS, (kind) => upstreamBytes.series(kind));
    const cache = sources.cache;
    new Gauge({ name: 'edge_cache_bytes', help: 'Bytes of bodies held by the edge cache (complete and being fetched).', registers, collect() { this.set(cache?.bytes ?? 0); } });
    new Gauge({ name: 'edge_cache_entries', help: 'Entries in the edge cache.', registers, collect() { this.set(cache?.entries ?? 0); } });
    new Counter({
      name: 'edge_cache_evictions_total',
      help: 'Entries evicted from the edge cache to stay within cache.size.',
      registers,
      collect() {
        this.reset();
        this.inc(cache?.evictions ?? 0);
      },
    });
    const fanout = sources.fanout;
    new Gauge({ name: 'edge_fanout_channels', help: 'Shared MPEG-TS upstream connections (one per channel with viewers, or lingering).', registers, collect() { this.set(fanout?.channelCount ?? 0); } });
    new Gauge({ name: 'edge_fanout_viewers', help: 'Viewers on shared MPEG-TS channels.', registers, collect() { this.set(fanout?.viewerCount ?? 0); } });
    const drops = new Counter({ name: 'edge_fanout_drops_total', help: 'Viewers of a shared MPEG-TS channel dropped: stall (accepted nothing for proxy.clientStallTimeout) or overflow (fell fanout.maxQueue behind).', labelNames: ['reason'] as const, registers });
    this.fanoutDrops = table(FANOUT_DROPS, (reason) => zeroed(drops.labels(reason)));

    const storeUp = sources.storeUp;
    // aggregator: --workers N sums the workers' metrics (cluster/aggregate.ts); up only if every worker reaches the store.
    new Gauge({ name: 'edge_store_up', help: 'Whether the fleet\'s shared store (--store redis://...) answers: 1 up (or no shared store: memory), 0 unreachable or too slow (the edge serves from its own state meanwhile).', registers, aggregator: 'min', collect() { this.set(storeUp === undefined || storeUp() ? 1 : 0); } });
    const storeErrors = new Counter({ name: 'edge_store_errors_total', help: 'Calls to the fleet\'s shared store that failed or timed out, and lost connections (op="connect"), by operation.', labelNames: ['op'] as const, registers });
    this.storeErrors = table(STORE_OPS, (op) => zeroed(storeErrors.labels(op)));
    const storeLatency = new Histogram({ name: 'edge_store_latency_seconds', help: 'Time of the calls to the fleet\'s shared store that something waits for: admit (a new session with a per-user limit), find (a session held by another edge), list (the admin API), by operation.', labelNames: ['op'] as const, buckets: STORE_BUCKETS, registers });
    this.storeLatency = table(STORE_AWAITED_OPS, (op) => {
      storeLatency.zero({ op });
      return storeLatency.labels(op);
    });
  }

  /** A store call that failed or timed out (or the connection lost: `connect`). */
  storeError(op: StoreOp): void {
    this.storeErrors[op].inc();
  }

  /** A store call something waited for, answered or not. */
  storeCall(op: StoreAwaitedOp, seconds: number): void {
    this.storeLatency[op].observe(seconds);
  }

  /** A session rebuilt from another edge's signed marker, without a middleware call. */
  sessionAdopted(): void {
    this.adopted.inc();
  }

  cacheRequest(kind: CacheKindLabel, result: CacheResultLabel): void {
    this.cacheRequests[kind][result].inc();
  }

  upstreamBytesReceived(kind: RequestKind, n: number): void {
    if (n > 0) this.upstreamBytes[kind].inc(n);
  }

  fanoutDropped(reason: FanoutDrop): void {
    this.fanoutDrops[reason].inc();
  }

  /** Time to first byte: response headers sent. */
  responseStarted(kind: RequestKind, startedAt: number): void {
    this.requestDuration[kind].observe((performance.now() - startedAt) / 1000);
  }

  sessionOpened(): void {
    this.opened.inc();
  }

  sessionResumed(): void {
    this.resumed.inc();
  }

  sessionClosed(reason: SessionCloseReason): void {
    this.closed[reason].inc();
  }

  request(kind: RequestKind, status: number): void {
    const cls: StatusClass = status < 300 ? '2xx' : status < 400 ? '3xx' : status < 500 ? '4xx' : '5xx';
    this.requests[kind][cls].inc();
  }

  /**
   * One request's decision. Both counters are counted here, per request, so they agree by
   * definition: `unavailable` marks a default-action decision made because the middleware could
   * not decide (not because none is configured).
   */
  decision(allow: boolean, source: DecisionMetricSource, seconds: number, unavailable = false): void {
    this.decisions[allow ? 'allow' : 'deny'][source].inc();
    this.authDuration[source].observe(seconds);
    if (allow && unavailable && source === 'default') this.failureModeAllowed.inc();
  }

  /** A configured middleware: its series exist at zero from the start. */
  backendConfigured(backend: string): void {
    // Once per name: a SIGHUP that rebuilds a backend of the same name keeps counting on its series.
    if (!this.backendSeries.has(backend)) {
      this.backendSeries.set(backend, { outcomes: table(BACKEND_OUTCOMES, (outcome) => this.backendRequests.series(backend, outcome)), duration: this.backendDuration.series(backend) });
    }
    for (const end of LATE_ENDS) this.backendLate.labels(backend, end).inc(0);
    this.backendShed.labels(backend).inc(0);
  }

  /** A middleware's slots and queue, read at every scrape until `unwatch` (edge_auth_backend_in_flight, _queued). */
  watchBackendLoad(load: BackendLoad): { unwatch(): void } {
    this.backendLoads.add(load);
    return { unwatch: () => void this.backendLoads.delete(load) };
  }

  /** A call this middleware never got: see edge_auth_backend_shed_total. */
  backendCallShed(backend: string): void {
    this.backendShed.labels(backend).inc();
  }

  /** A call that ended after its caller stopped waiting. */
  backendCallLate(backend: string, end: LateEnd): void {
    this.backendLate.labels(backend, end).inc();
  }

  /** A session check shed by the edge (no decision made). */
  checkShed(check: CheckKind): void {
    this.shed[check].inc();
  }

  /** `denyReason`: the backend's reason code (`backend_403`, Smarty's `expired`…): a small set per backend type. */
  backendCall(backend: string, outcome: BackendOutcome, seconds: number, denyReason?: string): void {
    let series = this.backendSeries.get(backend);
    if (series === undefined) {
      this.backendConfigured(backend);
      series = this.backendSeries.get(backend)!;
    }
    series.outcomes[outcome].inc();
    series.duration.observe(seconds);
    if (denyReason !== undefined) this.backendDenials.labels(backend, this.boundedReason(denyReason)).inc();
  }

  /** Reason codes come from the middleware: past MAX_DENY_REASONS distinct ones, the rest count as `other`. */
  private boundedReason(reason: string): string {
    if (this.denyReasons.has(reason)) return reason;
    if (this.denyReasons.size >= MAX_DENY_REASONS || !/^[a-z0-9_]{1,32}$/.test(reason)) return 'other';
    this.denyReasons.add(reason);
    return reason;
  }

  upstreamOutcome(outcome: UpstreamOutcome): void {
    this.upstream[outcome].inc();
  }

  clientStalled(kind: RequestKind): void {
    this.stalls[kind].inc();
  }

  streamLimited(limit: StreamLimit): void {
    this.streamLimits[limit].inc();
  }

  internalError(listener: Listener): void {
    this.internalErrors[listener].inc();
  }

  uncaught(kind: UncaughtKind): void {
    this.uncaughtErrors[kind].inc();
  }

  bytesSent(kind: RequestKind, n: number): void {
    if (n > 0) this.bytes[kind].inc(n);
  }
}

function zeroed(child: Inc): Inc {
  child.inc(0);
  return child;
}

function table<K extends string, V>(keys: readonly K[], make: (key: K) => V): Record<K, V> {
  const out = {} as Record<K, V>;
  for (const key of keys) out[key] = make(key);
  return out;
}
