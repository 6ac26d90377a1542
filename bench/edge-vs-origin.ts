// Direct origin vs nginx (proxy_pass, keep-alive upstream) vs the edge, for cached playlist
// requests (a session's follow-up playlist reloads: cache hit + rewrite) and 1 MiB segments.
// Each server runs in its own process; autocannon runs here. Prints ratios against the direct
// origin measured in the same run.
//
//   npm run build && npx tsx bench/edge-vs-origin.ts [--duration 10] [--connections 50]
import autocannon from 'autocannon';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const argv = process.argv.slice(2);
const arg = (name: string, def: number): number => {
  const i = argv.indexOf(`--${name}`);
  return i === -1 ? def : Number(argv[i + 1]);
};
const DURATION_S = arg('duration', 10);
const CONNECTIONS = arg('connections', 50);
const SEGMENT_CONNECTIONS = arg('segment-connections', 10);

const children: ChildProcess[] = [];
function cleanup(): void {
  for (const c of children) c.kill('SIGTERM');
}
process.on('exit', cleanup);

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function startChild(cmd: string, args: string[], ready: (line: string) => boolean): Promise<{ child: ChildProcess; line: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], cwd: ROOT });
    children.push(child);
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`${cmd} did not start`)), 15_000);
    child.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      for (const line of buf.split('\n')) {
        if (ready(line)) {
          clearTimeout(timer);
          child.stdout!.removeAllListeners('data');
          child.stdout!.resume();
          resolve({ child, line });
          return;
        }
      }
    });
    child.once('exit', (code) => reject(new Error(`${cmd} exited with ${code}`)));
  });
}

async function waitUntilUp(url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      await fetch(url);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${url} did not come up`);
}

async function startNginx(originUrl: string): Promise<{ url: string; dir: string } | undefined> {
  const bin = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));
  if (bin === undefined) return undefined;
  const dir = await mkdtemp(join(tmpdir(), 'bench-nginx-'));
  const port = await freePort();
  await writeFile(
    join(dir, 'nginx.conf'),
    `daemon off; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http { access_log off;
  upstream origin { server ${new URL(originUrl).host}; keepalive 128; }
  server { listen 127.0.0.1:${port};
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off; } } }
`,
  );
  const child = spawn(bin, ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: 'ignore' });
  children.push(child);
  const url = `http://127.0.0.1:${port}`;
  await waitUntilUp(`${url}/play/x/index.m3u8`);
  return { url, dir };
}

interface Row {
  target: string;
  scenario: string;
  reqPerSec: number;
  mbPerSec: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

async function load(target: string, scenario: string, url: string, connections: number): Promise<Row> {
  const r = await autocannon({ url, connections, duration: DURATION_S, pipelining: 1 });
  return {
    target,
    scenario,
    reqPerSec: r.requests.average,
    mbPerSec: r.throughput.average / 1024 / 1024,
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
  };
}

const fixtures = await startChild(process.execPath, ['--import', 'tsx', 'bench/fixtures-server.ts'], (l) => l.startsWith('{'));
const { origin, middleware } = JSON.parse(fixtures.line) as { origin: string; middleware: string };
const edgePort = await freePort();
const adminPort = await freePort();
const edgeChild = spawn(
  process.execPath,
  ['dist/main.js', '--listen', `127.0.0.1:${edgePort}`, '--admin-listen', `127.0.0.1:${adminPort}`, '--upstream', origin, '--backend', middleware, '--log-level', 'warn', '--allow-ttl', '1h'],
  { stdio: ['ignore', 'ignore', 'inherit'], cwd: ROOT },
);
children.push(edgeChild);
const edge = `http://127.0.0.1:${edgePort}`;
await waitUntilUp(`http://127.0.0.1:${adminPort}/readyz`);
const nginx = await startNginx(origin);

// One session: its first playlist gives the marker every later request carries.
const first = await (await fetch(`${edge}/play/bench/index.m3u8?token=bench`)).text();
const marker = /edge_session=([A-Za-z0-9_-]{22})/.exec(first)?.[1];
if (marker === undefined) throw new Error(`no session marker in the edge's playlist:\n${first}`);

const targets: [string, string, string][] = [
  ['origin', origin, ''],
  ...(nginx === undefined ? [] : ([['nginx', nginx.url, '']] as [string, string, string][])),
  ['edge', edge, `?edge_session=${marker}`],
];
const rows: Row[] = [];
for (const [name, base, q] of targets) {
  await load(name, 'warmup', `${base}/play/bench/index.m3u8${q}`, 10);
  rows.push(await load(name, 'playlist (cached session)', `${base}/play/bench/index.m3u8${q}`, CONNECTIONS));
  rows.push(await load(name, 'segment 1 MiB', `${base}/play/bench/seg-1000.ts${q}`, SEGMENT_CONNECTIONS));
}

const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
const backendCalls = /edge_auth_backend_requests_total\{backend="http",outcome="allow"\} (\d+)/.exec(metrics)?.[1];

const base = new Map(rows.filter((r) => r.target === 'origin').map((r) => [r.scenario, r]));
console.log(`\nnode ${process.version}, ${DURATION_S}s per run, ${CONNECTIONS} connections (playlists), ${SEGMENT_CONNECTIONS} (segments)\n`);
console.log('| target | scenario | req/s | MiB/s | p50 ms | p99 ms | errors | non-2xx | req/s vs origin |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  const ratio = r.reqPerSec / base.get(r.scenario)!.reqPerSec;
  console.log(`| ${r.target} | ${r.scenario} | ${r.reqPerSec.toFixed(0)} | ${r.mbPerSec.toFixed(1)} | ${r.p50} | ${r.p99} | ${r.errors} | ${r.non2xx} | ${ratio.toFixed(2)} |`);
}
console.log(`\nmiddleware calls made by the edge during the whole run: ${backendCalls ?? '?'}`);
await writeFile(join(ROOT, 'bench/results/edge-vs-origin.json'), JSON.stringify({ date: new Date().toISOString(), node: process.version, durationS: DURATION_S, rows, backendCalls: Number(backendCalls) }, null, 2));
cleanup();
if (nginx !== undefined) await rm(nginx.dir, { recursive: true, force: true });
process.exit(0);
