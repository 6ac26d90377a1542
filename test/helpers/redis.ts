// A private redis-server for one test file or bench run: its own free port on 127.0.0.1, no
// persistence, stopped (and its process reaped) by close(). Tests never touch the machine's
// shared Redis on 6379 and never flush a database they did not make.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { acceptsConnections, unusedPort } from './ports.js';
import { sleep } from './wait.js';

export interface TestRedis {
  readonly port: number;
  readonly url: string;
  /** Stops the server (SIGKILL: a crash, as a test of outage handling wants). Idempotent. */
  kill(): Promise<void>;
  /** Starts it again on the same port (after kill). */
  restart(): Promise<void>;
  close(): Promise<void>;
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await acceptsConnections(port)) return;
    await sleep(25);
  }
  throw new Error(`redis-server did not listen on ${port} within ${timeoutMs} ms`);
}

export async function startTestRedis(): Promise<TestRedis> {
  const dir = await mkdtemp(path.join(tmpdir(), 'edge-redis-'));
  const port = await unusedPort();
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--protected-mode', 'yes'], { stdio: 'ignore' });
    const exited = new Promise<never>((_, reject) => child!.once('error', (err) => reject(new Error(`cannot start redis-server (apt-get install redis-server): ${err.message}`))));
    await Promise.race([waitForPort(port, 5000), exited]);
  };
  const kill = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (c === undefined || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGKILL');
    });
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    kill,
    restart: start,
    async close() {
      await kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
