/**
 * Builds every component from the frozen config and owns their lifetimes
 * (STYLE §6): `listen()` opens both listeners; `close()` drains in order:
 * readiness 503 → (grace: still accepting) → stop accepting → in-flight
 * responses finish (bounded by the drain timeout) → cut what is left →
 * close pools; `reload()` applies a new config to new decisions. No
 * module-level state: two apps can share a process.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { StatusSampler } from './admin/sampler.js';
import { createAdminHandler } from './admin/server.js';
import { Authorizer } from './auth/authorizer.js';
import { createBackends, overallTimeoutMs } from './auth/backends/index.js';
import { LocalRules } from './auth/rules.js';
import { defaultActionMeans, type LocalPolicy } from './auth/authorizer.js';
import { cidrList } from './config/cidr.js';
import { describeConfig } from './config/load.js';
import { redactUrl } from './redact.js';
import type { EdgeConfig } from './config/schema.js';
export { DEFAULT_DRAIN_TIMEOUT_MS } from './config/options.js';
import { guardRequests } from './crash-guard.js';
import { createLogger } from './log.js';
import { EdgeMetrics } from './metrics/metrics.js';
import { CorsPolicy } from './proxy/cors.js';
import { Forwarder } from './proxy/forward.js';
import { FanoutHub } from './proxy/fanout.js';
import { MediaCache } from './cache/media-cache.js';
import { PlaylistCache } from './cache/playlists.js';
import { SegmentCache } from './cache/segments.js';
import { SegmentTtls } from './cache/target-durations.js';
import type { Dispatcher } from 'undici';
import { answerClientError, refuseConnect } from './proxy/client-error.js';
import { createRequestHandler } from './proxy/handler.js';
import { CloseNotifier } from './session/close-notifier.js';
import type { FleetState } from './session/fleet.js';
import { MemorySessionStore } from './session/memory.js';
import { RedisFleet } from './session/redis.js';
import { SessionRegistry } from './session/registry.js';
import { MarkerKeys } from './session/marker.js';
import { SoloFleet } from './session/solo.js';
import { SessionTable } from './session/table.js';

/** Slow-loris guard: a request head must arrive within this time. */
const REQUEST_HEADERS_TIMEOUT_MS = 10_000;
/** While draining, idle keep-alive connections are closed this often (they would otherwise wait out keepAliveTimeout). */
const DRAIN_POLL_MS = 100;
/** The startup reachability hint for each middleware gives up after this long. */
const STARTUP_PROBE_TIMEOUT_MS = 1000;
/** The readiness probe's upstream check: any HTTP answer within this time counts. */
const UPSTREAM_PROBE_TIMEOUT_MS = 1000;
/**
 * listen() waits this long for the fleet's store, so the first sessions count
 * fleet-wide; past it the edge starts anyway (per-edge limits until Redis answers).
 */
const STORE_STARTUP_WAIT_MS = 3000;

/** Settings a SIGHUP applies; the rest needs a restart (listeners, pools, the store's size). */
const RELOADABLE = ['backend', 'backends', 'rules', 'securetoken', 'auth', 'limits', 'session.idleTimeoutMs', 'session.maxStreams', 'log.level'] as const;

export interface EdgeApp {
  readonly config: EdgeConfig;
  readonly metrics: EdgeMetrics;
  readonly sessions: SessionRegistry;
  /** `adminUrl`: undefined when the app has no admin listener (a worker of `--workers N`: the primary serves it). */
  listen(): Promise<{ url: string; adminUrl: string | undefined }>;
  /** What /readyz answers: listening, not draining, and (health.checkUpstream) the upstream answers. */
  isReady(): Promise<boolean>;
  /** Drains and stops; `drainTimeoutMs` overrides shutdown.drainTimeout. Idempotent. */
  close(drainTimeoutMs?: number): Promise<void>;
  /** Applies a new config to new decisions; returns the changed settings that need a restart. */
  reload(next: EdgeConfig): string[];
}

export interface AppOptions {
  readonly log?: Logger;
  /** Collect Node process metrics (off in tests that run many edges in one process). */
  readonly processMetrics?: boolean;
  /** Open the admin listener (default true); a worker of `--workers N` has none: its primary serves /metrics and the API for all. */
  readonly adminListener?: boolean;
  /**
   * The fleet this edge is part of, made by the caller: a worker of `--workers N` without Redis
   * brings its IpcFleet (session/ipc.ts). Default: RedisFleet with --store redis://, else SoloFleet.
   */
  readonly fleet?: FleetState;
}

/** The rules and securetoken settings as the Authorizer (and `check`) use them. */
export function localPolicy(config: EdgeConfig): LocalPolicy {
  const rules = new LocalRules(config.rules);
  return { rules: rules.empty ? undefined : rules, securetoken: config.securetoken };
}

export function createApp(initialConfig: EdgeConfig, options: AppOptions = {}): EdgeApp {
  let config = initialConfig;
  const log = options.log ?? createLogger(config.log.level);
  // Components reference each other through closures that run later (eviction, scrape, timers).
  const store = new MemorySessionStore({ maxGranted: config.auth.maxEntries, maxUngranted: config.auth.maxUngranted, onEvict: (s) => sessions.evicted(s) });
  const mediaCache = config.cache.maxBytes > 0 ? new MediaCache({ maxBytes: config.cache.maxBytes, maxEntryBytes: config.cache.maxObjectBytes }) : undefined;
  const metrics = new EdgeMetrics(
    {
      store,
      activeSessions: () => sessions.table.countByKind(),
      openStreams: () => forwarder.openStreams,
      cache: mediaCache,
      fanout: { get channelCount() { return fanout?.channelCount ?? 0; }, get viewerCount() { return fanout?.viewerCount ?? 0; } },
      storeUp: (): boolean => (options.fleet ?? redisFleet)?.connected ?? true,
    },
    { processMetrics: options.processMetrics ?? true },
  );
  const notifier = config.session.closeWebhook === undefined ? undefined : new CloseNotifier(config.session.closeWebhook, log);
  const table = new SessionTable();
  // A worker of --workers N brings its IpcFleet (unless the workers share Redis): the primary holds what they share.
  const redisFleet: RedisFleet | undefined =
    config.store.url === undefined || options.fleet !== undefined
      ? undefined
      : new RedisFleet({ url: config.store.url, prefix: config.store.prefix, nodeName: config.node.name, table, ttlMs: () => config.session.idleTimeoutMs, log, metrics, markerOf: (s) => s.marker });
  const fleet: FleetState = options.fleet ?? redisFleet ?? new SoloFleet(config.node.name, table);
  const sessions: SessionRegistry = new SessionRegistry({
    store,
    table,
    fleet,
    auth: config.auth,
    limits: config.limits,
    idleTimeoutMs: config.session.idleTimeoutMs,
    maxStreamsPerSession: config.session.maxStreams,
    log,
    metrics,
    notifier,
    onExpiry: (s) => authorizer.recheck(s),
    markers: config.session.secret === undefined ? undefined : new MarkerKeys(config.session.secret, config.session.previousSecret, Date.now() + config.session.secretOverlapMs),
  });
  const authorizer: Authorizer = new Authorizer({
    backend: createBackends(config.backends, metrics),
    local: localPolicy(config),
    auth: config.auth,
    backendTimeoutMs: overallTimeoutMs(config.backends),
    sessions,
    metrics,
    log,
  });
  // CORS needs a restart to change (not in RELOADABLE): the header arrays are built once, here.
  const cors = CorsPolicy.from(config.cors);
  const forwarder: Forwarder = new Forwarder({
    upstream: config.upstream,
    maxPlaylistBytes: config.hls.maxPlaylistBytes,
    sessionParam: config.session.param,
    clientStallTimeoutMs: config.proxy.clientStallTimeoutMs,
    sharedStreams: () => fanout?.channelCount ?? 0,
    metrics,
    log,
    cors,
  });
  const { segments, playlists, fanout } = createMediaPaths(config, forwarder, mediaCache, metrics);
  const trustedProxies = cidrList(config.proxy.trustedProxies);

  let listening = false;
  let draining = false;
  const isReady = async (): Promise<boolean> => listening && !draining && (!config.health.checkUpstream || (await forwarder.probe(UPSTREAM_PROBE_TIMEOUT_MS)));
  // Both handlers are guarded: an exception in one request is a 500 for that request, not the end of every stream.
  const publicServer = createServer(
    { maxHeaderSize: config.proxy.maxHeaderBytes, headersTimeout: REQUEST_HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_HEADERS_TIMEOUT_MS * 3 },
    guardRequests('public', createRequestHandler({ config, sessions, authorizer, forwarder, metrics, log, trustedProxies, isReady: config.health.public ? isReady : undefined, cors, segments, playlists, fanout }), {
      log,
      metrics,
      answerHeaders: cors === undefined ? undefined : (res) => cors.headersForResponse(res),
    }),
  );
  const adminServer = options.adminListener === false ? undefined : createAdminServer(metrics, sessions, config.admin.token, isReady, log);
  const sockets = new Set<Socket>();
  publicServer.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  // Malformed request heads get a 4xx with a stable code, not a silent close; CONNECT gets a 405.
  publicServer.on('clientError', answerClientError);
  publicServer.on('connect', refuseConnect);

  let closing: Promise<void> | undefined;

  async function drainAndClose(drainTimeoutMs: number): Promise<void> {
    draining = true; // readiness turns 503 at once
    if (config.shutdown.graceMs > 0) {
      log.info({ graceMs: config.shutdown.graceMs }, 'draining: readiness is 503, still accepting during the grace period');
      await delay(config.shutdown.graceMs);
    }
    const publicClosed = new Promise<void>((resolve) => publicServer.close(() => resolve()));
    log.info({ drainTimeoutMs, connections: sockets.size }, 'draining: no new connections; in-flight responses may finish');
    // Idle keep-alive connections go now and whenever a response finishes; busy ones finish their response.
    const poll = setInterval(() => publicServer.closeIdleConnections(), DRAIN_POLL_MS);
    publicServer.closeIdleConnections();
    const drained = await Promise.race([publicClosed.then(() => true), delay(drainTimeoutMs).then(() => false)]);
    clearInterval(poll);
    if (!drained) {
      log.info({ connections: sockets.size }, 'drain timeout: cutting the remaining connections (open MPEG-TS streams)');
      sessions.closeAll();
      for (const socket of sockets) socket.destroy();
      await publicClosed;
    }
    sessions.closeAll();
    fanout?.close();
    playlists?.close();
    mediaCache?.close();
    await authorizer.close();
    await forwarder.close();
    await notifier?.close();
    // After closeAll: the fleet hears this edge's sessions leave before the connection closes.
    await fleet.close();
    await store.close();
    if (adminServer !== undefined) {
      await new Promise<void>((resolve) => {
        adminServer.close(() => resolve());
        adminServer.closeAllConnections();
      });
    }
    log.info('astra-auth-edge stopped');
  }

  return {
    get config() {
      return config;
    },
    metrics,
    sessions,
    async listen() {
      await listenOn(publicServer, config.listen.host, config.listen.port);
      if (adminServer !== undefined) await listenOn(adminServer, config.admin.listen.host, config.admin.listen.port);
      if (redisFleet !== undefined && !(await redisFleet.ready(STORE_STARTUP_WAIT_MS))) {
        log.warn({ store: redactUrl(config.store.url!) }, `fleet store not reachable within ${STORE_STARTUP_WAIT_MS / 1000} s: starting with this edge's own limits; reconnecting in the background`);
      }
      listening = true;
      const url = addressUrl(publicServer.address() as AddressInfo);
      const adminUrl = adminServer === undefined ? undefined : addressUrl(adminServer.address() as AddressInfo);
      log.info({ url, adminUrl, config: describeConfig(config) }, 'astra-auth-edge listening');
      for (const b of config.backends) void warnIfUnreachable(b.url, b.name, config, log);
      if (config.store.url !== undefined && config.session.secret === undefined) {
        log.warn('--store is set without --session-secret: sessions are listed, limited and kicked fleet-wide, but an edge cannot serve a session another edge opened (its marker is unsigned): set the same --session-secret on every edge');
      }
      if (config.backends.length === 0) {
        log.warn({ defaultAction: config.auth.defaultAction }, `no middleware configured (--backend): every new session gets the default action "${config.auth.defaultAction}"`);
      }
      return { url, adminUrl };
    },
    isReady,
    close(drainTimeoutMs = config.shutdown.drainTimeoutMs) {
      closing ??= drainAndClose(drainTimeoutMs);
      return closing;
    },
    reload(next) {
      // Compared unredacted (a rotated ?key= in a middleware URL is a change); only the keys are logged.
      const before = flatten(comparable(config));
      const after = flatten(comparable(next));
      const changed = Object.keys({ ...before, ...after }).filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]));
      const needsRestart = changed.filter((k) => k === 'auth.maxEntries' || k === 'auth.maxUngranted' || !RELOADABLE.some((r) => k === r || k.startsWith(`${r}.`)));
      const backendChanged = changed.some((k) => k.startsWith('backend.') || k.startsWith('backends'));
      authorizer.reconfigure({
        ...(backendChanged && { backend: createBackends(next.backends, metrics) }),
        local: localPolicy(next),
        auth: next.auth,
        backendTimeoutMs: overallTimeoutMs(next.backends),
      });
      sessions.reconfigure({ auth: next.auth, limits: next.limits, idleTimeoutMs: next.session.idleTimeoutMs, maxStreamsPerSession: next.session.maxStreams });
      log.level = next.log.level;
      // Keep the settings that could not change live as they are, so `config` says what is in force.
      config = needsRestart.length === 0 ? next : { ...config, backend: next.backend, backends: next.backends, rules: next.rules, securetoken: next.securetoken, auth: { ...next.auth, maxEntries: config.auth.maxEntries, maxUngranted: config.auth.maxUngranted }, limits: next.limits, session: { ...config.session, idleTimeoutMs: next.session.idleTimeoutMs, maxStreams: next.session.maxStreams }, log: { ...config.log, level: next.log.level } };
      log.info({ changed: changed.filter((k) => !needsRestart.includes(k)), needsRestart }, 'configuration reloaded');
      if (needsRestart.length > 0) log.warn({ settings: needsRestart }, 'these changed settings take effect only after a restart');
      return needsRestart;
    },
  };
}

/** The admin listener, with the status page's sampler (stopped when the listener closes). */
function createAdminServer(metrics: EdgeMetrics, sessions: SessionRegistry, adminToken: string | undefined, isReady: () => Promise<boolean>, log: Logger): Server {
  // The status page's charts: sampled from our own registry; stops when close() closes the admin listener.
  const statusSampler = new StatusSampler({ registry: metrics.registry });
  statusSampler.start();
  const adminServer = createServer(
    // requireHostHeader off: the admin handler answers a missing Host itself, with an error code (admin/server.ts).
    { headersTimeout: REQUEST_HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_HEADERS_TIMEOUT_MS * 3, requireHostHeader: false },
    guardRequests('admin', createAdminHandler({ registry: metrics.registry, sessions, adminToken, isReady, sampler: statusSampler }), { log, metrics }),
  );
  adminServer.once('close', () => statusSampler.close());
  adminServer.on('clientError', answerClientError);
  // CONNECT (authority-form) never reaches the request handler; without this Node closes the socket without a word.
  adminServer.on('connect', refuseConnect);
  return adminServer;
}

/**
 * The edge cache (segments, playlists) and the MPEG-TS fan-out, each on the
 * forwarder's pools, each only when enabled.
 */
function createMediaPaths(config: EdgeConfig, forwarder: Forwarder, mediaCache: MediaCache | undefined, metrics: EdgeMetrics): { segments?: SegmentCache; playlists?: PlaylistCache; fanout?: FanoutHub } {
  const origin = config.upstream.origin;
  const dispatch = (o: Dispatcher.DispatchOptions, h: Dispatcher.DispatchHandler): boolean => forwarder.pool.dispatch(o, h);
  const ttls = new SegmentTtls(config.cache.segmentTtlMs, config.cache.negativeTtlMs);
  const decorate = (res: ServerResponse, headers: string[]): string[] => forwarder.withCors(res, headers);
  const segments =
    mediaCache === undefined
      ? undefined
      : new SegmentCache({
          cache: mediaCache,
          origin,
          dispatch,
          defaults: (key) => ttls.defaultsFor(key),
          xCache: config.cache.header,
          decorate,
          stalls: forwarder.stalls,
          onUpstreamBytes: (n) => metrics.upstreamBytesReceived('segment', n),
          onResult: (result) => metrics.cacheRequest('segment', result),
          onFetchDone: (error) => forwarder.countUpstream(error),
        });
  const playlists =
    config.cache.playlistTtlMs <= 0
      ? undefined
      : new PlaylistCache({
          ttlMs: config.cache.playlistTtlMs,
          negativeTtlMs: config.cache.negativeTtlMs,
          maxPlaylistBytes: config.hls.maxPlaylistBytes,
          origin,
          dispatch,
          context: forwarder.playlistContext,
          xCache: config.cache.header,
          decorate,
          onUpstreamBytes: (n) => metrics.upstreamBytesReceived('playlist', n),
          onResult: (result) => metrics.cacheRequest('playlist', result),
          onFetchDone: (error) => forwarder.countUpstream(error),
          onTargetDuration: (key, seconds) => ttls.learn(key, seconds),
        });
  const fanout = !config.fanout.enabled
    ? undefined
    : new FanoutHub({
        dispatch: (path, headers, handler) => forwarder.streamPool.dispatch({ origin, method: 'GET', path, headers }, handler),
        maxQueueBytes: config.fanout.maxQueueBytes,
        lingerMs: config.fanout.lingerMs,
        maxGopBytes: config.fanout.maxGopBytes,
        stallWatch: forwarder.stalls,
        decorate,
        events: { upstreamBytes: (n) => metrics.upstreamBytesReceived('stream', n), viewerDropped: (reason) => metrics.fanoutDropped(reason), upstreamDone: (error) => forwarder.countUpstream(error) },
      });
  return { segments, playlists, fanout };
}

/**
 * A startup hint, not a health check: one TCP connect to each middleware so a
 * typo in --backend shows up in the first screen of logs, not at the first viewer.
 */
async function warnIfUnreachable(url: string, name: string, config: EdgeConfig, log: Logger): Promise<void> {
  const u = new URL(url);
  const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
  const error = await new Promise<string | undefined>((resolve) => {
    const socket = connect({ host: u.hostname.replace(/^\[|\]$/g, ''), port, timeout: STARTUP_PROBE_TIMEOUT_MS });
    socket.once('connect', () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve('ETIMEDOUT');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
  if (error === undefined) return;
  log.warn({ backend: name, url: redactUrl(url), error }, `middleware URL unreachable (${error}): check --backend; ${defaultActionMeans(config.auth.defaultAction)}`);
}

/** The config as plain data, secrets included, for change detection only (never logged). */
function comparable(config: EdgeConfig): Record<string, unknown> {
  return JSON.parse(JSON.stringify(config, (_k, v: unknown) => (v instanceof RegExp ? v.source : v))) as Record<string, unknown>;
}

function flatten(value: unknown, prefix = '', out: Record<string, unknown> = {}): Record<string, unknown> {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix === '' ? k : `${prefix}.${k}`, out);
  } else {
    out[prefix] = value;
  }
  return out;
}

function listenOn(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

function addressUrl(address: AddressInfo): string {
  const host = address.family === 'IPv6' || address.address.includes(':') ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
