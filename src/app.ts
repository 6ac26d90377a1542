/**
 * Builds every component from the frozen config and owns their lifetimes
 * (STYLE §6): `listen()` opens both listeners, `close()` drains in order:
 * stop accepting → let in-flight responses finish (bounded) → cut what is
 * left → close pools. No module-level state: two apps can share a process.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from 'pino';
import { createAdminHandler } from './admin/server.js';
import { Authorizer } from './auth/authorizer.js';
import { HttpBackend } from './auth/backends/http.js';
import type { AuthBackend } from './auth/types.js';
import { MemorySessionStore } from './cache/session-store.js';
import { cidrList, describeConfig } from './config/load.js';
import type { EdgeConfig } from './config/schema.js';
import { createLogger } from './log.js';
import { EdgeMetrics } from './metrics/metrics.js';
import { Forwarder } from './proxy/forward.js';
import { createRequestHandler } from './proxy/handler.js';
import { CloseNotifier } from './session/close-notifier.js';
import { SessionRegistry } from './session/registry.js';

/** Slow-loris guard: a request head must arrive within this time. */
const REQUEST_HEADERS_TIMEOUT_MS = 10_000;
/** How long `close()` lets in-flight responses finish before cutting them. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;

export interface EdgeApp {
  readonly config: EdgeConfig;
  readonly metrics: EdgeMetrics;
  readonly sessions: SessionRegistry;
  listen(): Promise<{ url: string; adminUrl: string }>;
  close(drainTimeoutMs?: number): Promise<void>;
}

export interface AppOptions {
  readonly log?: Logger;
  /** Collect Node process metrics (off in tests that run many edges in one process). */
  readonly processMetrics?: boolean;
}

export function createBackend(config: EdgeConfig): AuthBackend | undefined {
  const b = config.backend;
  if (b.url === undefined) return undefined;
  switch (b.type) {
    case 'http':
      return new HttpBackend({ url: b.url, timeoutMs: b.timeoutMs, maxBodyBytes: b.maxBodyBytes, connections: b.connections });
  }
}

export function createApp(config: EdgeConfig, options: AppOptions = {}): EdgeApp {
  const log = options.log ?? createLogger(config.log.level);
  // Components reference each other through closures that run later (eviction, scrape, timers).
  const store = new MemorySessionStore(config.auth.maxEntries, (s) => sessions.evicted(s));
  const metrics = new EdgeMetrics({ store, activeSessions: () => sessions.table.countByKind() }, { processMetrics: options.processMetrics ?? true });
  const notifier = config.session.closeWebhook === undefined ? undefined : new CloseNotifier(config.session.closeWebhook, log);
  const sessions: SessionRegistry = new SessionRegistry({
    store,
    auth: config.auth,
    limits: config.limits,
    idleTimeoutMs: config.session.idleTimeoutMs,
    log,
    metrics,
    notifier,
    onExpiry: (s) => authorizer.recheck(s),
  });
  const backend = createBackend(config);
  const authorizer: Authorizer = new Authorizer({ backend, auth: config.auth, backendTimeoutMs: config.backend.timeoutMs, sessions, metrics, log });
  const forwarder = new Forwarder({ upstream: config.upstream, maxPlaylistBytes: config.hls.maxPlaylistBytes, sessionParam: config.session.param, metrics, log });
  const trustedProxies = config.proxy.trustedProxies.length > 0 ? cidrList(config.proxy.trustedProxies) : undefined;

  let ready = false;
  const publicServer = createServer(
    { maxHeaderSize: config.proxy.maxHeaderBytes, headersTimeout: REQUEST_HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_HEADERS_TIMEOUT_MS * 3 },
    createRequestHandler({ config, sessions, authorizer, forwarder, metrics, log, trustedProxies }),
  );
  const adminServer = createServer(createAdminHandler({ registry: metrics.registry, sessions, adminToken: config.admin.token, isReady: () => ready }));
  const sockets = new Set<Socket>();
  publicServer.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  publicServer.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    // Malformed request heads (too large, bad syntax) get a 4xx, not a silent close.
    if (!socket.writable) return;
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
    const body = `{"error":"EDGE_ERR_BAD_REQUEST","reason":"${err.code ?? 'bad_request'}"}\n`;
    socket.end(`HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
  });

  let closing: Promise<void> | undefined;

  return {
    config,
    metrics,
    sessions,
    async listen() {
      await listenOn(publicServer, config.listen.host, config.listen.port);
      await listenOn(adminServer, config.admin.listen.host, config.admin.listen.port);
      ready = true;
      const url = addressUrl(publicServer.address() as AddressInfo);
      const adminUrl = addressUrl(adminServer.address() as AddressInfo);
      log.info({ url, adminUrl, config: describeConfig(config) }, 'astra-auth-edge listening');
      if (backend === undefined) {
        log.warn({ defaultAction: config.auth.defaultAction }, `no middleware configured (--backend): every new session gets the default action "${config.auth.defaultAction}"`);
      }
      return { url, adminUrl };
    },
    close(drainTimeoutMs = DEFAULT_DRAIN_TIMEOUT_MS) {
      closing ??= (async () => {
        ready = false;
        const publicClosed = new Promise<void>((resolve) => publicServer.close(() => resolve()));
        publicServer.closeIdleConnections();
        const drained = await Promise.race([publicClosed.then(() => true), delay(drainTimeoutMs).then(() => false)]);
        if (!drained) {
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
      })();
      return closing;
    },
  };
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
