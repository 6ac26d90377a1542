/** The validated, frozen configuration every component receives. */
import type { RulesConfig } from '../auth/rules.js';
import type { HostPort } from './units.js';
import type { BACKEND_TYPES, DEFAULT_ACTIONS, LIMIT_POLICIES, LOG_LEVELS, WEBHOOK_METHODS } from './options.js';

export type DefaultAction = (typeof DEFAULT_ACTIONS)[number];
export type LogLevel = (typeof LOG_LEVELS)[number];
export type BackendType = (typeof BACKEND_TYPES)[number];
export type LimitPolicy = (typeof LIMIT_POLICIES)[number];
export type WebhookMethod = (typeof WEBHOOK_METHODS)[number];

export interface UpstreamConfig {
  /** `scheme://host:port` without a trailing slash. */
  readonly origin: string;
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly connections: number;
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
}

export interface SessionConfig {
  readonly param: string;
  readonly tokenParam: string;
  readonly channelPattern: RegExp;
  readonly idleTimeoutMs: number;
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

export interface EdgeConfig {
  readonly listen: HostPort;
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
  readonly proxy: { readonly trustedProxies: readonly string[]; readonly maxHeaderBytes: number };
  readonly log: { readonly level: LogLevel; readonly access: boolean; readonly accessSample: number; readonly redactParams: readonly string[] };
  readonly health: { readonly public: boolean; readonly checkUpstream: boolean };
  readonly shutdown: { readonly graceMs: number; readonly drainTimeoutMs: number };
}
