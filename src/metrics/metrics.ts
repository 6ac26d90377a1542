/**
 * Every metric of the edge, on a registry of its own (no prom-client global:
 * two edges can live in one process). Labels come from small fixed sets only;
 * never a session ID, token, IP, user or path. Every combination of those
 * sets is created at zero up front, so `rate()` sees the first increment and
 * dashboards show 0 rather than "no data".
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { STORE_TIERS, type StoreTier, type TierStats } from '../session/store.js';

export type RequestKind = 'playlist' | 'segment' | 'stream' | 'other';
export type StatusClass = '2xx' | '3xx' | '4xx' | '5xx';
export type DecisionResult = 'allow' | 'deny';
export type DecisionMetricSource = 'cache' | 'backend' | 'coalesced' | 'rule' | 'default';
export type BackendOutcome = 'allow' | 'deny' | 'timeout' | 'refused' | 'http_5xx' | 'invalid';
export type UpstreamOutcome = 'ok' | 'refused' | 'reset' | 'timeout' | 'invalid' | 'aborted';

/** Label values a middleware can make us create, at most. */
const MAX_DENY_REASONS = 50;

const REQUEST_KINDS: readonly RequestKind[] = ['playlist', 'segment', 'stream', 'other'];
const STATUS_CLASSES: readonly StatusClass[] = ['2xx', '3xx', '4xx', '5xx'];
const DECISION_RESULTS: readonly DecisionResult[] = ['allow', 'deny'];
const DECISION_SOURCES: readonly DecisionMetricSource[] = ['cache', 'backend', 'coalesced', 'rule', 'default'];
const BACKEND_OUTCOMES: readonly BackendOutcome[] = ['allow', 'deny', 'timeout', 'refused', 'http_5xx', 'invalid'];
const UPSTREAM_OUTCOMES: readonly UpstreamOutcome[] = ['ok', 'refused', 'reset', 'timeout', 'invalid', 'aborted'];

/** Seconds; the auth step of a cache hit costs microseconds, a middleware call milliseconds. */
const AUTH_BUCKETS = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

interface Inc {
  inc(value?: number): void;
}
interface Observe {
  observe(value: number): void;
}

export interface StoreStats {
  stats(tier: StoreTier): TierStats;
}

/** Read at scrape time (STYLE §8: gauges are computed, not tracked). */
export interface MetricSources {
  readonly store: StoreStats;
  readonly activeSessions: () => Readonly<Record<'hls' | 'mpegts', number>>;
}

export const CLOSE_REASONS = ['idle', 'disconnected', 'kicked', 'denied', 'unique', 'limit', 'evicted', 'shutdown'] as const;
export type SessionCloseReason = (typeof CLOSE_REASONS)[number];

export class EdgeMetrics {
  readonly registry = new Registry();
  private readonly requests: Record<RequestKind, Record<StatusClass, Inc>>;
  private readonly decisions: Record<DecisionResult, Record<DecisionMetricSource, Inc>>;
  private readonly authDuration: Record<DecisionMetricSource, Observe>;
  private readonly upstream: Record<UpstreamOutcome, Inc>;
  private readonly bytes: Record<RequestKind, Inc>;
  private readonly backendRequests: Counter<'backend' | 'outcome'>;
  private readonly backendDuration: Histogram<'backend'>;
  private readonly backendDenials: Counter<'backend' | 'reason'>;
  private readonly denyReasons = new Set<string>();
  private readonly requestDuration: Record<RequestKind, Observe>;
  private readonly opened: Inc;
  private readonly closed: Record<SessionCloseReason, Inc>;
  readonly failureModeAllowed: Inc;
  readonly upstreamDuration: Observe;

  constructor(sources: MetricSources, options: { processMetrics?: boolean } = {}) {
    const store = sources.store;
    const registers = [this.registry];
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry });

    const requests = new Counter({ name: 'edge_requests_total', help: 'Client requests answered, by kind and status class.', labelNames: ['kind', 'code'] as const, registers });
    this.requests = table(REQUEST_KINDS, (kind) => table(STATUS_CLASSES, (code) => zeroed(requests.labels(kind, code))));

    const requestDuration = new Histogram({ name: 'edge_request_duration_seconds', help: 'Time to the first response byte to the client (response headers), by kind.', labelNames: ['kind'] as const, buckets: LATENCY_BUCKETS, registers });
    this.requestDuration = table(REQUEST_KINDS, (kind) => {
      requestDuration.zero({ kind });
      return requestDuration.labels(kind);
    });

    const decisions = new Counter({ name: 'edge_auth_decisions_total', help: 'Authorization decisions applied to requests, by result and where they came from.', labelNames: ['result', 'source'] as const, registers });
    this.decisions = table(DECISION_RESULTS, (result) => table(DECISION_SOURCES, (source) => zeroed(decisions.labels(result, source))));

    const authDuration = new Histogram({ name: 'edge_auth_duration_seconds', help: 'Time of the whole authorize step per request, by decision source.', labelNames: ['source'] as const, buckets: AUTH_BUCKETS, registers });
    this.authDuration = table(DECISION_SOURCES, (source) => {
      authDuration.zero({ source });
      return authDuration.labels(source);
    });

    this.backendRequests = new Counter({ name: 'edge_auth_backend_requests_total', help: 'Middleware calls by backend and outcome.', labelNames: ['backend', 'outcome'] as const, registers });
    this.backendDenials = new Counter({ name: 'edge_auth_backend_denials_total', help: 'Middleware denies by backend and reason code.', labelNames: ['backend', 'reason'] as const, registers });
    this.backendDuration = new Histogram({ name: 'edge_auth_backend_duration_seconds', help: 'Middleware call duration by backend.', labelNames: ['backend'] as const, buckets: LATENCY_BUCKETS, registers });

    this.failureModeAllowed = new Counter({ name: 'edge_auth_failure_mode_allowed_total', help: 'Sessions let in by the default action because the middleware was unavailable.', registers });

    const upstream = new Counter({ name: 'edge_upstream_requests_total', help: 'Requests forwarded upstream, by outcome.', labelNames: ['outcome'] as const, registers });
    this.upstream = table(UPSTREAM_OUTCOMES, (outcome) => zeroed(upstream.labels(outcome)));
    this.upstreamDuration = new Histogram({ name: 'edge_upstream_duration_seconds', help: 'Time to upstream response headers.', buckets: LATENCY_BUCKETS, registers });

    const bytes = new Counter({ name: 'edge_bytes_sent_total', help: 'Body bytes sent to clients, by kind.', labelNames: ['kind'] as const, registers });
    this.bytes = table(REQUEST_KINDS, (kind) => zeroed(bytes.labels(kind)));

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
    this.opened = new Counter({ name: 'edge_sessions_opened_total', help: 'Sessions opened (or resumed after idling).', registers });
    const closed = new Counter({ name: 'edge_sessions_closed_total', help: 'Sessions closed, by reason.', labelNames: ['reason'] as const, registers });
    this.closed = table(CLOSE_REASONS, (reason) => zeroed(closed.labels(reason)));

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
  }

  /** Time to first byte: response headers sent. */
  responseStarted(kind: RequestKind, startedAt: number): void {
    this.requestDuration[kind].observe((performance.now() - startedAt) / 1000);
  }

  sessionOpened(): void {
    this.opened.inc();
  }

  sessionClosed(reason: SessionCloseReason): void {
    this.closed[reason].inc();
  }

  request(kind: RequestKind, status: number): void {
    const cls: StatusClass = status < 300 ? '2xx' : status < 400 ? '3xx' : status < 500 ? '4xx' : '5xx';
    this.requests[kind][cls].inc();
  }

  decision(allow: boolean, source: DecisionMetricSource, seconds: number): void {
    this.decisions[allow ? 'allow' : 'deny'][source].inc();
    this.authDuration[source].observe(seconds);
  }

  /** A configured middleware: its series exist at zero from the start. */
  backendConfigured(backend: string): void {
    for (const outcome of BACKEND_OUTCOMES) this.backendRequests.labels(backend, outcome).inc(0);
    this.backendDuration.zero({ backend });
  }

  /** `denyReason`: the backend's reason code (`backend_403`, Smarty's `expired`…): a small set per backend type. */
  backendCall(backend: string, outcome: BackendOutcome, seconds: number, denyReason?: string): void {
    this.backendRequests.labels(backend, outcome).inc();
    this.backendDuration.labels(backend).observe(seconds);
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
