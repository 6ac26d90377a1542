/** The validated, frozen configuration every component receives. */
import type { RulesConfig } from '../auth/rules.js';
import type { HostPort } from './units.js';
import type { BACKEND_TYPES, DEFAULT_ACTIONS, LIMIT_POLICIES, LOG_LEVELS, RECHECK_MODES, WEBHOOK_METHODS } from './options.js';

export type DefaultAction = (typeof DEFAULT_ACTIONS)[number];
export type LogLevel = (typeof LOG_LEVELS)[number];
export type BackendType = (typeof BACKEND_TYPES)[number];
export type LimitPolicy = (typeof LIMIT_POLICIES)[number];
export type WebhookMethod = (typeof WEBHOOK_METHODS)[number];
export type RecheckMode = (typeof RECHECK_MODES)[number];

export interface UpstreamConfig {
  /** `scheme://host:port` without a trailing slash. */
  readonly origin: string;
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  /** Playlists and segments. */
  readonly connections: number;
  /** HTTP MPEG-TS streams: a pool of their own, and the cap on open streams. */
  readonly streamConnections: number;
  /** Pass the token parameter upstream (off: stripped, so viewers share upstream fetches). */
  readonly forwardToken: boolean;
}

export interface BackendConfig {
  readonly type: BackendType;
  /** Unset: no middleware, every session gets the default action. */
  readonly url: string | undefined;
  readonly timeoutMs: number;
  readonly maxBodyBytes: number;
  readonly connections: number;
  readonly concurrency: number;
  readonly ca: string | undefined;
  readonly sendName: boolean;
  readonly sendIp: boolean;
}

/** One middleware of the list asked (in parallel) for each new session. */
export interface BackendEntry extends Omit<BackendConfig, 'url'> {
  /** Bounded label for metrics and logs. */
  readonly name: string;
  readonly url: string;
}


export interface AuthConfig {
  readonly defaultAction: DefaultAction;
  readonly allowTtlMs: number;
  readonly denyTtlMs: number;
  readonly unavailableTtlMs: number;
  readonly maxTtlMs: number;
  readonly staleGraceMs: number;
  /** Bound of the granted tier of the session store (--max-sessions). */
  readonly maxEntries: number;
  /** Bound of the ungranted tier: sessions never allowed (pending or denied). */
  readonly maxUngranted: number;
  /** `never`: the first middleware (or rule) answer holds for the session's life, no re-check by TTL. */
  readonly recheck: RecheckMode;
}

/** CORS for browser players on another origin (proxy/cors.ts); absent when no origin is configured. */
export interface CorsConfig {
  /** Serialized origins (`https://tv.example.com`, `null`), or the one entry `*`. */
  readonly origins: readonly string[];
  readonly maxAgeS: number;
  readonly credentials: boolean;
}

export interface SessionConfig {
  /** Signs markers (session/marker.ts); undefined: markers are plain session IDs, known only to this process. */
  readonly secret: string | undefined;
  readonly previousSecret: string | undefined;
  readonly secretOverlapMs: number;
  readonly param: string;
  readonly tokenParam: string;
  readonly channelPattern: RegExp;
  readonly idleTimeoutMs: number;
  /** Concurrent MPEG-TS connections per session (0 = no limit); one more closes the oldest. */
  readonly maxStreams: number;
  /** The marker is refused from any other client IP than the session's. */
  readonly bindIp: boolean;
  /** Astra's "Sessions Backend": notified when a session closes. */
  readonly closeWebhook: { readonly url: string; readonly method: WebhookMethod; readonly timeoutMs: number } | undefined;
}

export interface LimitsConfig {
  /** 0 = no limit unless the middleware sends X-Max-Sessions. */
  readonly maxSessionsPerUser: number;
  readonly policy: LimitPolicy;
  /** Count per user and channel. */
  readonly soft: boolean;
}

export interface CacheConfig {
  /** 0: no segment cache. */
  readonly maxBytes: number;
  readonly maxObjectBytes: number;
  /** 'auto': 3 target durations of the playlist that listed the segment. */
  readonly segmentTtlMs: number | 'auto';
  /** 0: no playlist cache. */
  readonly playlistTtlMs: number;
  readonly negativeTtlMs: number;
  readonly bypass: readonly RegExp[];
  readonly header: boolean;
}

export interface FanoutConfig {
  readonly enabled: boolean;
  readonly lingerMs: number;
  readonly maxQueueBytes: number;
  readonly maxGopBytes: number;
}

/** Where the state shared by a fleet lives (session/fleet.ts). */
export interface StoreConfig {
  /** A redis:// or rediss:// URL (a secret: it may hold a password); undefined: `memory`, no shared state. */
  readonly url: string | undefined;
  /** Prefix of every key and channel in Redis. */
  readonly prefix: string;
}

export interface EdgeConfig {
  readonly listen: HostPort;
  /** Worker processes (`auto`: one per available core, resolved at start by cluster/workers.ts); 1 = a single process. */
  readonly workers: number | 'auto';
  readonly admin: { readonly listen: HostPort; readonly token: string | undefined };
  readonly upstream: UpstreamConfig;
  readonly backend: BackendConfig;
  /** The middlewares in force: `backends` from the file, else `backend` when it has a URL, else none. */
  readonly backends: readonly BackendEntry[];
  readonly rules: RulesConfig;
  readonly securetoken: { readonly secret: string | undefined; readonly bindIp: boolean };
  readonly auth: AuthConfig;
  readonly session: SessionConfig;
  readonly limits: LimitsConfig;
  readonly hls: { readonly maxPlaylistBytes: number };
  readonly cache: CacheConfig;
  readonly fanout: FanoutConfig;
  readonly cors: CorsConfig | undefined;
  readonly proxy: {
    readonly trustedProxies: readonly string[];
    readonly maxHeaderBytes: number;
    /** A client that accepts no bytes for this long is dropped (0 = never). */
    readonly clientStallTimeoutMs: number;
  };
  readonly log: { readonly level: LogLevel; readonly access: boolean; readonly accessSample: number; readonly redactParams: readonly string[] };
  readonly health: { readonly public: boolean; readonly checkUpstream: boolean };
  readonly shutdown: { readonly graceMs: number; readonly drainTimeoutMs: number };
  readonly store: StoreConfig;
  /** This edge's name in the fleet: node.name, or host name + ':' + listen port. */
  readonly node: { readonly name: string };
}
