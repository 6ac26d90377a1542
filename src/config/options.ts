/**
 * The one table of settings. Each row names the YAML path, the flag, the
 * environment variable, how its value is parsed and its default; `--help`,
 * the env reader, the flag parser and the validator are all driven by it, so
 * a setting cannot exist in one place and be missing from another.
 */

export type OptionKind = 'string' | 'url' | 'store' | 'hostport' | 'duration' | 'size' | 'int' | 'intOrAuto' | 'count' | 'ratio' | 'bool' | 'backends' | 'enum' | 'list' | 'regex';

export interface OptionSpec {
  /** Dotted path in the YAML file, e.g. `auth.allowTtl`. */
  readonly path: string;
  readonly flag?: string;
  readonly env: string;
  readonly kind: OptionKind;
  readonly values?: readonly string[];
  /** Default as an operator would write it; undefined = unset. */
  readonly default?: string | number | boolean | readonly string[];
  readonly group: string;
  readonly help: string;
  /** Redacted in `check-config` output and logs. */
  readonly secret?: boolean;
  /** Placeholder for the value in --help (default from the kind). */
  readonly metavar?: string;
}

/** How long in-flight responses get after SIGTERM (systemd's TimeoutStopSec and k8s's grace period must exceed it). */
export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;

/**
 * MPEG-TS connections one session may hold: a player reconnecting (or probing
 * with a second request) briefly overlaps its predecessor; a third connection
 * from the same token, IP and User-Agent is a loop or abuse, and closes the oldest.
 */
export const DEFAULT_MAX_STREAMS_PER_SESSION = 2;

/**
 * Default bound of the ungranted tier, as a share of --max-sessions: it
 * scales with the memory the operator gave the store, a flood of denied
 * tokens adds at most a tenth to it, and at the default 1M (100k entries,
 * 10 s deny TTL) it still remembers a sustained 10,000 denied sessions/s.
 */
export const DEFAULT_UNGRANTED_SHARE = 0.1;

export function defaultMaxUngranted(maxEntries: number): number {
  return Math.max(1, Math.ceil(maxEntries * DEFAULT_UNGRANTED_SHARE));
}

/**
 * Most worker processes `--workers` accepts (and what `auto` is capped at):
 * past this many cores one host is better split into several edges (a
 * process per NUMA node, or several pods) than one primary serving every IPC.
 */
export const MAX_WORKERS = 64;

/** No shared store: this process keeps its sessions alone (a single edge). */
export const DEFAULT_STORE = 'memory';
/** Every Redis key and pub/sub channel of the edge starts with it (session/redis.ts lists them). */
export const DEFAULT_STORE_PREFIX = 'edge:';

export const DEFAULT_CHANNEL_PATTERN = '^/play/(?<channel>[^/]+)(?<rest>/.*)?$';

export const DEFAULT_ACTIONS = ['allow', 'deny', 'keep-granted'] as const;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const BACKEND_TYPES = ['http', 'stalker', 'smarty', 'iptvportal', 'flussonic'] as const;
export const LIMIT_POLICIES = ['refuse', 'close-oldest'] as const;
export const WEBHOOK_METHODS = ['POST', 'GET'] as const;
/** ttl: re-check an allow when its TTL runs out; never: the first answer holds for the session's life. */
export const RECHECK_MODES = ['ttl', 'never'] as const;

/** How long a browser may cache the edge's answer to a CORS preflight (Chromium caps it at 2 h). */
export const DEFAULT_CORS_MAX_AGE = '600s';

export const OPTIONS: readonly OptionSpec[] = [
  // Listeners
  { path: 'listen', flag: '--listen', env: 'EDGE_LISTEN', kind: 'hostport', default: '0.0.0.0:8080', group: 'Listeners', help: 'public listener for players (HOST:PORT)' },
  { path: 'admin.listen', flag: '--admin-listen', env: 'EDGE_ADMIN_LISTEN', kind: 'hostport', default: '127.0.0.1:9901', group: 'Listeners', help: 'admin listener: /api/sessions, /metrics, /healthz, /readyz (HOST:PORT)' },
  { path: 'admin.token', flag: '--admin-token', env: 'EDGE_ADMIN_TOKEN', kind: 'string', group: 'Listeners', help: 'bearer token for the admin API; required when --admin-listen is not loopback', secret: true },


  // Upstream
  { path: 'upstream.url', flag: '--upstream', env: 'EDGE_UPSTREAM', kind: 'url', default: 'http://127.0.0.1:8000', group: 'Upstream (Astra or any HLS / MPEG-TS origin)', help: 'origin to forward to (scheme://host:port, no path)' },
  { path: 'upstream.connectTimeout', flag: '--upstream-connect-timeout', env: 'EDGE_UPSTREAM_CONNECT_TIMEOUT', kind: 'duration', default: '2s', group: 'Upstream (Astra or any HLS / MPEG-TS origin)', help: 'TCP connect timeout to the upstream' },
  { path: 'upstream.headersTimeout', flag: '--upstream-timeout', env: 'EDGE_UPSTREAM_TIMEOUT', kind: 'duration', default: '10s', group: 'Upstream (Astra or any HLS / MPEG-TS origin)', help: 'time to upstream response headers before 504' },
  { path: 'upstream.bodyTimeout', flag: '--upstream-body-timeout', env: 'EDGE_UPSTREAM_BODY_TIMEOUT', kind: 'duration', default: '30s', group: 'Upstream (Astra or any HLS / MPEG-TS origin)', help: 'longest silence inside a response body before the client connection is cut' },
  { path: 'upstream.connections', flag: '--upstream-connections', env: 'EDGE_UPSTREAM_CONNECTIONS', kind: 'int', default: 1024, group: 'Upstream (Astra or any HLS / MPEG-TS origin)', help: 'max keep-alive connections to the upstream for playlists and segments' },
  { path: 'upstream.streamConnections', flag: '--upstream-stream-connections', env: 'EDGE_UPSTREAM_STREAM_CONNECTIONS', kind: 'int', default: 1024, group: 'Upstream (Astra or any HLS / MPEG-TS origin)', help: 'max open HTTP MPEG-TS streams, on a pool of their own (playlists and segments never wait behind them); one more gets 503 at once' },
  { path: 'upstream.forwardToken', flag: '--upstream-forward-token', env: 'EDGE_UPSTREAM_FORWARD_TOKEN', kind: 'bool', default: false, group: 'Upstream (Astra or any HLS / MPEG-TS origin)', help: 'pass the token parameter on to the upstream (for an origin that checks tokens itself); off: the edge authorizes and the origin never sees viewer tokens, so viewers share cached playlists and MPEG-TS connections' },

  // Middleware
  { path: 'backend.type', flag: '--backend-type', env: 'EDGE_BACKEND_TYPE', kind: 'enum', values: BACKEND_TYPES, default: 'http', group: 'Middleware', help: 'middleware protocol: http (Astra "HTTP Request"), stalker (Ministra), smarty (Microimpulse), iptvportal, flussonic' },
  { path: 'backend.url', flag: '--backend', env: 'EDGE_BACKEND', kind: 'url', group: 'Middleware', help: 'middleware URL or portal address (unset: every session gets the default action)' },
  { path: 'backend.timeout', flag: '--backend-timeout', env: 'EDGE_BACKEND_TIMEOUT', kind: 'duration', default: '1s', group: 'Middleware', help: 'time the middleware has to answer a call (slower: unavailable, the default action applies); also the longest a call waits for a free slot (then it is shed: 503)' },
  { path: 'backend.maxBodyBytes', flag: '--backend-max-body', env: 'EDGE_BACKEND_MAX_BODY', kind: 'size', default: '64KiB', group: 'Middleware', help: 'middleware response bytes read (and discarded) at most' },
  { path: 'backend.connections', flag: '--backend-connections', env: 'EDGE_BACKEND_CONNECTIONS', kind: 'int', default: 64, group: 'Middleware', help: 'max keep-alive connections to the middleware, at least backend.concurrency (unset: the larger of 64 and backend.concurrency)' },
  { path: 'backend.concurrency', flag: '--backend-concurrency', env: 'EDGE_BACKEND_CONCURRENCY', kind: 'int', default: 32, group: 'Middleware', help: 'max middleware calls in flight, held until the middleware answers; more wait in a queue, and one with no slot within backend.timeout is shed (503 + Retry-After, never the default action)' },
  { path: 'backend.ca', flag: '--backend-ca', env: 'EDGE_BACKEND_CA', kind: 'string', group: 'Middleware', help: 'PEM file of the CA of an HTTPS middleware with a private certificate' },
  { path: 'backend.sendName', flag: '--smarty-send-name', env: 'EDGE_SMARTY_SEND_NAME', kind: 'bool', default: true, group: 'Middleware', help: 'smarty: send the channel as name= (the token is checked against its content)' },
  { path: 'backend.sendIp', flag: '--smarty-send-ip', env: 'EDGE_SMARTY_SEND_IP', kind: 'bool', default: true, group: 'Middleware', help: 'smarty: send the client IP as ip=' },
  { path: 'backends', env: 'EDGE_BACKENDS', kind: 'backends', group: 'Middleware', help: 'several middlewares asked in parallel (YAML list, or JSON in the env): first allow wins; replaces backend.*' },

  // Local rules, checked before any middleware call
  { path: 'rules.ipAllow', flag: '--ip-allow', env: 'EDGE_IP_ALLOW', kind: 'list', metavar: 'CIDR[,CIDR]', default: [], group: 'Local rules (before the middleware)', help: 'client IPs allowed without asking the middleware' },
  { path: 'rules.ipDeny', flag: '--ip-deny', env: 'EDGE_IP_DENY', kind: 'list', metavar: 'CIDR[,CIDR]', default: [], group: 'Local rules (before the middleware)', help: 'client IPs always refused' },
  { path: 'rules.userAgentDeny', flag: '--user-agent-deny', env: 'EDGE_USER_AGENT_DENY', kind: 'list', metavar: 'REGEX[,REGEX]', default: [], group: 'Local rules (before the middleware)', help: 'User-Agent patterns refused (case-insensitive regular expressions)' },
  { path: 'rules.tokenDeny', flag: '--token-deny', env: 'EDGE_TOKEN_DENY', kind: 'list', metavar: 'TOKEN[,TOKEN]', default: [], group: 'Local rules (before the middleware)', help: 'tokens always refused', secret: true },
  { path: 'rules.tokenAllow', flag: '--token-allow', env: 'EDGE_TOKEN_ALLOW', kind: 'list', metavar: 'TOKEN[,TOKEN]', default: [], group: 'Local rules (before the middleware)', help: 'static tokens allowed without asking the middleware', secret: true },
  { path: 'securetoken.secret', flag: '--securetoken-secret', env: 'EDGE_SECURETOKEN_SECRET', kind: 'string', group: 'Local rules (before the middleware)', help: 'verify Astra securetoken tokens locally with this secret (sha1(channel+ip+start+end+secret+salt)-salt-end-start)', secret: true },
  { path: 'securetoken.bindIp', flag: '--securetoken-bind-ip', env: 'EDGE_SECURETOKEN_BIND_IP', kind: 'bool', default: true, group: 'Local rules (before the middleware)', help: 'the securetoken hash includes the client IP' },

  // Decisions
  { path: 'auth.defaultAction', flag: '--default-action', env: 'EDGE_DEFAULT_ACTION', kind: 'enum', values: DEFAULT_ACTIONS, default: 'allow', group: 'Decisions', help: 'when the middleware is unavailable: allow (as Astra), deny, or keep-granted (granted sessions keep playing, new ones are refused)' },
  { path: 'auth.allowTtl', flag: '--allow-ttl', env: 'EDGE_ALLOW_TTL', kind: 'duration', default: '60s', group: 'Decisions', help: 'how long an allow holds before a background re-check (X-AuthDuration / Cache-Control max-age from the middleware win)' },
  { path: 'auth.denyTtl', flag: '--deny-ttl', env: 'EDGE_DENY_TTL', kind: 'duration', default: '10s', group: 'Decisions', help: 'how long a deny is remembered' },
  { path: 'auth.unavailableTtl', flag: '--unavailable-ttl', env: 'EDGE_UNAVAILABLE_TTL', kind: 'duration', default: '5s', group: 'Decisions', help: 'how long a default-action decision holds before the middleware is asked again' },
  { path: 'auth.maxTtl', flag: '--max-ttl', env: 'EDGE_MAX_TTL', kind: 'duration', default: '7d', group: 'Decisions', help: 'cap on any TTL the middleware sends' },
  { path: 'auth.staleGrace', flag: '--stale-grace', env: 'EDGE_STALE_GRACE', kind: 'duration', default: '30s', group: 'Decisions', help: 'an expired allow is still served (while re-checked) for this long; past it the session is gone' },
  { path: 'auth.recheck', flag: '--recheck', env: 'EDGE_RECHECK', kind: 'enum', values: RECHECK_MODES, default: 'ttl', group: 'Decisions', help: 'ttl: re-check an allow when its TTL runs out; never: the first middleware answer holds while the session is used (one-shot tokens: Ministra via --backend-type http); kicks and limits still apply' },
  { path: 'auth.maxEntries', flag: '--max-sessions', env: 'EDGE_MAX_SESSIONS', kind: 'int', default: 1_000_000, group: 'Decisions', help: 'granted sessions kept at most (ever allowed: playing, idle, or ended and refused); the oldest unused are evicted' },
  { path: 'auth.maxUngranted', flag: '--max-ungranted-sessions', env: 'EDGE_MAX_UNGRANTED_SESSIONS', kind: 'int', group: 'Decisions', help: 'sessions never allowed (waiting for the middleware, or denied) kept at most, apart from the granted ones; oldest evicted first (default: a tenth of --max-sessions)' },

  // Sessions
  { path: 'session.param', flag: '--session-param', env: 'EDGE_SESSION_PARAM', kind: 'string', default: 'edge_session', group: 'Sessions', help: 'query parameter the edge adds to rewritten playlist URIs' },
  { path: 'session.tokenParam', flag: '--token-param', env: 'EDGE_TOKEN_PARAM', kind: 'string', default: 'token', group: 'Sessions', help: 'query parameter that carries the viewer token (joins reloads of the same URL to one session)' },
  { path: 'session.bindIp', flag: '--bind-session-ip', env: 'EDGE_BIND_SESSION_IP', kind: 'bool', default: false, group: 'Sessions', help: 'a session marker only works from the client IP that opened the session (off: mobile players change networks)' },
  { path: 'session.idleTimeout', flag: '--idle-timeout', env: 'EDGE_IDLE_TIMEOUT', kind: 'duration', default: '30s', group: 'Sessions', help: 'an HLS session with no request for this long is closed' },
  { path: 'session.closeWebhook', flag: '--sessions-backend', env: 'EDGE_SESSIONS_BACKEND', kind: 'url', group: 'Sessions', help: 'URL notified when a session closes (Astra\'s "Sessions Backend"), fire-and-forget' },
  { path: 'session.closeWebhookMethod', flag: '--sessions-backend-method', env: 'EDGE_SESSIONS_BACKEND_METHOD', kind: 'enum', values: WEBHOOK_METHODS, default: 'POST', group: 'Sessions', help: 'POST (JSON body) or GET (fields as query parameters)' },
  { path: 'session.closeWebhookTimeout', flag: '--sessions-backend-timeout', env: 'EDGE_SESSIONS_BACKEND_TIMEOUT', kind: 'duration', default: '2s', group: 'Sessions', help: 'timeout of one close notification' },
  { path: 'session.maxStreams', flag: '--max-streams-per-session', env: 'EDGE_MAX_STREAMS_PER_SESSION', kind: 'count', default: DEFAULT_MAX_STREAMS_PER_SESSION, group: 'Sessions', help: 'concurrent MPEG-TS connections of one session (same token, IP, User-Agent, channel); one more closes the oldest; 0 = no limit' },
  { path: 'session.secret', flag: '--session-secret', env: 'EDGE_SESSION_SECRET', kind: 'string', group: 'Sessions', help: 'sign session markers (HMAC) so that any edge sharing this secret serves the session without asking the middleware again (a fleet behind a load balancer); at least 16 characters, the same on every edge', secret: true },
  { path: 'session.previousSecret', flag: '--session-secret-previous', env: 'EDGE_SESSION_SECRET_PREVIOUS', kind: 'string', group: 'Sessions', help: 'the secret before a rotation: markers it signed are still accepted for session.secretOverlap after start', secret: true },
  { path: 'session.secretOverlap', flag: '--session-secret-overlap', env: 'EDGE_SESSION_SECRET_OVERLAP', kind: 'duration', default: '1h', group: 'Sessions', help: 'how long after start markers of session.previousSecret are accepted (cover the longest decision TTL)' },
  { path: 'session.channelPattern', flag: '--channel-pattern', env: 'EDGE_CHANNEL_PATTERN', kind: 'regex', default: DEFAULT_CHANNEL_PATTERN, group: 'Sessions', help: 'regex on the path with a named group "channel" (optional group "rest": empty = MPEG-TS stream)' },

  // Per-user limits
  { path: 'limits.maxSessionsPerUser', flag: '--max-sessions-per-user', env: 'EDGE_MAX_SESSIONS_PER_USER', kind: 'count', default: 0, group: 'Per-user limits', help: 'concurrent sessions per user (X-UserId, else X-Session-Name) when the middleware sends no X-Max-Sessions; 0 = no limit' },
  { path: 'limits.policy', flag: '--limit-policy', env: 'EDGE_LIMIT_POLICY', kind: 'enum', values: LIMIT_POLICIES, default: 'refuse', group: 'Per-user limits', help: 'when a user is over the limit: refuse the new session (403) or close the oldest' },
  { path: 'limits.soft', flag: '--soft-limits', env: 'EDGE_SOFT_LIMITS', kind: 'bool', default: false, group: 'Per-user limits', help: 'count sessions per user and channel (for middlewares that reuse a token across channel switches)' },

  // Fleet: several edges acting as one (README "Running a fleet")
  { path: 'store.url', flag: '--store', env: 'EDGE_STORE', kind: 'store', default: DEFAULT_STORE, metavar: 'memory|URL', group: 'Fleet', help: 'where the state shared by a fleet lives: memory (this process alone) or redis://[user:pass@]host:port[/db] (rediss:// for TLS): the session table, per-user limits and kicks hold across every edge on it' },
  { path: 'store.prefix', flag: '--store-prefix', env: 'EDGE_STORE_PREFIX', kind: 'string', default: DEFAULT_STORE_PREFIX, group: 'Fleet', help: 'prefix of every Redis key and channel the edge uses (several fleets on one Redis: one prefix each)' },
  { path: 'node.name', flag: '--node-name', env: 'EDGE_NODE_NAME', kind: 'string', group: 'Fleet', help: 'this edge\'s name in the fleet\'s session table (the EDGE column); default: the host name and the listen port, e.g. edge-3:8080' },
  { path: 'workers', flag: '--workers', env: 'EDGE_WORKERS', kind: 'intOrAuto', metavar: 'N|auto', default: 1, group: 'Fleet', help: `worker processes serving the public listener on every core of the host (auto: one per available core, at most ${MAX_WORKERS}); one primary runs the admin listener; 1: a single process` },

  // HLS and proxying
  { path: 'hls.maxPlaylistBytes', flag: '--max-playlist-bytes', env: 'EDGE_MAX_PLAYLIST_BYTES', kind: 'size', default: '1MiB', group: 'HLS and proxying', help: 'largest upstream playlist read into memory for rewriting' },
  { path: 'proxy.trustedProxies', flag: '--trusted-proxy', env: 'EDGE_TRUSTED_PROXIES', kind: 'list', metavar: 'CIDR[,CIDR]', default: [], group: 'HLS and proxying', help: 'CIDRs whose X-Forwarded-For / X-Real-IP are believed (comma-separated; flag repeatable)' },
  { path: 'proxy.clientStallTimeout', flag: '--client-stall-timeout', env: 'EDGE_CLIENT_STALL_TIMEOUT', kind: 'duration', default: '30s', group: 'HLS and proxying', help: 'a client that accepts no response bytes for this long is dropped and its upstream request released; 0 = never' },
  { path: 'proxy.maxHeaderBytes', flag: '--max-header-bytes', env: 'EDGE_MAX_HEADER_BYTES', kind: 'size', default: '16KiB', group: 'HLS and proxying', help: 'largest request head accepted from a client' },

  // Edge cache
  { path: 'cache.size', flag: '--cache-size', env: 'EDGE_CACHE_SIZE', kind: 'size', default: '512MiB', group: 'Edge cache (segments and playlists)', help: 'memory for cached segments, keys and init sections (LRU, bodies in flight included); 0 = no segment cache' },
  { path: 'cache.maxObjectSize', flag: '--cache-max-object', env: 'EDGE_CACHE_MAX_OBJECT', kind: 'size', default: '64MiB', group: 'Edge cache (segments and playlists)', help: 'largest body kept; a larger one is passed through, uncached' },
  { path: 'cache.segmentTtl', flag: '--cache-segment-ttl', env: 'EDGE_CACHE_SEGMENT_TTL', kind: 'string', default: 'auto', metavar: 'auto|DURATION', group: 'Edge cache (segments and playlists)', help: 'how long a segment without Cache-Control max-age is kept: auto = 3 target durations of the playlist that listed it (30s until one is seen)' },
  { path: 'cache.playlistTtl', flag: '--cache-playlist-ttl', env: 'EDGE_CACHE_PLAYLIST_TTL', kind: 'duration', default: '1s', group: 'Edge cache (segments and playlists)', help: 'live playlists are shared by every session for this long, or half the target duration if shorter; 0 = fetched per request' },
  { path: 'cache.negativeTtl', flag: '--cache-negative-ttl', env: 'EDGE_CACHE_NEGATIVE_TTL', kind: 'duration', default: '1s', group: 'Edge cache (segments and playlists)', help: '404/410 answers are kept at most this long; other errors never' },
  { path: 'cache.bypass', flag: '--cache-bypass', env: 'EDGE_CACHE_BYPASS', kind: 'list', metavar: 'REGEX[,REGEX]', default: [], group: 'Edge cache (segments and playlists)', help: 'paths (regular expressions, e.g. a channel: ^/play/vod/) that are never cached: forwarded per request' },
  { path: 'cache.header', flag: '--cache-header', env: 'EDGE_CACHE_HEADER', kind: 'bool', default: true, group: 'Edge cache (segments and playlists)', help: 'add X-Cache: HIT | MISS | COALESCED to responses served through the cache' },

  // MPEG-TS fan-out
  { path: 'fanout.enabled', flag: '--fanout', env: 'EDGE_FANOUT', kind: 'bool', default: true, group: 'MPEG-TS fan-out', help: 'viewers of one HTTP MPEG-TS channel share one upstream connection (per edge process)' },
  { path: 'fanout.linger', flag: '--fanout-linger', env: 'EDGE_FANOUT_LINGER', kind: 'duration', default: '5s', group: 'MPEG-TS fan-out', help: 'the shared upstream connection stays open this long after its last viewer leaves' },
  { path: 'fanout.maxQueue', flag: '--fanout-max-queue', env: 'EDGE_FANOUT_MAX_QUEUE', kind: 'size', default: '8MiB', group: 'MPEG-TS fan-out', help: 'bytes a viewer may fall behind the channel before it is dropped' },
  { path: 'fanout.maxGop', flag: '--fanout-max-gop', env: 'EDGE_FANOUT_MAX_GOP', kind: 'size', default: '8MiB', group: 'MPEG-TS fan-out', help: 'a joining viewer starts at the latest keyframe when the GOP since is at most this big (0: at the next packet)' },
  // Browser players on another origin (CORS)
  { path: 'cors.origins', flag: '--cors-origin', env: 'EDGE_CORS_ORIGINS', kind: 'list', metavar: 'ORIGIN[,ORIGIN]', default: [], group: 'Browser players (CORS)', help: 'web origins whose players may read the edge\'s answers, e.g. https://tv.example.com, or * for any (comma-separated; flag repeatable); unset: no CORS headers' },
  { path: 'cors.maxAge', flag: '--cors-max-age', env: 'EDGE_CORS_MAX_AGE', kind: 'duration', default: DEFAULT_CORS_MAX_AGE, group: 'Browser players (CORS)', help: 'how long a browser may cache the answer to a preflight (Access-Control-Max-Age)' },
  { path: 'cors.credentials', flag: '--cors-credentials', env: 'EDGE_CORS_CREDENTIALS', kind: 'bool', default: false, group: 'Browser players (CORS)', help: 'allow requests with cookies (Access-Control-Allow-Credentials); needs listed origins, not *' },

  // Logging
  { path: 'log.level', flag: '--log-level', env: 'EDGE_LOG_LEVEL', kind: 'enum', values: LOG_LEVELS, default: 'info', group: 'Logging', help: 'log level (JSON lines on stdout); reloaded on SIGHUP' },
  { path: 'log.access', flag: '--access-log', env: 'EDGE_ACCESS_LOG', kind: 'bool', default: false, group: 'Logging', help: 'one log line per request (off by default: the hot path stays quiet)' },
  { path: 'log.accessSample', flag: '--access-log-sample', env: 'EDGE_ACCESS_LOG_SAMPLE', kind: 'ratio', default: 1, group: 'Logging', help: 'fraction of requests the access log keeps (0..1)' },
  { path: 'log.redactParams', flag: '--redact-param', env: 'EDGE_REDACT_PARAMS', kind: 'list', metavar: 'NAME[,NAME]', default: ['token'], group: 'Logging', help: 'query parameters whose values never appear in logs, names in any case or percent-encoding (the token parameter and the session marker always are redacted)' },

  // Health and lifecycle
  { path: 'health.public', flag: '--public-health', env: 'EDGE_PUBLIC_HEALTH', kind: 'bool', default: false, group: 'Health and lifecycle', help: 'also answer /healthz and /readyz on the public listener (for load balancers probing the traffic port)' },
  { path: 'health.checkUpstream', flag: '--ready-checks-upstream', env: 'EDGE_READY_CHECKS_UPSTREAM', kind: 'bool', default: false, group: 'Health and lifecycle', help: '/readyz also requires the upstream to answer' },
  { path: 'shutdown.grace', flag: '--shutdown-grace', env: 'EDGE_SHUTDOWN_GRACE', kind: 'duration', default: '0s', group: 'Health and lifecycle', help: 'after SIGTERM/SIGINT, /readyz is 503 at once but new connections are still accepted for this long (load balancers need a moment to notice)' },
  { path: 'shutdown.drainTimeout', flag: '--drain-timeout', env: 'EDGE_DRAIN_TIMEOUT', kind: 'duration', default: `${DEFAULT_DRAIN_TIMEOUT_MS / 1000}s`, group: 'Health and lifecycle', help: 'then in-flight responses get this long to finish; open MPEG-TS streams are cut at the end of it' },
];

export const OPTIONS_BY_FLAG: ReadonlyMap<string, OptionSpec> = new Map(
  OPTIONS.filter((o) => o.flag !== undefined).map((o) => [o.flag!, o]),
);
