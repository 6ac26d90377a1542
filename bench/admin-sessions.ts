/**
 * Admin sessions listing under a big table (hardening issue, item 10): what one `GET /api/sessions`
 * costs with 22,000 open sessions, and what it does to a viewer's playlist request meanwhile.
 *
 *   npx tsx bench/admin-sessions.ts              # 22,000 sessions, ~30 s
 *   npx tsx bench/admin-sessions.ts --quick      # 2,000 sessions, smoke test only
 *
 * Layout: the origin and the middleware run in a child process (bench/fixtures-server.ts), the edge
 * in this one (createApp, both listeners on 127.0.0.1 port 0). The table is filled through the session
 * registry (joinOrOpen → apply → activate, what a first allowed request does) so filling it costs
 * no middleware calls. A viewer then fetches one playlist after the other (keep-alive) while an
 * admin client polls back to back; each phase is bounded in count and time.
 *
 * Phases (same edge, same table):
 *   1. viewer alone;
 *   2. viewer + admin polling `GET /api/sessions?limit=100` (what the status page asks for);
 *   3. viewer + admin polling a filtered page (`?limit=100&q=user2199`: the status page with text in
 *      its filter box; the filter scans the whole table);
 *   4. viewer + admin polling the whole table (`?limit=1000` pages followed to the end, what
 *      `astra-auth-edge sessions` does; before paging existed this was one request).
 * Before paging, `limit` and `cursor` were ignored: every request of phase 2 returned everything.
 */
import { fork } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { createApp } from '../src/app.js';
import { buildConfig } from '../src/config/load.js';
import { createLogger } from '../src/log.js';

const QUICK = process.argv.includes('--quick');
const SESSIONS = QUICK ? 2_000 : 22_000;
const CHANNELS = 200;
/** Each phase stops at whichever comes first. */
const PHASE_MAX_MS = QUICK ? 2_000 : 8_000;
const PHASE_MAX_VIEWER_REQUESTS = 20_000;
const PHASE_MAX_ADMIN_REQUESTS = 2_000;
const FULL_LIST_PAGE = 1000;

interface Fixtures {
  origin: string;
  middleware: string;
}

function startFixtures(): Promise<{ urls: Fixtures; stop: () => void }> {
  const child = fork(fileURLToPath(new URL('./fixtures-server.ts', import.meta.url)), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.stdout!.once('data', (chunk: Buffer) => resolve({ urls: JSON.parse(chunk.toString()) as Fixtures, stop: () => child.kill('SIGTERM') }));
  });
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

function get(url: string): Promise<{ status: number; bytes: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, bytes: body.length, body });
      });
      res.on('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

function stats(ms: number[]): string {
  if (ms.length === 0) return 'n=0';
  const s = [...ms].sort((a, b) => a - b);
  const q = (p: number): string => s[Math.min(s.length - 1, Math.floor(p * s.length))]!.toFixed(1);
  return `n=${s.length} p50=${q(0.5)} p99=${q(0.99)} max=${s[s.length - 1]!.toFixed(1)} ms`;
}

/** Viewer requests one after the other until `stop()`; latencies in ms. */
function viewer(url: string): { stop: () => Promise<number[]> } {
  const latencies: number[] = [];
  let running = true;
  const done = (async () => {
    const deadline = Date.now() + PHASE_MAX_MS + 5000;
    while (running && latencies.length < PHASE_MAX_VIEWER_REQUESTS && Date.now() < deadline) {
      const t0 = performance.now();
      const r = await get(url);
      if (r.status !== 200) throw new Error(`viewer got ${r.status}`);
      latencies.push(performance.now() - t0);
      // A player asks every couple of seconds; a short pause keeps this from being a load test.
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    return latencies;
  })();
  return {
    stop: async () => {
      running = false;
      return done;
    },
  };
}

/** Walks every page of /api/sessions (one request when the server does not page). */
async function listAll(adminUrl: string): Promise<{ sessions: number; bytes: number; requests: number }> {
  let cursor: string | null = null;
  let sessions = 0;
  let bytes = 0;
  let requests = 0;
  do {
    const r = await get(`${adminUrl}/api/sessions?limit=${FULL_LIST_PAGE}${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`);
    requests++;
    bytes += r.bytes;
    const body = JSON.parse(r.body.toString()) as { sessions: unknown[]; nextCursor?: string | null };
    sessions += body.sessions.length;
    cursor = body.nextCursor ?? null;
  } while (cursor !== null && requests < 10_000);
  return { sessions, bytes, requests };
}

async function phase(name: string, viewerUrl: string, admin: (() => Promise<{ bytes: number; sessions: number; requests: number }>) | undefined): Promise<void> {
  const v = viewer(viewerUrl);
  const adminMs: number[] = [];
  let last = { bytes: 0, sessions: 0, requests: 0 };
  const deadline = Date.now() + PHASE_MAX_MS;
  if (admin === undefined) {
    await new Promise((resolve) => setTimeout(resolve, PHASE_MAX_MS));
  } else {
    while (Date.now() < deadline && adminMs.length < PHASE_MAX_ADMIN_REQUESTS) {
      const t0 = performance.now();
      last = await admin();
      adminMs.push(performance.now() - t0);
    }
  }
  const viewerMs = await v.stop();
  process.stdout.write(`\n## ${name}\n`);
  if (admin !== undefined) process.stdout.write(`admin: ${stats(adminMs)}; last answer ${last.sessions} sessions, ${(last.bytes / 1024).toFixed(1)} KiB in ${last.requests} request(s)\n`);
  process.stdout.write(`viewer playlist: ${stats(viewerMs)}\n`);
}

const fixtures = await startFixtures();
try {
  const config = buildConfig({
    file: {
      listen: '127.0.0.1:0',
      admin: { listen: '127.0.0.1:0' },
      upstream: { url: fixtures.urls.origin },
      backend: { url: fixtures.urls.middleware },
      session: { idleTimeout: '1h' },
      log: { level: 'warn' },
    },
    fileName: 'bench',
  });
  const app = createApp(config, { log: createLogger('warn'), processMetrics: false });
  const { url, adminUrl: listening } = await app.listen();
  const adminUrl = listening!;

  const now = Date.now();
  for (let i = 0; i < SESSIONS; i++) {
    const channel = `ch${i % CHANNELS}`;
    const s = app.sessions.joinOrOpen(
      { channel, kind: 'hls', clientIp: `10.0.${(i >> 8) & 255}.${i & 255}`, userAgent: 'bench-player/1.0', host: 'edge', path: `/play/${channel}/index.m3u8`, query: `token=t${i}`, token: `t${i}`, referer: '' },
      now - SESSIONS + i,
    );
    app.sessions.apply(s, { allow: true, reason: 'backend_200', sessionName: `user${i}`, source: 'backend', decidedAt: now, ttlMs: 3_600_000 }, false);
    if (!app.sessions.activate(s)) throw new Error('activate refused');
  }
  process.stdout.write(`# admin sessions listing: ${app.sessions.table.size} open sessions, Node ${process.version}, load ${(await import('node:os')).loadavg().map((x) => x.toFixed(2)).join(' ')}\n`);

  // The viewer's own session: a first request opens it (one middleware call), the rest are cache hits.
  const viewerUrl = `${url}/play/viewer/index.m3u8?token=viewer-token`;
  if ((await get(viewerUrl)).status !== 200) throw new Error('viewer playlist failed');

  await phase('1. viewer alone', viewerUrl, undefined);
  await phase('2. viewer + status page poll (GET /api/sessions?limit=100, back to back)', viewerUrl, async () => {
    const r = await get(`${adminUrl}/api/sessions?limit=100`);
    return { bytes: r.bytes, sessions: (JSON.parse(r.body.toString()) as { sessions: unknown[] }).sessions.length, requests: 1 };
  });
  await phase('3. viewer + filtered page (GET /api/sessions?limit=100&q=user2199, back to back)', viewerUrl, async () => {
    const r = await get(`${adminUrl}/api/sessions?limit=100&q=user2199`);
    return { bytes: r.bytes, sessions: (JSON.parse(r.body.toString()) as { sessions: unknown[] }).sessions.length, requests: 1 };
  });
  await phase(`4. viewer + whole table (?limit=${FULL_LIST_PAGE} pages to the end, back to back)`, viewerUrl, () => listAll(adminUrl));

  await app.close(1000);
} finally {
  agent.destroy();
  fixtures.stop();
}
