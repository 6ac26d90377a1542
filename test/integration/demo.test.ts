// `npm run demo` as a newcomer runs it: the built dist/demo/main.js in its own process, on free
// loopback ports. It must print the URLs, play through the edge (real video when ffmpeg is
// installed, placeholder segments when it is not), refuse a port in use clearly, and stop every
// process it started on Ctrl-C.
import { spawn, spawnSync, type ChildProcessByStdio } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { FFMPEG_MISSING, READY_LINE } from '../../src/demo/output.js';
import { httpRequest, openStream } from '../helpers/client.js';
import { ffprobeStreams } from '../helpers/media.js';
import { unusedPort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';

const MAIN = fileURLToPath(new URL('../../dist/demo/main.js', import.meta.url));
const HAS_FFMPEG = ['ffmpeg', 'ffprobe'].every((tool) => spawnSync(tool, ['-version'], { stdio: 'ignore' }).status === 0);
/** ffmpeg needs ~5 s for its first two live segments; a loaded CI machine gets headroom. */
const READY_TIMEOUT_MS = 20_000;
/** Ctrl-C: the edge drains (nothing open here, so at once), then ffmpeg is stopped. */
const STOP_TIMEOUT_MS = 5_000;
const TS_SYNC_BYTE = 0x47;
const TS_PACKET_BYTES = 188;

interface DemoProcess {
  readonly child: ChildProcessByStdio<null, Readable, Readable>;
  stdout(): string;
  stderr(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running: DemoProcess[] = [];
const strays: number[] = [];
const holders: Server[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const demo of running.splice(0)) demo.child.kill('SIGKILL');
  for (const pid of strays.splice(0)) if (alive(pid)) process.kill(pid, 'SIGKILL');
  for (const server of holders.splice(0)) await new Promise((resolve) => server.close(resolve));
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function listening(port = 0): Promise<Server> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return server;
}

/**
 * Starts the demo on two free ports and waits for its URLs. The demo binds its own origin and
 * middleware on port 0 first, so the kernel may hand one of "our" just-freed ports to them:
 * then the demo says "is in use" and we try again with other ports (bounded).
 */
async function startReady(env?: NodeJS.ProcessEnv): Promise<{ demo: DemoProcess; port: number; adminPort: number }> {
  for (let attempt = 1; ; attempt++) {
    const [port, adminPort] = [await unusedPort(), await unusedPort()];
    const demo = startDemo(['--listen', `127.0.0.1:${port}`, '--admin-listen', `127.0.0.1:${adminPort}`], env);
    try {
      await ready(demo);
      return { demo, port, adminPort };
    } catch (err) {
      if (attempt >= 3 || !demo.stdout().concat(demo.stderr()).includes('is in use')) throw err;
      running.splice(running.indexOf(demo), 1);
    }
  }
}

function startDemo(args: string[], env: NodeJS.ProcessEnv = process.env): DemoProcess {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first (npm test does)`);
  const child = spawn(process.execPath, [MAIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const demo = { child, stdout: () => out, stderr: () => err, exited };
  running.push(demo);
  return demo;
}

async function ready(demo: DemoProcess): Promise<void> {
  await waitFor(() => demo.stdout().includes(READY_LINE) || demo.child.exitCode !== null, { timeoutMs: READY_TIMEOUT_MS, intervalMs: 50, message: 'the demo did not print its URLs' });
  if (!demo.stdout().includes(READY_LINE)) throw new Error(`the demo exited early:\n${demo.stdout()}\n${demo.stderr()}`);
}

/** Sends `signal` and waits (bounded) for the exit. */
async function stop(demo: DemoProcess, signal: NodeJS.Signals): Promise<{ code: number | null; ms: number }> {
  const t0 = Date.now();
  demo.child.kill(signal);
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no exit ${STOP_TIMEOUT_MS} ms after ${signal}:\n${demo.stdout()}`)), STOP_TIMEOUT_MS).unref());
  const { code } = await Promise.race([demo.exited, timeout]);
  running.splice(running.indexOf(demo), 1);
  return { code, ms: Date.now() - t0 };
}

/** Children of `pid`, from /proc (no procps needed on a slim Debian image); `ps` elsewhere. */
function childPids(pid: number): number[] {
  if (!existsSync('/proc/self/stat')) {
    const ps = spawnSync('ps', ['-o', 'pid=', '-o', 'ppid=', '-A'], { encoding: 'utf8' });
    return ps.stdout.split('\n').map((l) => l.trim().split(/\s+/).map(Number)).filter(([, ppid]) => ppid === pid).map(([child]) => child!);
  }
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // "pid (comm) state ppid …": comm may hold spaces and parentheses, so read after the last ")".
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** The edge plays a channel: the playlist is rewritten, a segment through a rewritten URI is MPEG-TS. */
async function checkHls(edge: string): Promise<void> {
  const url = `${edge}/play/news/index.m3u8?token=demo-test`;
  const playlist = await httpRequest(url);
  expect(playlist.status).toBe(200);
  const uris = playlist.body.toString('utf8').split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
  expect(uris.length).toBeGreaterThanOrEqual(2);
  for (const uri of uris) expect(uri).toMatch(/[?&]edge_session=[A-Za-z0-9_-]{22}$/);
  const segment = await httpRequest(new URL(uris[uris.length - 1]!, url).toString());
  expect(segment.status).toBe(200);
  expect(segment.body[0]).toBe(TS_SYNC_BYTE);
  expect(segment.body.length % TS_PACKET_BYTES).toBe(0);
}

describe('npm run demo', () => {
  it('prints the URLs, plays through the edge, denies and defaults as advertised, and Ctrl-C stops every process', async () => {
    const { demo, port, adminPort } = await startReady();
    const edge = `http://127.0.0.1:${port}`;
    const admin = `http://127.0.0.1:${adminPort}`;
    const out = demo.stdout();
    for (const line of [`ffplay '${edge}/play/news/index.m3u8?token=demo-alice'`, `vlc '${edge}/play/sports?token=demo-bob'`, `${admin}/metrics`, 'demo-denied', 'demo-slow']) expect(out).toContain(line);
    const ffmpeg = HAS_FFMPEG ? childPids(demo.child.pid!) : [];
    strays.push(...ffmpeg);
    if (HAS_FFMPEG) {
      expect(out).not.toContain(FFMPEG_MISSING);
      expect(ffmpeg).toHaveLength(1);
    }
    const mediaDir = /\(in (\/[^)]+)\)/.exec(out)?.[1];

    await checkHls(edge);
    expect((await httpRequest(`${edge}/play/news/index.m3u8?token=demo-denied`)).status).toBe(403);
    expect((await httpRequest(`${edge}/play/news/index.m3u8`)).status).toBe(403);
    // demo-slow: the middleware answers after 3 s, the edge gives up after 1 s and the default action (allow) decides.
    const t0 = Date.now();
    expect((await httpRequest(`${edge}/play/movies/index.m3u8?token=demo-slow`)).status).toBe(200);
    expect(Date.now() - t0).toBeLessThan(2900);

    const ts = await openStream(`${edge}/play/sports?token=demo-test`);
    expect(ts.status).toBe(200);
    const bytes = await ts.readAtLeast(100 * TS_PACKET_BYTES, 10_000);
    expect(bytes[0]).toBe(TS_SYNC_BYTE);
    ts.destroy();

    const metrics = await httpRequest(`${admin}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.body.toString()).toMatch(/^edge_auth_decisions_total\{result="deny",source="backend"\} [1-9]/m);

    if (HAS_FFMPEG) {
      const streams = await ffprobeStreams(`${edge}/play/news/index.m3u8?token=demo-probe`, 15_000);
      expect(streams.some((s) => s.codec_type === 'video' && s.codec_name === 'h264')).toBe(true);
      expect(mediaDir !== undefined && existsSync(mediaDir)).toBe(true);
    }

    await waitFor(() => ts.ended(), { timeoutMs: 2000 });
    const { code, ms } = await stop(demo, 'SIGINT');
    expect(code).toBe(0);
    expect(ms).toBeLessThan(STOP_TIMEOUT_MS);
    expect(demo.stdout()).toContain('demo stopped');
    for (const pid of ffmpeg) expect(alive(pid), `ffmpeg ${pid} outlived the demo`).toBe(false);
    if (mediaDir !== undefined) expect(existsSync(mediaDir), `${mediaDir} was not removed`).toBe(false);
  });

  it('without ffmpeg on PATH it says so, serves placeholder segments and stops on SIGTERM', async () => {
    const emptyBin = await mkdtemp(join(tmpdir(), 'demo-test-path-'));
    dirs.push(emptyBin);
    const { demo, port } = await startReady({ ...process.env, PATH: emptyBin });
    expect(demo.stdout()).toContain(FFMPEG_MISSING);
    expect(childPids(demo.child.pid!)).toEqual([]);
    await checkHls(`http://127.0.0.1:${port}`);
    const { code } = await stop(demo, 'SIGTERM');
    expect(code).toBe(0);
  });

  it('refuses a port in use and names the flag to change', async () => {
    const holder = await listening();
    holders.push(holder);
    const { port } = holder.address() as { port: number };
    const demo = startDemo(['--listen', `127.0.0.1:${port}`, '--admin-listen', `127.0.0.1:${await unusedPort()}`]);
    const { code } = await Promise.race([demo.exited, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the demo did not exit')), STOP_TIMEOUT_MS).unref())]);
    running.splice(running.indexOf(demo), 1);
    expect(code).toBe(1);
    expect(demo.stderr()).toContain(`127.0.0.1:${port} is in use: run with --listen 127.0.0.1:`);
    expect(demo.stdout()).not.toContain(READY_LINE);
  });
});
