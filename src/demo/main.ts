/**
 * `npm run demo`: the edge in front of a simulated live origin and a demo
 * middleware, all in this process (plus one ffmpeg child), ready to play.
 * The demo's entry point, and like src/main.ts the only file of the demo
 * that reads process.argv and signals (STYLE §4, §6).
 *
 * Exit codes: 0 stopped on SIGINT/SIGTERM/SIGHUP, 1 runtime failure (a port
 * in use, ffmpeg dying mid-demo), 2 bad command line.
 */
import { parseHostPort } from '../config/units.js';
import { EdgeError } from '../errors.js';
import { DEMO_DRAIN, DemoListenError, startDemo, type Demo } from './demo.js';
import { banner, goodbye, humanLog } from './output.js';

const DEFAULT_LISTEN = '127.0.0.1:8080';
const DEFAULT_ADMIN_LISTEN = '127.0.0.1:9901';
const EXIT_RUNTIME = 1;
const EXIT_USAGE = 2;
/** A stop that hangs (it should take ~2 s at most: the drain) must not trap the user at the terminal. */
const STOP_DEADLINE_MS = 10_000;
/** After a clean stop, something still holding the event loop open gets this long before exit. */
const EXIT_LINGER_MS = 1000;
const LOOPBACK = /^(?:127\.\d+\.\d+\.\d+|::1|localhost)$/;
const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

const USAGE = `usage: node dist/demo/main.js [--listen HOST:PORT] [--admin-listen HOST:PORT]

Starts a simulated live origin (channels news, sports, movies; real video when
ffmpeg is installed), a demo middleware (tokens demo-…) and astra-auth-edge in
front of them, and prints the URLs to play.

  --listen HOST:PORT        the edge's public listener (default ${DEFAULT_LISTEN})
  --admin-listen HOST:PORT  status page, API and metrics (default ${DEFAULT_ADMIN_LISTEN})
`;

class UsageError extends Error {}

function parseDemoArgs(argv: readonly string[]): { listen: string; adminListen: string } | 'help' {
  const out = { listen: DEFAULT_LISTEN, adminListen: DEFAULT_ADMIN_LISTEN };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') return 'help';
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg : arg.slice(0, eq);
    if (name !== '--listen' && name !== '--admin-listen') throw new UsageError(`unknown argument "${arg}"`);
    const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
    if (value === undefined || value === '') throw new UsageError(`${name} needs a value, e.g. ${name} 127.0.0.1:${name === '--listen' ? 18080 : 19901}`);
    if (name === '--listen') out.listen = value;
    else out.adminListen = value;
  }
  // The edge would ask for an admin token; the demo has none to offer, so its admin API stays local.
  const admin = parseHostPort(out.adminListen);
  if (admin !== undefined && !LOOPBACK.test(admin.host)) throw new UsageError(`--admin-listen ${out.adminListen}: the demo's admin API has no token, so it stays on loopback: use 127.0.0.1:${admin.port}`);
  return out;
}

const say = (line: string): void => void process.stdout.write(`${line}\n`);

async function main(): Promise<number> {
  let args: ReturnType<typeof parseDemoArgs>;
  try {
    args = parseDemoArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`demo: ${(err as Error).message}\n\n${USAGE}`);
    return EXIT_USAGE;
  }
  if (args === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }

  // Signals are ours from the start, so a Ctrl-C during ffmpeg's warm-up still stops cleanly.
  const stop = new AbortController();
  let fatal: string | undefined;
  const stopped = new Promise<void>((resolve) => stop.signal.addEventListener('abort', () => resolve(), { once: true }));
  // Repeats are ignored: `npm run` forwards the terminal's Ctrl-C, so the first press arrives twice.
  for (const signal of STOP_SIGNALS) process.on(signal, () => stop.abort());

  let demo: Demo;
  try {
    demo = await startDemo({
      listen: args.listen,
      adminListen: args.adminListen,
      log: humanLog((text) => process.stdout.write(text)),
      say,
      onFatal: (message) => {
        fatal = message;
        stop.abort();
      },
      signal: stop.signal,
    });
  } catch (err) {
    if (err instanceof DemoListenError) {
      process.stderr.write(`demo: ${err.message}\n`);
      return EXIT_RUNTIME;
    }
    if (err instanceof EdgeError && err.code === 'EDGE_ERR_CONFIG') {
      process.stderr.write(`demo: ${err.message}\n`);
      return EXIT_USAGE;
    }
    throw err;
  }
  // Last resort if this process dies some other way: ffmpeg must not outlive it.
  process.on('exit', () => demo.killNow());

  if (!stop.signal.aborted) say(banner({ edgeUrl: demo.edgeUrl, adminUrl: demo.adminUrl, media: demo.media, mediaDir: demo.mediaDir }));
  await stopped;
  if (fatal !== undefined) process.stderr.write(`demo: ${fatal}\n`);
  say(`stopping: the edge drains (${DEMO_DRAIN} at most), then the origin, the middleware and ffmpeg stop`);
  setTimeout(() => {
    process.stderr.write(`demo: still stopping after ${STOP_DEADLINE_MS / 1000} s: exiting anyway\n`);
    process.exit(EXIT_RUNTIME);
  }, STOP_DEADLINE_MS).unref();
  await demo.close();
  process.stdout.write(goodbye(demo.counts()));
  return fatal === undefined ? 0 : EXIT_RUNTIME;
}

main().then(
  (code) => {
    process.exitCode = code;
    setTimeout(() => process.exit(code), EXIT_LINGER_MS).unref();
  },
  (err: unknown) => {
    process.stderr.write(`demo: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(EXIT_RUNTIME);
  },
);
