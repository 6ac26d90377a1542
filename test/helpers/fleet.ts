// A fleet on loopback: edge bins in processes of their own (so one can be killed with SIGKILL)
// and nginx as a round-robin load balancer in front of them, as an operator runs it.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { unusedPort } from './ports.js';
import { sleep, waitFor } from './wait.js';

const BIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

export interface EdgeProcess {
  readonly name: string;
  readonly url: string;
  readonly adminUrl: string;
  readonly child: ChildProcess;
  /** Parsed JSON log lines so far. */
  readonly logs: Record<string, unknown>[];
  /** A sample of the edge's /metrics (summed over label sets matching `labels`). */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  /** SIGKILL: a crash, nothing drained. */
  crash(): Promise<void>;
  close(): Promise<void>;
}

/** Starts `node dist/main.js <args>` on free loopback ports (`npm run build` first) and waits until it is ready. */
export async function startEdgeProcess(name: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<EdgeProcess> {
  const port = await unusedPort();
  const adminPort = await unusedPort();
  const child = spawn(process.execPath, [BIN, '--listen', `127.0.0.1:${port}`, '--admin-listen', `127.0.0.1:${adminPort}`, ...args], {
    env: { PATH: process.env['PATH'] ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  let buffered = '';
  child.stdout!.on('data', (c: Buffer) => {
    buffered += c.toString();
    let nl: number;
    while ((nl = buffered.indexOf('\n')) !== -1) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    }
  });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`edge ${name} exited ${child.exitCode}: ${stderr}`);
      const res = await fetch(`${adminUrl}/readyz`).catch(() => undefined);
      return res?.status === 200;
    },
    { timeoutMs: 15_000, intervalMs: 50, message: `edge ${name} ready` },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    name,
    url: `http://127.0.0.1:${port}`,
    adminUrl,
    child,
    logs,
    async metric(metric, labels = {}) {
      const text = await (await fetch(`${adminUrl}/metrics`)).text();
      let sum = 0;
      for (const line of text.split('\n')) {
        if (!line.startsWith(metric)) continue;
        const m = /^([a-z_]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
        if (m === null || m[1] !== metric) continue;
        const set = Object.fromEntries((m[2] ?? '').split(',').filter((p) => p !== '').map((p) => p.split('=') as [string, string]).map(([k, v]) => [k, v.replace(/^"|"$/g, '')]));
        if (Object.entries(labels).every(([k, v]) => set[k] === v)) sum += Number(m[3]);
      }
      return sum;
    },
    async crash() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    async close() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(killer);
      }
    },
  };
}

export interface Balancer {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * nginx as a round-robin balancer (the upstream's default) in front of `backends`, with keep-alive
 * to them, buffering off (MPEG-TS passes through as it comes), and a dead edge skipped (proxy_next_upstream).
 */
export async function startBalancer(backends: readonly string[]): Promise<Balancer> {
  const dir = await mkdtemp(path.join(tmpdir(), 'edge-lb-'));
  await mkdir(path.join(dir, 'tmp'), { recursive: true });
  const port = await unusedPort();
  const servers = backends.map((b) => `    server ${new URL(b).host} max_fails=1 fail_timeout=2s;`).join('\n');
  const user = process.getuid?.() === 0 ? 'user root;\n' : '';
  const conf = `${user}daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  upstream edges {
${servers}
    keepalive 32;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://edges;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_buffering off;
      proxy_next_upstream error timeout http_502;
      proxy_connect_timeout 1s;
    }
  }
}
`;
  const confPath = path.join(dir, 'nginx.conf');
  await writeFile(confPath, conf);
  const child = spawn('nginx', ['-p', dir, '-c', confPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`nginx exited ${child.exitCode}: ${stderr}`);
      return (await fetch(`${url}/`).catch(() => undefined)) !== undefined;
    },
    { timeoutMs: 10_000, intervalMs: 50, message: 'nginx balancer up' },
  );
  return {
    url,
    async close() {
      if (child.exitCode === null) child.kill('SIGQUIT');
      const killer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(killer);
      await sleep(10);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
