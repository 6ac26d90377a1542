// Hardening #12, redaction by exact name: secrets (the token parameter, the session marker, URL
// credentials and query values) never appear in a log line or an error message, whatever the
// letter case or percent-encoding of their names. Each test is named after what leaked.
import { REFUSED_PORT } from '../helpers/ports.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { buildConfig, readConfigFile } from '../../src/config/load.js';
import { EdgeError } from '../../src/errors.js';
import { httpRequest } from '../helpers/client.js';
import { useStack } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

const BIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));
const start = useStack();
const SECRET = 'SECRETKEY';
const PASSWORD = 'pw5ecret';
let child: ChildProcess | undefined;
let dir: string | undefined;

afterEach(async () => {
  child?.kill('SIGKILL');
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  child = dir = undefined;
});

function configError(sources: Parameters<typeof buildConfig>[0]): string {
  try {
    buildConfig(sources);
  } catch (err) {
    expect(err).toBeInstanceOf(EdgeError);
    return (err as Error).message;
  }
  throw new Error('expected a config error');
}

/** A loopback port nothing listens on. */
/** Nothing listens there (test/helpers/ports.ts). */
async function closedPort(): Promise<number> {
  return Promise.resolve(REFUSED_PORT);
}

describe('redaction (hardening #12)', () => {
  it('the access log printed key=SECRET with --token-param key, and a session marker written in another case', async () => {
    const { edge } = await start({ session: { tokenParam: 'key' }, log: { access: true } });
    const pl = await httpRequest(`${edge.url}/play/ch1/v1/index.m3u8?key=${SECRET}&lang=en`);
    const sid = /edge_session=([A-Za-z0-9_-]{22})/.exec(pl.body.toString())![1]!;
    await httpRequest(`${edge.url}/play/ch1/v1/seg-1.ts?KEY=${SECRET}&Edge_Session=${sid}`);
    await httpRequest(`${edge.url}/play/ch1/v1/seg-2.ts?edge_session=${sid}&%6Bey=${SECRET}&EDGE%5FSESSION=${sid}`);
    const lines = await waitFor(() => {
      const l = edge.logs.filter((x) => x['msg'] === 'request');
      return l.length === 3 ? l : undefined;
    });
    expect(lines.map((l) => l['query'])).toEqual([
      'key=<redacted>&lang=en',
      'KEY=<redacted>&Edge_Session=<redacted>',
      'edge_session=<redacted>&%6Bey=<redacted>&EDGE%5FSESSION=<redacted>',
    ]);
    const all = JSON.stringify(edge.logs);
    expect(all).not.toContain(SECRET);
    expect(all).not.toContain(sid);
  });

  it('a config error echoed the middleware URL with its credentials and key', async () => {
    const url = `http://u:${PASSWORD}@mw/auth?key=${SECRET}`;
    const cases: [string, Parameters<typeof buildConfig>[0]][] = [
      ['--backend', { flags: { 'backend.url': `http://u:${PASSWORD}@mw:99999/auth?key=${SECRET}` } }],
      ['EDGE_BACKEND', { env: { EDGE_BACKEND: `ftp://u:${PASSWORD}@mw/auth?key=${SECRET}` } }],
      ['backend.url', { file: { backend: { url: `mw/auth?key=${SECRET}&user=u:${PASSWORD}` } } }],
      ['backends[0].url', { file: { backends: [{ type: 'stalker', url }] } }],
      ['backends[1].url', { file: { backends: [{ url: 'http://ok/' }, { url: `notaurl?key=${SECRET}` }] } }],
      ['EDGE_BACKENDS', { env: { EDGE_BACKENDS: `[{"url": "${url}"` } }],
      ['--upstream', { flags: { 'upstream.url': `http://u:${PASSWORD}@astra:8000/?key=${SECRET}` } }],
      ['--upstream', { flags: { 'upstream.url': `http://u:${PASSWORD}@astra:8000` } }],
      ['--sessions-backend', { flags: { 'session.closeWebhook': `ftp://u:${PASSWORD}@hook/x?key=${SECRET}` } }],
    ];
    for (const [setting, sources] of cases) {
      const message = configError(sources);
      expect(message, setting).toContain(setting);
      expect(message, setting).not.toContain(SECRET);
      expect(message, setting).not.toContain(PASSWORD);
    }
    expect(configError(cases[0]![1])).toBe(`invalid --backend: "http://redacted@mw:99999/auth?key=redacted": expected an absolute http:// or https:// URL`);
  });

  it('a YAML error quoted the offending line, key and all', async () => {
    dir = await mkdtemp(join(tmpdir(), 'edge-redact-'));
    const file = join(dir, 'edge.yaml');
    await writeFile(file, `backend:\n  url: "http://u:${PASSWORD}@mw/auth?key=${SECRET}\nadmin:\n  token: ${SECRET}${SECRET}\n`);
    const message = await readConfigFile(file).then(
      () => '',
      (err: unknown) => (err as Error).message,
    );
    expect(message).toMatch(/invalid YAML: .*line \d+, column \d+/);
    expect(message).not.toContain(SECRET);
    expect(message).not.toContain(PASSWORD);
  });

  it("the startup log and middleware warnings keep the middleware URL's credentials and key out (a guard: these were already redacted)", async () => {
    const port = await closedPort();
    const { edge } = await start({ backend: { url: `http://u:${PASSWORD}@127.0.0.1:${port}/auth?key=${SECRET}` } });
    expect((await httpRequest(`${edge.url}/play/ch1/index.m3u8?token=t`)).status).toBe(200); // default action allow
    await waitFor(() => edge.logs.find((l) => String(l['msg']).startsWith('middleware unavailable')));
    await waitFor(() => edge.logs.find((l) => String(l['msg']).startsWith('middleware URL unreachable')));
    const all = JSON.stringify(edge.logs);
    expect(all).toContain('redacted@127.0.0.1');
    expect(all).not.toContain(SECRET);
    expect(all).not.toContain(PASSWORD);
  });

  it('a bad --backend on the command line and a rejected reload printed the key (the bin)', async () => {
    const bad = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const p = spawn(process.execPath, [BIN, '--backend', `http://u:${PASSWORD}@mw:99999/auth?key=${SECRET}`], { env: { PATH: process.env['PATH'] ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      p.on('close', (code) => resolve({ code, stderr }));
    });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--backend');
    expect(bad.stderr).not.toContain(SECRET);
    expect(bad.stderr).not.toContain(PASSWORD);

    const { origin, mw } = await start();
    dir = await mkdtemp(join(tmpdir(), 'edge-redact-'));
    const file = join(dir, 'edge.yaml');
    const base = `listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\nupstream:\n  url: ${origin.url}\n`;
    await writeFile(file, `${base}backend:\n  url: ${mw.url}/auth?key=${SECRET}\n`);
    child = spawn(process.execPath, [BIN, '--config', file], { env: { PATH: process.env['PATH'] ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    await waitFor(() => out.includes('astra-auth-edge listening'), { timeoutMs: 10_000 });
    await writeFile(file, `${base}backend:\n  url: http://u:${PASSWORD}@mw:99999/auth?key=${SECRET}\n`);
    child.kill('SIGHUP');
    await waitFor(() => out.split('\n').filter((l) => l.includes('configuration reload rejected')).length === 1, { timeoutMs: 5000 });
    await writeFile(file, `${base}backend:\n  url: "http://u:${PASSWORD}@mw/auth?key=${SECRET}\n`);
    child.kill('SIGHUP');
    await waitFor(() => out.split('\n').filter((l) => l.includes('configuration reload rejected')).length === 2, { timeoutMs: 5000 });
    expect(out).toContain('backend.url');
    expect(out).toContain('invalid YAML');
    expect(out).not.toContain(SECRET);
    expect(out).not.toContain(PASSWORD);
  });
});
