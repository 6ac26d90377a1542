// Operable in production: drain on shutdown, reload on SIGHUP, health probes, the access log.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpClientError, httpRequest, openStream, type OpenStream } from '../helpers/client.js';
import { startTestMiddleware, type TestMiddleware } from '../helpers/middleware.js';
import { useStack } from '../helpers/stack.js';
import { sleep, waitFor } from '../helpers/wait.js';

const BIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));
const start = useStack({ origin: { segmentBytes: 4096 } });
const streams: OpenStream[] = [];
let child: ChildProcess | undefined;
let extra: TestMiddleware | undefined;
let dir: string | undefined;

afterEach(async () => {
  for (const s of streams.splice(0)) s.destroy();
  child?.kill('SIGKILL');
  await extra?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  child = extra = dir = undefined;
});

const refused = (p: Promise<unknown>): Promise<string | undefined> => p.then(() => undefined, (e: unknown) => (e as HttpClientError).code);

describe('drain on shutdown', () => {
  it('readiness turns 503 at once; a segment download in progress completes; MPEG-TS is cut at the drain timeout', async () => {
    const { edge, origin } = await start({ shutdown: { grace: '300ms' } }, { origin: { segmentBytes: 8 * 1024 * 1024, bodyChunks: 64, tsBytesPerSecond: 64 * 1024 } });
    const path = '/play/ch1/v1/seg-5.ts';
    const segment = await openStream(`${edge.url}${path}?token=t`);
    streams.push(segment);
    segment.pause();
    const ts = await openStream(`${edge.url}/play/ch2?token=t`);
    streams.push(ts);
    await ts.readAtLeast(1000);

    const closing = edge.app.close(1500);
    let closed = false;
    void closing.then(() => (closed = true));
    expect((await httpRequest(`${edge.adminUrl}/readyz`)).status).toBe(503);
    expect((await httpRequest(`${edge.adminUrl}/healthz`)).status).toBe(200);
    // During the grace period new requests are still served …
    expect((await httpRequest(`${edge.url}/play/ch3/v1/seg-1.ts?token=t`)).status).toBe(200);
    await sleep(500);
    // … after it, new connections are refused.
    expect(await refused(httpRequest(`${edge.url}/play/ch3/v1/seg-2.ts?token=t`))).toBe('ECONNREFUSED');
    // The paused download resumes and completes, whole.
    segment.resume();
    await waitFor(() => segment.ended(), { timeoutMs: 5000 });
    expect(segment.data().equals(origin.expectedBytes(path))).toBe(true);
    expect(closed).toBe(false);
    // The MPEG-TS stream is cut when the drain timeout runs out, then the edge is down.
    await waitFor(() => ts.ended(), { timeoutMs: 4000 });
    await closing;
    expect(edge.logs.some((l) => String(l['msg']).startsWith('drain timeout'))).toBe(true);
  });

  it('closes at once when nothing is in flight', async () => {
    const { edge } = await start();
    await httpRequest(`${edge.url}/play/ch1/v1/seg-1.ts?token=t`);
    const t0 = Date.now();
    await edge.app.close(10_000);
    expect(Date.now() - t0).toBeLessThan(1500);
  });
});

describe('health', () => {
  it('/healthz and /readyz on the public listener only when enabled', async () => {
    const off = await start();
    expect((await httpRequest(`${off.edge.url}/healthz`)).status).toBe(404);
    const on = await start({ health: { public: true } });
    expect((await httpRequest(`${on.edge.url}/healthz`)).status).toBe(200);
    expect((await httpRequest(`${on.edge.url}/readyz`)).status).toBe(200);
    expect(on.origin.requests).toHaveLength(0);
  });

  it('/readyz can require the upstream to answer', async () => {
    const { edge, origin } = await start({ health: { checkUpstream: true } });
    expect((await httpRequest(`${edge.adminUrl}/readyz`)).status).toBe(200);
    await origin.close();
    expect((await httpRequest(`${edge.adminUrl}/readyz`)).status).toBe(503);
  });
});

describe('logs', () => {
  it('no line per request at info by default; the access log redacts tokens and markers', async () => {
    const quiet = await start();
    const pl = await httpRequest(`${quiet.edge.url}/play/ch1/v1/index.m3u8?token=s3cr3t`);
    const sid = /edge_session=([A-Za-z0-9_-]{22})/.exec(pl.body.toString())![1]!;
    for (let i = 0; i < 5; i++) await httpRequest(`${quiet.edge.url}/play/ch1/v1/seg-${i}.ts?edge_session=${sid}`);
    expect(quiet.edge.logs.filter((l) => l['msg'] === 'request')).toHaveLength(0);

    const loud = await start({ log: { access: true, redactParams: ['token', 'key'] } });
    const pl2 = await httpRequest(`${loud.edge.url}/play/ch1/v1/index.m3u8?token=s3cr3t&key=k3y&lang=en`);
    const sid2 = /edge_session=([A-Za-z0-9_-]{22})/.exec(pl2.body.toString())![1]!;
    await httpRequest(`${loud.edge.url}/play/ch1/v1/seg-1.ts?edge_session=${sid2}`);
    await waitFor(() => loud.edge.logs.filter((l) => l['msg'] === 'request').length === 2);
    const lines = loud.edge.logs.filter((l) => l['msg'] === 'request');
    expect(lines[0]).toMatchObject({ method: 'GET', path: '/play/ch1/v1/index.m3u8', query: 'token=<redacted>&key=<redacted>&lang=en', status: 200 });
    expect(lines[1]).toMatchObject({ query: 'edge_session=<redacted>' });
    const all = JSON.stringify(loud.edge.logs) + JSON.stringify(quiet.edge.logs);
    for (const secret of ['s3cr3t', 'k3y', sid, sid2]) expect(all).not.toContain(secret);
  });

  it('the access log can be sampled', async () => {
    const { edge } = await start({ log: { access: true, accessSample: 0 } });
    await httpRequest(`${edge.url}/play/ch1/v1/seg-1.ts?token=t`);
    await sleep(50);
    expect(edge.logs.filter((l) => l['msg'] === 'request')).toHaveLength(0);
  });
});

describe('SIGHUP reload', () => {
  it('applies a new middleware and TTLs to new decisions without dropping a stream; a bad file is rejected', async () => {
    const { origin, mw } = await start();
    extra = await startTestMiddleware();
    dir = await mkdtemp(join(tmpdir(), 'edge-reload-'));
    const file = join(dir, 'edge.yaml');
    await writeFile(file, `listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\nupstream:\n  url: ${origin.url}\nbackend:\n  url: ${mw.url}/auth\n`);
    child = spawn(process.execPath, [BIN, '--config', file], { env: { PATH: process.env['PATH'] ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: Record<string, unknown>[] = [];
    let buf = '';
    child.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      const parts = buf.split('\n');
      buf = parts.pop()!;
      for (const p of parts) if (p.startsWith('{')) lines.push(JSON.parse(p) as Record<string, unknown>);
    });
    const up = await waitFor(() => lines.find((l) => l['msg'] === 'astra-auth-edge listening'), { timeoutMs: 10_000 });
    const url = String(up['url']);

    const ts = await openStream(`${url}/play/live?token=before`);
    streams.push(ts);
    await ts.readAtLeast(1000);
    expect(mw.requests).toHaveLength(1);

    await writeFile(file, `listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\nupstream:\n  url: ${origin.url}\nbackend:\n  url: ${extra.url}/v2\nauth:\n  allowTtl: 5m\nlog:\n  level: debug\n`);
    child.kill('SIGHUP');
    const reloaded = await waitFor(() => lines.find((l) => l['msg'] === 'configuration reloaded'), { timeoutMs: 5000 });
    expect(reloaded['changed']).toEqual(expect.arrayContaining(['backend.url', 'auth.allowTtlMs', 'log.level']));
    expect(reloaded['needsRestart']).toEqual([]);
    expect((await httpRequest(`${url}/play/ch1/index.m3u8?token=after`)).status).toBe(200);
    expect(extra.requests.map((r) => r.rawUrl)).toEqual(['/v2?token=after']);
    expect(mw.requests).toHaveLength(1);

    await writeFile(file, 'auth:\n  allowTtl: soon\n');
    child.kill('SIGHUP');
    const rejected = await waitFor(() => lines.find((l) => l['msg'] === 'configuration reload rejected: the running configuration stays'), { timeoutMs: 5000 });
    expect(JSON.stringify(rejected)).toContain('auth.allowTtl');
    expect((await httpRequest(`${url}/play/ch2/index.m3u8?token=still`)).status).toBe(200);
    expect(extra.requests.map((r) => r.rawUrl)).toEqual(['/v2?token=after', '/v2?token=still']);

    // The stream opened before both reloads is still flowing.
    const before = ts.received();
    await ts.readAtLeast(before + 1000);
    expect(ts.ended()).toBe(false);
  });
});
