// CPU profile of the edge on one hot path, and where its time goes: the edge bin runs under
// `node --cpu-prof` pinned to core 1, a loopback origin and middleware (this process) and wrk
// on core 0; after the load, the .cpuprofile is summarised by self time (our files vs Node's
// HTTP vs undici vs the rest) and kept for a flame graph (open it in Chrome DevTools'
// Performance panel, or `npx speedscope <file>`).
//
//   npm run build && npx tsx bench/profile.ts --scenario a|c|d [--seconds 10] [--connections 50]
//
// a: the playlist of a live session (decision cached); c: a denied token (a cached 403);
// d: a new session on every request (one middleware call each).
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { unusedPort } from '../test/helpers/ports.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const arg = (name: string, def: string): string => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? def : args[i + 1]!;
};
const SCENARIO = arg('scenario', 'a');
const SECONDS = Number(arg('seconds', '10'));
const CONNECTIONS = Number(arg('connections', '50'));
const TOP = Number(arg('top', '30'));

const PLAYLIST = Buffer.from(['#EXTM3U', '#EXT-X-VERSION:3', '#EXT-X-TARGETDURATION:6', '#EXT-X-MEDIA-SEQUENCE:100', ...Array.from({ length: 6 }, (_, i) => `#EXTINF:6.0,\nseg-${100 + i}.ts`), ''].join('\n'));

function listen(handler: Parameters<typeof createServer>[1]): Promise<{ url: string; close(): void }> {
  const server = createServer(handler);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() })));
}

async function main(): Promise<void> {
  try {
    execFileSync('taskset', ['-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });
  } catch {
    // unpinned
  }
  const origin = await listen((req, res) => {
    const body = (req.url ?? '').includes('.m3u8') ? PLAYLIST : Buffer.alloc(188 * 100, 0x47);
    res.writeHead(200, { 'content-type': (req.url ?? '').includes('.m3u8') ? 'application/vnd.apple.mpegurl' : 'video/mp2t', 'content-length': body.length });
    res.end(body);
  });
  const middleware = await listen((req, res) => {
    const ok = /token=ok/.test(req.url ?? '');
    res.writeHead(ok ? 200 : 403, { 'content-length': 0 });
    res.end();
  });
  const dir = await mkdtemp(join(tmpdir(), 'edge-profile-'));
  const port = await unusedPort();
  const adminPort = await unusedPort();
  const edge = spawn('taskset', ['-c', '1', process.execPath, '--cpu-prof', `--cpu-prof-dir=${dir}`, join(ROOT, 'dist/main.js'), '--listen', `127.0.0.1:${port}`, '--admin-listen', `127.0.0.1:${adminPort}`, '--upstream', origin.url, '--backend', `${middleware.url}/auth`, '--log-level', 'warn'], { stdio: 'inherit' });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${adminPort}/readyz`)).ok) break;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  let url: string;
  let lua: string | undefined;
  if (SCENARIO === 'a') {
    const text = await (await fetch(`${base}/play/ch1/index.m3u8?token=ok-profile`)).text();
    const marker = /edge_session=([A-Za-z0-9_-]+)/.exec(text)![1]!;
    url = `${base}/play/ch1/index.m3u8?edge_session=${marker}`;
  } else if (SCENARIO === 'c') {
    url = `${base}/play/ch1/index.m3u8?token=bad`;
  } else {
    url = `${base}/play/ch1/index.m3u8`;
    lua = join(dir, 'unique.lua');
    await writeFile(lua, 'local n = 0\nrequest = function()\n  n = n + 1\n  return wrk.format("GET", "/play/ch1/index.m3u8?token=ok-" .. math.random(1e9) .. "-" .. n)\nend\n');
  }
  const wrkArgs = ['-c', '0', 'wrk', '-t1', `-c${CONNECTIONS}`, `-d${SECONDS}s`, ...(lua === undefined ? [] : ['-s', lua]), url];
  // Asynchronous: the origin and the middleware live in this process and must keep answering.
  const wrk = spawn('taskset', wrkArgs, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  wrk.stdout.on('data', (c: Buffer) => (out += c.toString()));
  await new Promise((r) => wrk.once('exit', r));
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out)?.[1];
  edge.kill('SIGTERM');
  await new Promise((r) => edge.once('exit', r));
  origin.close();
  middleware.close();
  const file = (await readdir(dir)).find((f) => f.endsWith('.cpuprofile'))!;
  const profile = JSON.parse(await readFile(join(dir, file), 'utf8')) as CpuProfile;
  console.log(`scenario ${SCENARIO}: ${rps} req/s (wrk, ${CONNECTIONS} connections, ${SECONDS} s); profile: ${join(dir, file)}`);
  summarise(profile);
}

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }[];
  samples: number[];
  timeDeltas: number[];
}

function summarise(p: CpuProfile): void {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const byFn = new Map<string, number>();
  const byArea = new Map<string, number>();
  for (const [id, us] of self) {
    const f = byId.get(id)!.callFrame;
    const where = f.url.replace(/^file:\/\//, '').replace(ROOT, '');
    const key = `${f.functionName || '(anonymous)'} ${where.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`;
    byFn.set(key, (byFn.get(key) ?? 0) + us);
    const area = f.url === '' ? (f.functionName.startsWith('(') ? f.functionName : '(native)') : where.startsWith('dist/') ? 'edge (dist/)' : where.includes('node_modules/undici') ? 'undici' : where.includes('node_modules/pino') ? 'pino' : where.includes('node_modules/prom-client') ? 'prom-client' : where.startsWith('node:') ? where.split('/')[0]!.replace(/^node:internal.*/, 'node internals') : 'other';
    byArea.set(area, (byArea.get(area) ?? 0) + us);
  }
  const pct = (us: number): string => `${((100 * us) / total).toFixed(1)} %`;
  console.log('\n| area | self time |\n|---|---|');
  for (const [k, v] of [...byArea].sort((a, b) => b[1] - a[1])) console.log(`| ${k} | ${pct(v)} |`);
  console.log(`\n| top ${TOP} functions by self time | share |\n|---|---|`);
  for (const [k, v] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, TOP)) console.log(`| ${k} | ${pct(v)} |`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
