/**
 * Builds every component from the frozen config and owns their lifetimes
 * (STYLE §6): `listen()` opens both listeners; `close()` drains in order:
 * readiness 503 → (grace: still accepting) → stop accepting → in-flight
 * responses finish (bounded by the drain timeout) → cut what is left →
 * close pools; `reload()` applies a new config to new decisions. No
 * module-level state: two apps can share a process.
 */
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { StatusSampler } from './admin/sampler.js';
import { createAdminHandler } from './admin/server.js';
import { Authorizer } from './auth/authorizer.js';
import { createBackends, overallTimeoutMs } from './auth/backends/index.js';
import { LocalRules } from './auth/rules.js';
import { defaultActionMeans, type LocalPolicy } from './auth/authorizer.js';
import { MemorySessionStore } from './cache/session-store.js';
import { cidrList } from './config/cidr.js';
import { describeConfig } from './config/load.js';
import { redactUrl } from './redact.js';
import type { EdgeConfig } from './config/schema.js';
export { DEFAULT_DRAIN_TIMEOUT_MS } from './config/options.js';
import { guardRequests } from './crash-guard.js';
import { errorBody, type ErrorCode } from './errors.js';
import { createLogger } from './log.js';
import { EdgeMetrics } from './metrics/metrics.js';
import { Forwarder } from './proxy/forward.js';
import { createRequestHandler } from './proxy/handler.js';
import { CloseNotifier } from './session/close-notifier.js';
import { SessionRegistry } from './session/registry.js';

/** Slow-loris guard: a request head must arrive within this time. */
const REQUEST_HEADERS_TIMEOUT_MS = 10_000;
/** While draining, idle keep-alive connections are closed this often (they would otherwise wait out keepAliveTimeout). */
const DRAIN_POLL_MS = 100;
/** The startup reachability hint for each middleware gives up after this long. */
const STARTUP_PROBE_TIMEOUT_MS = 1000;
/** The readiness probe's upstream check: any HTTP answer within this time counts. */
const UPSTREAM_PROBE_TIMEOUT_MS = 1000;

/** Settings a SIGHUP applies; the rest needs a restart (listeners, pools, the store's size). */
const RELOADABLE = ['backend', 'backends', 'rules', 'securetoken', 'auth', 'limits', 'session.idleTimeoutMs', 'session.maxStreams', 'log.level'] as const;

export interface EdgeApp {
  readonly config: EdgeConfig;
  readonly metrics: EdgeMetrics;
  readonly sessions: SessionRegistry;
  listen(): Promise<{ url: string; adminUrl: string }>;
  /** Drains and stops; `drainTimeoutMs` overrides shutdown.drainTimeout. Idempotent. */
  close(drainTimeoutMs?: number): Promise<void>;
  /** Applies a new config to new decisions; returns the changed settings that need a restart. */
  reload(next: EdgeConfig): string[];
}

export interface AppOptions {
  readonly log?: Logger;
  /** Collect Node process metrics (off in tests that run many edges in one process). */
  readonly processMetrics?: boolean;
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
  const store = new MemorySessionStore(config.auth.maxEntries, (s) => sessions.evicted(s));
  const metrics = new EdgeMetrics(
    { store, activeSessions: () => sessions.table.countByKind(), openStreams: () => forwarder.openStreams },
    { processMetrics: options.processMetrics ?? true },
  );
  const notifier = config.session.closeWebhook === undefined ? undefined : new CloseNotifier(config.session.closeWebhook, log);
  const sessions: SessionRegistry = new SessionRegistry({
    store,
    auth: config.auth,
    limits: config.limits,
    idleTimeoutMs: config.session.idleTimeoutMs,
    maxStreamsPerSession: config.session.maxStreams,
    log,
    metrics,
    notifier,
    onExpiry: (s) => authorizer.recheck(s),
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
  const forwarder: Forwarder = new Forwarder({
    upstream: config.upstream,
    maxPlaylistBytes: config.hls.maxPlaylistBytes,
    sessionParam: config.session.param,
    clientStallTimeoutMs: config.proxy.clientStallTimeoutMs,
    metrics,
    log,
  });
  const trustedProxies = cidrList(config.proxy.trustedProxies);

  let listening = false;
  let draining = false;
  const isReady = async (): Promise<boolean> => listening && !draining && (!config.health.checkUpstream || (await forwarder.probe(UPSTREAM_PROBE_TIMEOUT_MS)));
  // Both handlers are guarded: an exception in one request is a 500 for that request, not the end of every stream.
  const publicServer = createServer(
    { maxHeaderSize: config.proxy.maxHeaderBytes, headersTimeout: REQUEST_HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_HEADERS_TIMEOUT_MS * 3 },
    guardRequests('public', createRequestHandler({ config, sessions, authorizer, forwarder, metrics, log, trustedProxies, isReady: config.health.public ? isReady : undefined }), { log, metrics }),
  );
  // The status page's charts: sampled from our own registry; stops when close() closes the admin listener.
  const statusSampler = new StatusSampler({ registry: metrics.registry });
  statusSampler.start();
  const adminServer = createServer(
    // requireHostHeader off: the admin handler answers a missing Host itself, with an error code (admin/server.ts).
    { headersTimeout: REQUEST_HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_HEADERS_TIMEOUT_MS * 3, requireHostHeader: false },
    guardRequests('admin', createAdminHandler({ registry: metrics.registry, sessions, adminToken: config.admin.token, isReady, sampler: statusSampler }), { log, metrics }),
  );
  adminServer.once('close', () => statusSampler.close());
  adminServer.on('clientError', answerClientError);
  // CONNECT (authority-form) never reaches the request handler; without this Node closes the socket without a word.
  adminServer.on('connect', (_req: unknown, socket: Socket) => refuseOnSocket(socket, 405, 'Method Not Allowed', 'EDGE_ERR_METHOD_NOT_ALLOWED', 'CONNECT'));
  const sockets = new Set<Socket>();
  publicServer.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  publicServer.on('clientError', answerClientError);

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
    await authorizer.close();
    await forwarder.close();
    await notifier?.close();
    store.close();
    await new Promise<void>((resolve) => {
      adminServer.close(() => resolve());
      adminServer.closeAllConnections();
    });
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
      await listenOn(adminServer, config.admin.listen.host, config.admin.listen.port);
      listening = true;
      const url = addressUrl(publicServer.address() as AddressInfo);
      const adminUrl = addressUrl(adminServer.address() as AddressInfo);
      log.info({ url, adminUrl, config: describeConfig(config) }, 'astra-auth-edge listening');
      for (const b of config.backends) void warnIfUnreachable(b.url, b.name, config, log);
      if (config.backends.length === 0) {
        log.warn({ defaultAction: config.auth.defaultAction }, `no middleware configured (--backend): every new session gets the default action "${config.auth.defaultAction}"`);
      }
      return { url, adminUrl };
    },
    close(drainTimeoutMs = config.shutdown.drainTimeoutMs) {
      closing ??= drainAndClose(drainTimeoutMs);
      return closing;
    },
    reload(next) {
      const before = flatten(describeConfig(config));
      const after = flatten(describeConfig(next));
      const changed = Object.keys({ ...before, ...after }).filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]));
      const needsRestart = changed.filter((k) => k === 'auth.maxEntries' || !RELOADABLE.some((r) => k === r || k.startsWith(`${r}.`)));
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
      config = needsRestart.length === 0 ? next : { ...config, backend: next.backend, backends: next.backends, rules: next.rules, securetoken: next.securetoken, auth: { ...next.auth, maxEntries: config.auth.maxEntries }, limits: next.limits, session: { ...config.session, idleTimeoutMs: next.session.idleTimeoutMs, maxStreams: next.session.maxStreams }, log: { ...config.log, level: next.log.level } };
      log.info({ changed: changed.filter((k) => !needsRestart.includes(k)), needsRestart }, 'configuration reloaded');
      if (needsRestart.length > 0) log.warn({ settings: needsRestart }, 'these changed settings take effect only after a restart');
      return needsRestart;
    },
  };
}

/** Malformed request heads (too large, bad syntax) get a 4xx, not a silent close; on both listeners. */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'HPE_HEADER_OVERFLOW') refuseOnSocket(socket, 431, 'Request Header Fields Too Large', 'EDGE_ERR_BAD_REQUEST', err.code);
  else refuseOnSocket(socket, 400, 'Bad Request', 'EDGE_ERR_BAD_REQUEST', err.code ?? 'bad_request');
}

/** A whole error response written on a socket the HTTP server gave up on, then closed. */
function refuseOnSocket(socket: Socket, status: number, statusText: string, code: ErrorCode, reason: string): void {
  if (!socket.writable) return;
  const body = errorBody(code, reason);
  socket.end(`HTTP/1.1 ${status} ${statusText}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
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
