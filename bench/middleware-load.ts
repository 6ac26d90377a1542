// The hardening issue's middleware-under-load scenarios (items 4 and 5), against the built edge
// (`dist/main.js`, its own process, default settings unless said otherwise):
//
//   deny300  a healthy middleware that denies everything in 300 ms; 2,000 new sessions at 200
//            concurrent. A 200 here is a deny turned into an allow by the edge's own queue.
//   slow3s   a middleware that takes 3 s (then denies); the same load; --backend-concurrency 32.
//            Its max in-flight shows whether the cap bounds the middleware's load.
//
// The middleware, the origin and the clients run in this process; everything on 127.0.0.1.
// Prints what the viewers got (200/403/503), the middleware's max in-flight, and the edge's
// middleware metrics.
//
//   npm run build && npx tsx bench/middleware-load.ts [--scenario deny300|slow3s|both] [--sessions 2000] [--concurrency 200]
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, request, Agent, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { unusedPort } from '../test/helpers/ports.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const argv = process.argv.slice(2);
const arg = (name: string, def: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i === -1 ? def : argv[i + 1]!;
};
const SESSIONS = Number(arg('sessions', '2000'));
const CONCURRENCY = Number(arg('concurrency', '200'));
const SCENARIO = arg('scenario', 'both');
/** Every wait of this script is bounded. */
const RUN_DEADLINE_MS = 120_000;
const DRAIN_DEADLINE_MS = 60_000;

interface Scenario {
  readonly name: string;
  readonly delayMs: number;
  readonly edgeFlags: readonly string[];
}
const SCENARIOS: readonly Scenario[] = [
  { name: 'deny300', delayMs: 300, edgeFlags: [] },
  { name: 'slow3s', delayMs: 3000, edgeFlags: ['--backend-concurrency', '32'] },
];

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

/** Denies after `delayMs`; counts requests in flight from arrival to the end of its response (or the socket's close). */
function startMiddleware(delayMs: number): { server: Server; stats: { calls: number; inFlight: number; maxInFlight: number; clientGone: number } } {
  const stats = { calls: 0, inFlight: 0, maxInFlight: 0, clientGone: 0 };
  const server = createServer((req, res) => {
    stats.calls++;
    stats.maxInFlight = Math.max(stats.maxInFlight, ++stats.inFlight);
    let done = false;
    const end = (): void => {
      if (done) return;
      done = true;
      stats.inFlight--;
    };
    req.resume();
    // Like a PHP middleware: the work goes on whether or not the client is still there.
    setTimeout(() => {
      if (res.destroyed) stats.clientGone++;
      else res.writeHead(403, { 'content-length': 0 }).end();
      end();
    }, delayMs);
  });
  return { server, stats };
}

function startOrigin(): Server {
  const playlist = Buffer.from('#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nseg-1.ts\n');
  return createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/vnd.apple.mpegurl', 'content-length': playlist.length }).end(playlist);
  });
}

async function startEdge(port: number, adminPort: number, originPort: number, mwPort: number, flags: readonly string[]): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['dist/main.js', '--listen', `127.0.0.1:${port}`, '--admin-listen', `127.0.0.1:${adminPort}`, '--upstream', `http://127.0.0.1:${originPort}`, '--backend', `http://127.0.0.1:${mwPort}/auth`, '--log-level', 'warn', ...flags], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if ((await get(`http://127.0.0.1:${adminPort}/healthz`, undefined).catch(() => 0)) === 200) return child;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error('the edge did not start');
}

function get(url: string, agent: Agent | undefined, onHeaders?: (h: Record<string, string | string[] | undefined>) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: agent ?? false, timeout: 30_000 }, (res) => {
      onHeaders?.(res.headers);
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function scrape(adminPort: number): Promise<string[]> {
  const text = await new Promise<string>((resolve, reject) => {
    request(`http://127.0.0.1:${adminPort}/metrics`, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body));
    })
      .on('error', reject)
      .end();
  });
  return text.split('\n').filter((l) => /^edge_auth_(backend_requests_total|backend_late_total|backend_shed_total|backend_in_flight|backend_queued|shed_total|failure_mode_allowed_total|decisions_total)/.test(l) && !/ 0$/.test(l));
}

async function run(s: Scenario): Promise<void> {
  const { server: mw, stats } = startMiddleware(s.delayMs);
  const origin = startOrigin();
  const mwPort = await listen(mw);
  const originPort = await listen(origin);
  const [port, adminPort] = [await unusedPort(), await unusedPort()];
  const edge = await startEdge(port, adminPort, originPort, mwPort, s.edgeFlags);
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const statuses = new Map<number, number>();
  let retryAfter = 0;
  let errors = 0;
  let next = 0;
  const started = Date.now();
  const deadline = started + RUN_DEADLINE_MS;
  try {
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < SESSIONS && Date.now() < deadline) {
          const i = next++;
          try {
            const status = await get(`http://127.0.0.1:${port}/play/ch${i % 7}/index.m3u8?token=viewer${i}`, agent, (h) => {
              if (h['retry-after'] !== undefined) retryAfter++;
            });
            statuses.set(status, (statuses.get(status) ?? 0) + 1);
          } catch {
            errors++;
          }
        }
      }),
    );
    const elapsedMs = Date.now() - started;
    const inFlightAtEnd = stats.inFlight;
    const drainDeadline = Date.now() + DRAIN_DEADLINE_MS;
    while (stats.inFlight > 0 && Date.now() < drainDeadline) await new Promise((r) => setTimeout(r, 100));
    const metrics = await scrape(adminPort);
    const counts = [...statuses.entries()].sort((a, b) => a[0] - b[0]).map(([k, v]) => `${k}: ${v}`).join(', ');
    console.log(`\n## ${s.name}: middleware answers 403 after ${s.delayMs} ms; ${SESSIONS} new sessions at ${CONCURRENCY} concurrent; edge ${s.edgeFlags.join(' ') || '(defaults)'}`);
    console.log(`viewers: ${counts}${errors > 0 ? `, client errors: ${errors}` : ''} (503 with Retry-After: ${retryAfter}); ${elapsedMs} ms`);
    console.log(`middleware: ${stats.calls} calls, max in flight ${stats.maxInFlight}, in flight when the viewers were done ${inFlightAtEnd}, answers to a closed connection ${stats.clientGone}`);
    console.log(metrics.map((l) => `  ${l}`).join('\n'));
  } finally {
    agent.destroy();
    edge.kill('SIGTERM');
    await new Promise((r) => edge.once('exit', r));
    mw.closeAllConnections();
    origin.closeAllConnections();
    await new Promise((r) => mw.close(r));
    await new Promise((r) => origin.close(r));
  }
}

for (const s of SCENARIOS) if (SCENARIO === 'both' || SCENARIO === s.name) await run(s);
