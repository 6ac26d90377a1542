// The bin as operators run it: a Node process with flags, env and a YAML file.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { httpRequest } from '../helpers/client.js';
import { startTestMiddleware, type TestMiddleware } from '../helpers/middleware.js';
import { startTestOrigin, type TestOrigin } from '../helpers/origin.js';
import { waitFor } from '../helpers/wait.js';

const BIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: Record<string, string> = {}, timeoutMs = 10_000): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

let child: ChildProcess | undefined;
let origin: TestOrigin | undefined;
let mw: TestMiddleware | undefined;
let dir: string | undefined;

afterEach(async () => {
  child?.kill('SIGKILL');
  await mw?.close();
  await origin?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  child = mw = origin = dir = undefined;
});

describe('astra-auth-edge bin', () => {
  it('--help documents the interface and exits 0', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    for (const flag of ['--config', '--listen', '--upstream', '--backend-type', '--backend', '--default-action', '--admin-listen', '--log-level']) expect(r.stdout).toContain(flag);
  });

  it('an invalid flag or setting exits 2 naming the setting and the value', async () => {
    const r1 = await run(['--default-action', 'sometimes']);
    expect(r1.code).toBe(2);
    expect(r1.stderr).toMatch(/--default-action.*"sometimes"/);
    const r2 = await run([], { EDGE_UPSTREAM: 'astra:8000' });
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/EDGE_UPSTREAM.*"astra:8000"/);
    dir = await mkdtemp(join(tmpdir(), 'edge-cli-'));
    await writeFile(join(dir, 'edge.yaml'), 'auth:\n  allowTtl: forever\n');
    const r3 = await run(['--config', join(dir, 'edge.yaml')]);
    expect(r3.code).toBe(2);
    expect(r3.stderr).toMatch(/auth\.allowTtl.*edge\.yaml.*"forever"/);
    const r4 = await run(['--config', join(dir, 'missing.yaml')]);
    expect(r4.code).toBe(2);
    expect(r4.stderr).toContain('missing.yaml');
  });

  it('refuses to start with the admin listener off loopback and no token', async () => {
    const r = await run(['--admin-listen', '0.0.0.0:0', '--listen', '127.0.0.1:0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--admin-listen.*"0\.0\.0\.0:0".*admin token/);
  });

  it('sessions lists the table (human and --json) and kick ends a session', async () => {
    origin = await startTestOrigin({ segmentBytes: 1024 });
    mw = await startTestMiddleware({ behavior: { kind: 'allow', headers: { 'X-Session-Name': 'carol' } } });
    const token = 'cli-admin-token-0123456789';
    child = spawn(process.execPath, [BIN, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--upstream', origin.url, '--backend', `${mw.url}/auth`, '--admin-token', token], {
      env: { PATH: process.env['PATH'] ?? '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    const up = await waitFor(() => out.split('\n').map((l) => (l.startsWith('{') ? (JSON.parse(l) as { msg: string; url?: string; adminUrl?: string }) : undefined)).find((l) => l?.msg === 'astra-auth-edge listening'), { timeoutMs: 10_000 });
    const pl = await httpRequest(`${up.url!}/play/news/v1/index.m3u8?token=t`);
    const sid = /edge_session=([A-Za-z0-9_-]{22})/.exec(pl.body.toString())![1]!;

    const denied = await run(['sessions', '--admin', up.adminUrl!]);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/token/);
    const table = await run(['sessions', '--admin', up.adminUrl!, '--token', token]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^ID\s+CHANNEL\s+KIND\s+NAME\s+IP/);
    expect(table.stdout).toContain(sid);
    expect(table.stdout).toMatch(/news\s+hls\s+carol\s+127\.0\.0\.1/);
    // Why she is in, and when the middleware is asked again (--allow-ttl 60s).
    expect(table.stdout).toMatch(/WHY\s+NEXT CHECK\s+EDGE\n/);
    // EDGE: the node holding the session (node.name; default: host name and listen port).
    expect(table.stdout).toMatch(/backend http 200\s+in \d+s\s+\S+:\d+\n/);
    const one = await run(['sessions', sid, '--admin', up.adminUrl!, '--token', token]);
    expect(one.code).toBe(0);
    expect(one.stdout).toMatch(new RegExp(`^id +${sid}\n`));
    expect(one.stdout).toMatch(/\nwhy +allowed by the middleware http: it answered 200 \(backend_200\)\n/);
    expect(one.stdout).toMatch(/\nmiddleware +http, answered 200 \(backend_200\)\n/);
    expect(one.stdout).toMatch(/\nnext check +\d{4}-\d\d-\d\dT[\d:.]+Z \(in \d+s\)\n/);
    const oneJson = await run(['sessions', sid, '--json', '--admin', up.adminUrl!, '--token', token]);
    expect(JSON.parse(oneJson.stdout)).toMatchObject({ id: sid, why: { decidedBy: 'backend', backend: 'http', status: 200 }, nextCheckAt: expect.any(String) });
    expect((await run(['sessions', 'AAAAAAAAAAAAAAAAAAAAAA', '--admin', up.adminUrl!, '--token', token])).code).toBe(3);
    const json = await run(['sessions', '--json'], { EDGE_ADMIN_URL: up.adminUrl!, EDGE_ADMIN_TOKEN: token });
    expect((JSON.parse(json.stdout) as { sessions: { id: string }[] }).sessions.map((s) => s.id)).toEqual([sid]);

    const kicked = await run(['kick', sid, '--admin', up.adminUrl!, '--token', token]);
    expect(kicked.code).toBe(0);
    expect(kicked.stdout).toContain(`kicked ${sid}`);
    expect((await httpRequest(`${up.url!}/play/news/v1/seg-1.ts?edge_session=${sid}`)).status).toBe(403);
    const again = await run(['kick', sid, '--admin', up.adminUrl!, '--token', token]);
    expect(again.code).toBe(3);
    // Neither the admin token nor the session marker shows up in the edge's own logs.
    expect(out).not.toContain(token);
    expect(out).not.toContain(sid);
    const unreachable = await run(['sessions', '--admin', 'http://127.0.0.1:1']);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(/unreachable.*--admin/);
  });

  it('check-config prints the effective config with flags > env > file, secrets redacted', async () => {
    dir = await mkdtemp(join(tmpdir(), 'edge-cli-'));
    await writeFile(join(dir, 'edge.yaml'), 'listen: 127.0.0.1:1111\nbackend:\n  url: http://mw.local/check?secret=hunter2\nauth:\n  defaultAction: deny\n');
    const r = await run(['check-config', '--config', join(dir, 'edge.yaml'), '--listen', '127.0.0.1:3333'], { EDGE_LISTEN: '127.0.0.1:2222', EDGE_DEFAULT_ACTION: 'keep-granted' });
    expect(r.code).toBe(0);
    const printed = JSON.parse(r.stdout.slice(0, r.stdout.lastIndexOf('}') + 1)) as { listen: { port: number }; auth: { defaultAction: string } };
    expect(printed.listen.port).toBe(3333);
    expect(printed.auth.defaultAction).toBe('keep-granted');
    expect(r.stdout).not.toContain('hunter2');
  });

  it('serves through a real process and exits 0 on SIGTERM', async () => {
    origin = await startTestOrigin({ segmentBytes: 1024 });
    mw = await startTestMiddleware();
    child = spawn(process.execPath, [BIN, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--upstream', origin.url, '--backend', `${mw.url}/auth`], {
      env: { PATH: process.env['PATH'] ?? '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    const listening = await waitFor(() => out.split('\n').map((l) => (l.startsWith('{') ? (JSON.parse(l) as { msg: string; url?: string; adminUrl?: string }) : undefined)).find((l) => l?.msg === 'astra-auth-edge listening'), { timeoutMs: 10_000 });
    const seg = await httpRequest(`${listening.url!}/play/ch1/v1/seg-1.ts?token=t`);
    expect(seg.status).toBe(200);
    expect(seg.body.equals(origin.expectedBytes('/play/ch1/v1/seg-1.ts'))).toBe(true);
    expect((await httpRequest(`${listening.adminUrl!}/readyz`)).status).toBe(200);
    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(out).not.toContain('token=t');
  });
});
