/**
 * Wires the demo in one process and owns its lifetime: the demo middleware
 * and the simulated origin on ephemeral loopback ports, the real edge
 * (createApp, configured as an operator would) in front of both, and the
 * live source (ffmpeg, else placeholder segments). The edge listens before
 * ffmpeg starts, so a port in use is reported at once. close() stops in
 * order: the edge drains (its upstream and middleware still up), then the
 * origin, the middleware, and ffmpeg with its temporary directory.
 */
import type { DestinationStream } from 'pino';
import { createApp, type EdgeApp } from '../app.js';
import { buildConfig } from '../config/load.js';
import type { HostPort } from '../config/units.js';
import { createLogger } from '../log.js';
import { startFfmpegLive, type FfmpegLive } from './ffmpeg.js';
import { placeholderLive, type LiveSource } from './live.js';
import { startDemoMiddleware, type DemoMiddleware, type MiddlewareCounts } from './middleware.js';
import { startDemoOrigin, type DemoOrigin } from './origin.js';
import { FFMPEG_MISSING } from './output.js';

/** Drain on Ctrl-C: long enough for a segment download to finish, short enough that nobody waits. */
export const DEMO_DRAIN = '2s';
/** The edge's middleware timeout: the demo-slow token (3 s) exceeds it on purpose. */
export const DEMO_BACKEND_TIMEOUT = '1s';
/** ffmpeg and the demo both get a terminal's Ctrl-C; give the demo's own signal handler this long to claim it. */
const FFMPEG_EXIT_SETTLE_MS = 500;

export interface DemoOptions {
  /** HOST:PORT as the user wrote them (parsed and checked by buildConfig). */
  readonly listen: string;
  readonly adminListen: string;
  /** The edge's log lines (pino JSON). */
  readonly log: DestinationStream;
  /** A line for the user. */
  readonly say: (line: string) => void;
  /** ffmpeg died while the demo was running (not stopping). */
  readonly onFatal: (message: string) => void;
  /** Aborted when the user asked to stop during start-up: no fallback notices then. */
  readonly signal: AbortSignal;
}

export interface Demo {
  /** Browsable base URL of the public listener. */
  readonly edgeUrl: string;
  readonly adminUrl: string;
  readonly media: LiveSource['kind'];
  readonly mediaDir: string | undefined;
  readonly ffmpegPid: number | undefined;
  counts(): MiddlewareCounts;
  /** Idempotent. */
  close(): Promise<void>;
  /** For process 'exit' after a crash: kills ffmpeg and removes its directory, synchronously. */
  killNow(): void;
}

/** A listener could not be opened; the message says what to run instead. */
export class DemoListenError extends Error {
  override readonly name = 'DemoListenError';
}

function browsable(url: string): string {
  return url.replace('//0.0.0.0:', '//127.0.0.1:').replace('//[::]:', '//[::1]:');
}

function listenError(err: NodeJS.ErrnoException & { port?: number }, app: EdgeApp): DemoListenError | undefined {
  const { listen, admin } = app.config;
  const flagOf = (port: number | undefined): { flag: string; hp: HostPort } =>
    port === admin.listen.port && port !== listen.port ? { flag: '--admin-listen', hp: admin.listen } : { flag: '--listen', hp: listen };
  const { flag, hp } = flagOf(err.port);
  const host = hp.host.includes(':') ? `[${hp.host}]` : hp.host;
  const where = `${host}:${hp.port}`;
  if (listen.port === admin.listen.port && listen.host === admin.listen.host) {
    return new DemoListenError(`--listen and --admin-listen are both ${where}: give them different ports`);
  }
  // Another port far from the usual ones (8080 → 18080); 0 lets the system pick one.
  const other = hp.port + 10_000 <= 65_535 ? hp.port + 10_000 : 0;
  if (err.code === 'EADDRINUSE') return new DemoListenError(`${where} is in use: run with ${flag} ${host}:${other}`);
  if (err.code === 'EACCES') return new DemoListenError(`${where}: permission denied (ports below 1024 need privileges): run with ${flag} ${host}:${other}`);
  if (err.code === 'EADDRNOTAVAIL') return new DemoListenError(`${where}: not an address of this machine: run with ${flag} 127.0.0.1:${hp.port}`);
  return undefined;
}

async function startLive(options: DemoOptions, onExit: (description: string) => void): Promise<{ source: LiveSource; ffmpeg?: FfmpegLive }> {
  const started = await startFfmpegLive({
    onSpawned: () => options.say('ffmpeg is encoding the first live segments (a few seconds)…'),
    onUnexpectedExit: onExit,
  });
  if (started.ok) return { source: started.live, ffmpeg: started.live };
  if (!options.signal.aborted) options.say(started.missing ? FFMPEG_MISSING : `${started.reason}: the demo serves placeholder segments instead`);
  return { source: placeholderLive() };
}

export async function startDemo(options: DemoOptions): Promise<Demo> {
  const owned: { close(): Promise<void> }[] = [];
  const closeAll = async (): Promise<void> => {
    for (const c of owned.splice(0).reverse()) await c.close();
  };
  try {
    const middleware: DemoMiddleware = await startDemoMiddleware();
    owned.push(middleware);
    const origin: DemoOrigin = await startDemoOrigin();
    owned.push(origin);
    const config = buildConfig({
      fileName: 'demo',
      flags: {
        listen: options.listen,
        'admin.listen': options.adminListen,
        'upstream.url': origin.url,
        'backend.type': 'http',
        'backend.url': middleware.checkUrl,
        'backend.timeout': DEMO_BACKEND_TIMEOUT,
        'auth.defaultAction': 'allow',
        'shutdown.drainTimeout': DEMO_DRAIN,
        'log.level': 'info',
      },
    });
    // The edge's log is held back until it listens: a refused port gets one clear line, not a drain log.
    let logging = false;
    const log = createLogger(config.log.level, { write: (line: string) => void (logging && options.log.write(line)) });
    const app = createApp(config, { log });
    let urls: { url: string; adminUrl: string };
    try {
      const listening = await app.listen();
      urls = { url: listening.url, adminUrl: listening.adminUrl! };
    } catch (err) {
      await app.close(0);
      throw listenError(err as NodeJS.ErrnoException, app) ?? err;
    }
    logging = true;
    owned.push({ close: () => app.close() });

    let stopping = false;
    const { source: live, ffmpeg } = await startLive(options, (description) => {
      setTimeout(() => {
        if (!stopping) options.onFatal(`ffmpeg exited unexpectedly (${description})`);
      }, FFMPEG_EXIT_SETTLE_MS).unref();
    });
    origin.setSource(live);
    // ffmpeg stops after the edge, the origin and the middleware: the edge drains against a live origin.
    owned.unshift(live);
    let closed: Promise<void> | undefined;
    return {
      edgeUrl: browsable(urls.url),
      adminUrl: browsable(urls.adminUrl),
      media: live.kind,
      mediaDir: ffmpeg?.dir,
      ffmpegPid: ffmpeg?.pid,
      counts: () => middleware.counts(),
      close() {
        stopping = true;
        closed ??= closeAll();
        return closed;
      },
      killNow: () => ffmpeg?.killNow(),
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
