// The services every scenario shares, started once: the temp directory with the origin's files,
// the origin nginx on the load core (upstream of the proxies), a second identical origin on the
// SUT core (the "direct" row: what one core of static nginx serves), the middleware, and, for (e),
// the MPEG-TS live origin. The systems under test (N1, N2, the edge) are started per scenario, so
// each scenario begins with empty caches and an idle RSS of its own.
import { accessSync, constants, existsSync, rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Children, Child } from './children.js';
import { answers, waitFor } from './children.js';
import { acceptsConnections, unusedPort } from '../../test/helpers/ports.js';
import { loadMedia, writeStaticChannels, type Media } from './fixtures.js';
import type { Pinning } from './machine.js';
import { startNginx, type NginxRole, type RunningNginx } from './nginx.js';
import { processTree } from './proc.js';
import { writeWrkScripts, type WrkScripts } from './wrk.js';

/** Target duration of the static channels (a-d). */
export const STATIC_TARGET_DURATION_S = 2;

export interface NodeService {
  readonly url: string;
  readonly child: Child;
  stats<T>(): Promise<T>;
}

export interface MiddlewareStats {
  calls: number;
  allowed: number;
  denied: number;
}

export interface Stack {
  readonly root: string;
  readonly tmp: string;
  readonly media: Media;
  readonly origin: RunningNginx;
  readonly originDirect: RunningNginx;
  readonly liveLog: string;
  readonly middleware: NodeService;
  readonly wrk: WrkScripts;
  readonly children: Children;
  readonly pinning: Pinning;
  /** Starts nginx as N1 or N2 on the SUT core, upstream `origin` (the HLS origin unless given). */
  startProxy(role: Exclude<NginxRole, 'origin'>, name: string, origin?: string): Promise<RunningNginx>;
  /** The bench's own load-side processes (besides the load generator): this one, origin, middleware, TS origin. */
  loadSidePids(): number[];
  /** The MPEG-TS live origin of (e), started on first use. */
  tsOrigin(bitsPerSecond: number): Promise<NodeService>;
  /**
   * A private redis-server on the load core (edge+redis), started on first use: a free port on
   * 127.0.0.1, no persistence, its files in the bench's temp directory. Undefined when the machine
   * has no redis-server (the target is then left out, and the run says so).
   */
  redis(): Promise<{ readonly url: string; readonly child: Child } | undefined>;
  close(): Promise<void>;
}

/** Starts a bench process (bench/procs/*.ts) on the load cores; it prints {"port": N} when listening. */
export async function startNodeService(children: Children, root: string, name: string, script: string, args: string[]): Promise<NodeService> {
  const child = children.spawn(name, process.execPath, ['--import', 'tsx', join(root, 'bench/procs', script), ...args], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
  let port = 0;
  await waitFor(name, async () => {
    const m = /\{"port":(\d+)\}/.exec(child.output());
    if (m !== null) port = Number(m[1]);
    return port > 0;
  }, 30_000, child);
  const url = `http://127.0.0.1:${port}`;
  await waitFor(name, () => answers(`${url}/__stats`, 200), 10_000, child);
  return {
    url,
    child,
    stats: async <T>() => (await (await fetch(`${url}/__stats`)).json()) as T,
  };
}

/**
 * The temp directory lives in memory (/dev/shm) when there is one: the origin's files are then in
 * RAM like a page-cached disk, and nginx's proxy_cache (the auth cache of N1/N2, the media cache
 * of N2) costs no disk writes. (d) makes a cache file per request: on disk it made nginx slower.
 */
function tempBase(): string {
  try {
    accessSync('/dev/shm', constants.W_OK);
    return '/dev/shm';
  } catch {
    return tmpdir();
  }
}

export async function startStack(children: Children, pinning: Pinning, root: string): Promise<Stack> {
  const tmp = await mkdtemp(join(tempBase(), 'edge-bench-'));
  children.atExit(() => rmSync(tmp, { recursive: true, force: true }));
  const media = await loadMedia();
  await writeStaticChannels(join(tmp, 'www'), media, STATIC_TARGET_DURATION_S);
  const tsFile = join(tmp, 'stream.ts');
  await writeFile(tsFile, media.ts);
  const liveLog = join(tmp, 'origin-live.log');
  const originSpec = async (dir: string) => ({ role: 'origin' as const, dir: join(tmp, dir), port: await unusedPort(), root: join(tmp, 'www'), liveLog });
  const origin = await startNginx(children, 'origin', await originSpec('origin'), []);
  const originDirect = await startNginx(children, 'direct', await originSpec('direct'), pinning.sutPrefix());
  const middleware = await startNodeService(children, root, 'middleware', 'middleware.ts', []);
  const wrk = await writeWrkScripts(tmp);
  let ts: NodeService | undefined;
  let redis: { url: string; child: Child } | undefined;
  const proxies: RunningNginx[] = [];
  return {
    root,
    tmp,
    media,
    origin,
    originDirect,
    liveLog,
    middleware,
    wrk,
    children,
    pinning,
    async startProxy(role, name, upstream) {
      const n = await startNginx(
        children,
        name,
        { role, dir: join(tmp, `${name}-${proxies.length}`), port: await unusedPort(), origin: (upstream ?? origin.url).replace('http://', ''), middleware: middleware.url.replace('http://', '') },
        pinning.sutPrefix(),
      );
      proxies.push(n);
      return n;
    },
    loadSidePids() {
      // This process alone (its tree holds every child, the SUT included), the others with their trees.
      return [process.pid, ...processTree(origin.child.pid), middleware.child.pid, ...(ts === undefined ? [] : [ts.child.pid]), ...(redis === undefined ? [] : [redis.child.pid])];
    },
    async tsOrigin(bitsPerSecond) {
      ts ??= await startNodeService(children, root, 'ts-origin', 'ts-origin.ts', [tsFile, String(bitsPerSecond)]);
      return ts;
    },
    async redis() {
      if (redis !== undefined) return redis;
      const bin = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((b) => existsSync(b));
      if (bin === undefined) return undefined;
      const port = await unusedPort();
      const child = children.spawn('redis', bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', tmp, '--protected-mode', 'yes'], { cwd: tmp });
      await waitFor('redis-server', () => acceptsConnections(port), 10_000, child);
      redis = { url: `redis://127.0.0.1:${port}`, child };
      return redis;
    },
    async close() {
      await children.stopAll();
      await rm(tmp, { recursive: true, force: true });
    },
  };
}
