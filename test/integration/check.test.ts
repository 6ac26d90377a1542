// `astra-auth-edge check` (operator issue, part 1): the real bin against real servers on
// loopback, one test per outcome and exit code, and proof that the request it shows is the
// request the edge sends.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { HttpBackend } from '../../src/auth/backends/http.js';
import { FlussonicBackend } from '../../src/auth/backends/flussonic.js';
import { makeSecureToken } from '../../src/auth/securetoken.js';
import type { AuthRequest } from '../../src/auth/types.js';
import type { CheckReport } from '../../src/check/run.js';
import { clientOptions, refusedUrl, useClosables } from '../helpers/backends.js';
import { startTestMiddleware } from '../helpers/middleware.js';
import { startSelfSignedServer } from '../helpers/tls.js';

const BIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));
const track = useClosables();

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The bin with `check` and `args`, no inherited EDGE_* environment. */
function check(args: string[], env: Record<string, string> = {}, timeoutMs = 15_000): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, 'check', ...args], { env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function checkJson(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; report: CheckReport; stderr: string }> {
  const r = await check([...args, '--json'], env);
  let report: CheckReport;
  try {
    report = JSON.parse(r.stdout) as CheckReport;
  } catch {
    throw new Error(`not JSON (exit ${r.code}): ${r.stdout}\n${r.stderr}`);
  }
  return { code: r.code, report, stderr: r.stderr };
}

const TOKEN = 'tok-4f1c9a';
const VIEWER = `http://edge.example:8080/play/a001/index.m3u8?token=${TOKEN}&x=%2F1`;

async function middleware(...args: Parameters<typeof startTestMiddleware>) {
  return track(await startTestMiddleware(...args));
}

/** Name/value pairs of a raw header list, names in lower case. */
function pairs(raw: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i]!.toLowerCase(), raw[i + 1]!]);
  return out;
}

describe('check: allowed (exit 0)', () => {
  it('shows every step and the exact middleware request, which is byte for byte what the middleware got', async () => {
    const mw = await middleware({ behavior: { kind: 'allow', headers: { 'X-Session-Name': 'alice' } } });
    const r = await check(['--backend', `${mw.url}/auth?key=K`, VIEWER, '--ip', '10.1.2.3', '--user-agent', 'VLC/3.0', '--header', 'Referer: http://portal/', '--show-secrets']);
    expect(r.code, r.stderr).toBe(0);
    expect(mw.requests).toHaveLength(1);
    const seen = mw.requests[0]!;
    expect(seen.rawUrl).toBe(`/auth?key=K&token=${TOKEN}&x=%2F1`);
    expect(r.stdout).toContain(`> GET ${mw.url}${seen.rawUrl}`);
    for (const [name, value] of pairs(seen.rawHeaders)) expect(r.stdout).toContain(`> ${name}: ${value}`);
    expect(seen.headers).toMatchObject({ 'x-channel-id': 'a001', 'x-real-ip': '10.1.2.3', 'x-real-path': '/play/a001/index.m3u8', 'x-real-ua': 'VLC/3.0', 'x-real-host': 'edge.example:8080' });
    for (const step of ['DNS', 'TCP', 'TLS', 'HTTP']) expect(r.stdout).toMatch(new RegExp(`[✓-] ${step}`));
    expect(r.stdout).toContain('✓ HTTP  200 OK, body 0 bytes');
    expect(r.stdout).toContain('< X-Session-Name: alice');
    expect(r.stdout).toContain('✓ ALLOW: allowed by the middleware http (it answered 200): backend_200');
    expect(r.stdout).toContain('the edge keeps this decision 60s (--allow-ttl)');
    // No X-AuthDuration: the note points at the one-shot probe.
    expect(r.stdout).toContain('--recheck-probe');
  });

  it.each([
    ['http', (url: string) => new HttpBackend({ ...clientOptions(`${url}/auth?key=K`), name: 'http' })],
    ['flussonic', (url: string) => new FlussonicBackend({ ...clientOptions(`${url}/auth?key=K`), name: 'flussonic' })],
  ] as const)('%s: the request check sends is the one the edge sends for the same session (no drift)', async (type, make) => {
    const mw = await middleware();
    const { code, report } = await checkJson(['--backend-type', type, '--backend', `${mw.url}/auth?key=K`, VIEWER, '--ip', '10.1.2.3', '-A', 'VLC/3.0', '-H', 'Referer: http://portal/']);
    expect(code).toBe(0);
    const fromCheck = mw.requests[0]!;
    const sessionId = type === 'http' ? String(fromCheck.headers['x-session-id']) : new URLSearchParams(fromCheck.rawQuery).get('session_id')!;
    // The edge's own call path (undici, the backend's check) for the same request.
    const request: AuthRequest = {
      sessionId,
      channel: 'a001',
      clientIp: '10.1.2.3',
      path: '/play/a001/index.m3u8',
      query: `token=${TOKEN}&x=%2F1`,
      userAgent: 'VLC/3.0',
      host: 'edge.example:8080',
      kind: 'hls',
      requestType: 'new',
      token: TOKEN,
      requestNumber: 0,
      streamClients: 0,
      totalClients: 0,
      referer: 'http://portal/',
    };
    const backend = track(make(mw.url));
    await backend.check(request, AbortSignal.timeout(2000));
    const fromEdge = mw.requests[1]!;
    expect(fromCheck.rawUrl).toBe(fromEdge.rawUrl);
    expect(fromCheck.rawHeaders).toEqual(fromEdge.rawHeaders);
    // What check printed is what was sent (secrets aside).
    expect(report.backends[0]!.request!.headers.map(([n]) => n)).toEqual(pairs(fromEdge.rawHeaders).map(([n]) => n));
  });

  it('an https middleware with a self-signed certificate: not trusted (exit 3), then trusted with --backend-ca (exit 0)', async (ctx) => {
    const tls = await startSelfSignedServer((_req, res) => {
      res.writeHead(200, { 'content-length': '0' });
      res.end();
    });
    if ('skip' in tls) return ctx.skip(tls.skip);
    track(tls);
    const untrusted = await check(['--backend', `${tls.url}auth`, VIEWER, '--ip', '10.1.2.3']);
    expect(untrusted.code, untrusted.stdout).toBe(3);
    expect(untrusted.stdout).toMatch(/✓ TCP {3}connected to 127\.0\.0\.1:\d+/);
    expect(untrusted.stdout).toMatch(/✗ TLS {3}certificate refused \((DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE)\): subject CN=127\.0\.0\.1/);
    expect(untrusted.stdout).toContain('certificate not trusted: set --backend-ca');
    expect(untrusted.stdout).not.toContain('HTTP  ');

    const trusted = await check(['--backend', `${tls.url}auth`, '--backend-ca', tls.certFile, VIEWER, '--ip', '10.1.2.3']);
    expect(trusted.code, trusted.stdout).toBe(0);
    expect(trusted.stdout).toMatch(/✓ TLS {3}TLSv1\.[23], certificate CN=127\.0\.0\.1 issued by CN=127\.0\.0\.1/);
    expect(trusted.stdout).toContain(`trusted through --backend-ca ${tls.certFile}`);
    expect(trusted.stdout).toContain('✓ HTTP  200 OK');
  });
});

describe('check: denied (exit 1)', () => {
  it('by the middleware: its status and the reason, and what the viewer gets', async () => {
    const mw = await middleware({ behavior: { kind: 'deny', status: 403, body: 'token expired' } });
    const r = await check(['--backend', `${mw.url}/auth`, VIEWER, '--ip', '10.1.2.3']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('✓ HTTP  403 Forbidden');
    expect(r.stdout).toContain('< body: "token expired"');
    expect(r.stdout).toContain('✗ DENY: denied by the middleware http (it answered 403): backend_403');
    expect(r.stdout).toContain('the viewer gets 403 EDGE_ERR_AUTH_DENIED (backend_403)');
    expect(r.stdout).toContain('the edge keeps this decision 10s (--deny-ttl)');
  });

  it('by a local rule: the rules in order, the one that matched, and no middleware call', async () => {
    const mw = await middleware();
    const r = await check(['--backend', `${mw.url}/auth`, '--ip-deny', '192.0.2.0/24', '--user-agent-deny', '^curl/', '--token-deny', TOKEN, '--token-allow', 'other', VIEWER, '--ip', '10.1.2.3', '-A', 'VLC']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/1\. --ip-deny +1 entry +no match/);
    expect(r.stdout).toMatch(/2\. --ip-allow +off/);
    expect(r.stdout).toMatch(/3\. --user-agent-deny +1 entry +no match/);
    expect(r.stdout).toMatch(/4\. --token-deny +1 entry +✗ MATCH → deny token_denied/);
    expect(r.stdout).toMatch(/5\. --token-allow +1 entry +not reached/);
    expect(r.stdout).toContain('✗ DENY: denied by the local rule --token-deny (token_denied): the middleware is not asked');
    expect(r.stdout).not.toContain('Middleware http');
    expect(mw.requests).toHaveLength(0);
  });

  it.each([
    ['%2F in the path', 'http://edge/play/a%2F001/index.m3u8?token=1', 'path', '400 EDGE_ERR_BAD_REQUEST (encoded_separator)'],
    ['the token twice', 'http://edge/play/a001/index.m3u8?token=1&%74oken=2', 'token', '400 EDGE_ERR_BAD_REQUEST (duplicate_param)'],
    ['a path that names no channel', 'http://edge/live/a001.m3u8?token=1', 'channel', '404 EDGE_ERR_NO_CHANNEL'],
  ])('a request the edge refuses outright (%s): the refusal is the answer, nobody is asked', async (_what, url, step, refusal) => {
    const mw = await middleware();
    const r = await check(['--backend', `${mw.url}/auth`, url, '--ip', '10.1.2.3']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`✗ ${step.padEnd(9)} refused: ${refusal}`);
    expect(r.stdout).toContain(`the viewer gets ${refusal}`);
    expect(mw.requests).toHaveLength(0);
  });

  it('two Host headers are refused as the edge refuses them', async () => {
    const r = await check([VIEWER, '-H', 'Host: other.example']);
    // --header Host replaces the URL's host; a second one is the duplicate.
    expect(r.code).toBe(0);
    const twice = await check([VIEWER, '-H', 'Host: a.example', '-H', 'Host: b.example']);
    expect(twice.code).toBe(1);
    expect(twice.stdout).toContain('refused: 400 EDGE_ERR_BAD_REQUEST (duplicate_host)');
  });
});

describe('check: securetoken', () => {
  const secret = 'shh-secret';
  const nowS = Math.floor(Date.now() / 1000);
  it.each([
    ['valid', 0, '✓ securetoken_valid', makeSecureToken({ channel: 'a001', clientIp: '10.1.2.3' }, { secret, bindIp: true }, nowS - 10, nowS + 3600, 'salt')],
    ['expired', 1, '✗ securetoken_expired', makeSecureToken({ channel: 'a001', clientIp: '10.1.2.3' }, { secret, bindIp: true }, nowS - 7200, nowS - 3600, 'salt')],
    ['for another IP', 1, '✗ securetoken_invalid', makeSecureToken({ channel: 'a001', clientIp: '10.9.9.9' }, { secret, bindIp: true }, nowS - 10, nowS + 3600, 'salt')],
  ])('%s → exit %i, decided locally', async (_what, exit, line, token) => {
    const mw = await middleware();
    const r = await check(['--backend', `${mw.url}/auth`, '--securetoken-secret', secret, `http://edge/play/a001/index.m3u8?token=${token}`, '--ip', '10.1.2.3']);
    expect(r.code, r.stdout).toBe(exit);
    expect(r.stdout).toMatch(new RegExp(`6\\. securetoken +${line}`));
    expect(r.stdout).toContain(`by the securetoken (${line.slice(2)})`);
    expect(mw.requests).toHaveLength(0);
  });

  it('a token that is no securetoken goes on to the middleware', async () => {
    const mw = await middleware();
    const r = await check(['--backend', `${mw.url}/auth`, '--securetoken-secret', secret, VIEWER, '--ip', '10.1.2.3']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('✗ securetoken_malformed: not a securetoken, so the middleware decides');
    expect(mw.requests).toHaveLength(1);
  });
});

describe('check: the middleware is unavailable (exit 3), and what the default action then does', () => {
  it('connection refused: the TCP step says so, and with --default-action allow everyone gets in', async () => {
    const r = await check(['--backend', `${await refusedUrl()}/auth`, VIEWER, '--ip', '10.1.2.3']);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/- DNS {3}127\.0\.0\.1 is an address: no lookup/);
    expect(r.stdout).toMatch(/✗ TCP {3}127\.0\.0\.1:\d+: connection refused \(ECONNREFUSED\)/);
    expect(r.stdout).toContain('nothing listens there');
    expect(r.stdout).toContain('✗ UNAVAILABLE: no middleware could decide');
    expect(r.stdout).toContain('EVERYONE GETS IN while the middleware is down');
    expect(r.stdout).toContain('the viewer gets 200: served');
  });

  it('--default-action deny: nobody new gets in', async () => {
    const r = await check(['--backend', `${await refusedUrl()}/auth`, '--default-action', 'deny', VIEWER]);
    expect(r.code).toBe(3);
    expect(r.stdout).toContain('NOBODY NEW GETS IN');
    expect(r.stdout).toContain('the viewer gets 403 EDGE_ERR_AUTH_UNAVAILABLE (middleware_unavailable)');
  });

  it('connected but no answer: "hangs", told apart from refused', async () => {
    const mw = await middleware({ behavior: 'hang' });
    const r = await check(['--backend', `${mw.url}/auth`, '--backend-timeout', '300ms', VIEWER]);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/✓ TCP {3}connected/);
    expect(r.stdout).toContain('✗ HTTP  connected and sent the request, but no response within the backend timeout (300 ms): the middleware hangs');
    expect(r.stdout).toContain('[EDGE_ERR_BACKEND_TIMEOUT]');
  });

  it('5xx: the middleware answered, but no decision', async () => {
    const mw = await middleware({ behavior: { kind: '5xx', status: 502 } });
    const r = await check(['--backend', `${mw.url}/auth`, VIEWER]);
    expect(r.code).toBe(3);
    expect(r.stdout).toContain('✓ HTTP  502 Bad Gateway');
    expect(r.stdout).toContain('unavailable: middleware answered 502 [EDGE_ERR_BACKEND_HTTP_5XX]');
  });

  it.each([
    ['garbage', 'not a valid HTTP response (HPE_', 'EDGE_ERR_BACKEND_INVALID'],
    ['close', 'the connection closed without an answer (', 'EDGE_ERR_BACKEND_RESET'],
  ] as const)('a middleware that answers %s: the HTTP step says which', async (behavior, detail, code) => {
    const mw = await middleware({ behavior });
    const r = await check(['--backend', `${mw.url}/auth`, VIEWER]);
    expect(r.code).toBe(3);
    expect(r.stdout).toContain(`✗ HTTP  ${detail}`);
    expect(r.stdout).toContain(`[${code}]`);
  });

  it('a name that does not resolve: the DNS step fails (an .invalid name: nothing is sent off the machine)', async () => {
    const r = await check(['--backend', 'http://middleware.invalid:8081/auth', VIEWER]);
    expect(r.code).toBe(3);
    expect(r.stdout).toContain('✗ DNS   middleware.invalid does not resolve');
    expect(r.stdout).not.toContain('TCP ');
  });

  it('a name that resolves (localhost, from /etc/hosts): every address is listed', async () => {
    const mw = await middleware();
    const r = await check(['--backend', `http://localhost:${mw.port}/auth`, VIEWER]);
    expect(r.stdout).toMatch(/✓ DNS {3}localhost → .*127\.0\.0\.1/);
    expect(r.code).toBe(0);
  });
});

describe('check: several middlewares (backends:)', () => {
  it('each exchange is shown; one down and one denying → the deny decides; one allowing → allowed', async () => {
    const deny = await middleware({ behavior: { kind: 'deny', status: 401 } });
    const allow = await middleware();
    const down = await refusedUrl();
    const denied = await check([VIEWER], { EDGE_BACKENDS: JSON.stringify([{ name: 'down', url: down }, { name: 'no', url: deny.url }]) });
    expect(denied.code).toBe(1);
    expect(denied.stdout).toContain('Middleware down (http)');
    expect(denied.stdout).toContain('Middleware no (http)');
    expect(denied.stdout).toContain('denied by the middleware no (it answered 401): backend_401 (none allowed: the first deny decides)');
    const allowed = await check([VIEWER], { EDGE_BACKENDS: JSON.stringify([{ name: 'down', url: down }, { name: 'no', url: deny.url }, { name: 'yes', url: allow.url }]) });
    expect(allowed.code).toBe(0);
    expect(allowed.stdout).toContain('allowed by the middleware yes');
  });

  it('a stalker backend without a token decides without a call', async () => {
    const mw = await middleware();
    const r = await check(['--backend-type', 'stalker', '--backend', mw.url, 'http://edge/play/a001/index.m3u8']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('no call: the stalker backend decides without asking');
    expect(r.stdout).toContain('✗ deny (no_token)');
    expect(mw.requests).toHaveLength(0);
  });
});

describe('check: secrets and --json', () => {
  it('the token, URL credentials and the middleware URL query values are redacted unless --show-secrets', async () => {
    const mw = await middleware({ behavior: { kind: 'deny', status: 403, body: `bad token ${TOKEN}` } });
    const backend = `http://user:pa55@127.0.0.1:${mw.port}/auth?key=API-KEY-1`;
    const redacted = await check(['--backend', backend, VIEWER, '--ip', '10.1.2.3']);
    expect(redacted.code).toBe(1);
    for (const secret of [TOKEN, 'API-KEY-1', 'pa55']) expect(redacted.stdout).not.toContain(secret);
    expect(redacted.stdout).toContain(`> GET http://127.0.0.1:${mw.port}/auth?key=redacted&token=<redacted>&x=%2F1`);
    expect(redacted.stdout).toContain('< body: "bad token <redacted>"');
    // The edge drops URL credentials: check says so.
    expect(redacted.stdout).toContain('its URL carries credentials (user:password@): the edge does not send them');
    // It is the display that is redacted, not the request.
    expect(mw.requests[0]!.rawUrl).toBe(`/auth?key=API-KEY-1&token=${TOKEN}&x=%2F1`);

    const json = await check(['--backend', backend, VIEWER, '--ip', '10.1.2.3', '--json']);
    for (const secret of [TOKEN, 'API-KEY-1', 'pa55']) expect(json.stdout).not.toContain(secret);

    const shown = await check(['--backend', backend, VIEWER, '--ip', '10.1.2.3', '--show-secrets']);
    expect(shown.stdout).toContain(`> GET http://127.0.0.1:${mw.port}/auth?key=API-KEY-1&token=${TOKEN}&x=%2F1`);
    expect(shown.stdout).toContain(`bad token ${TOKEN}`);
  });

  it('flussonic: the token is redacted inside qs= too', async () => {
    const mw = await middleware();
    const r = await checkJson(['--backend-type', 'flussonic', '--backend', `${mw.url}/auth`, VIEWER]);
    const url = r.report.backends[0]!.request!.url;
    expect(url).toContain('&token=<redacted>&');
    expect(url).toContain('qs=token%3D<redacted>%26x%3D%252F1');
    expect(JSON.stringify(r.report)).not.toContain(TOKEN);
  });

  it('--json carries the same facts', async () => {
    const mw = await middleware({ behavior: { kind: 'allow', headers: { 'X-AuthDuration': '600' } } });
    const { code, report } = await checkJson(['--backend', `${mw.url}/auth`, VIEWER, '--ip', '10.1.2.3']);
    expect(code).toBe(0);
    expect(report.exitCode).toBe(0);
    expect(report.request).toMatchObject({ url: 'http://edge.example:8080/play/a001/index.m3u8?token=<redacted>&x=%2F1', peerIp: '10.1.2.3', peerIpFrom: '--ip' });
    expect(report.identify).toMatchObject({ ok: true, channel: 'a001', kind: 'playlist', sessionKind: 'hls', clientIp: '10.1.2.3', token: '<redacted>', tokenLength: TOKEN.length });
    expect(report.rules.map((r) => r.result)).toEqual(['off', 'off', 'off', 'off', 'off']);
    expect(report.securetoken).toEqual({ configured: false, reason: null, allow: null, decides: false });
    const b = report.backends[0]!;
    expect(b).toMatchObject({ name: 'http', type: 'http', outcome: { result: 'allow', reason: 'backend_200', status: 200, ttlMs: 600_000 } });
    expect(b.steps.map((s) => [s.step, s.ok])).toEqual([
      ['dns', null],
      ['tcp', true],
      ['tls', null],
      ['http', true],
    ]);
    expect(b.response).toMatchObject({ status: 200, headers: expect.arrayContaining([['X-AuthDuration', '600']]), bodyBytes: 0 });
    expect(report.verdict).toMatchObject({ result: 'allow', decidedBy: 'backend', backend: 'http', reason: 'backend_200', keptMs: 600_000, keptBecause: 'X-AuthDuration from the middleware' });
  });
});

describe('check: one-shot tokens (--recheck-probe)', () => {
  it('a middleware that allows a token once, then denies it: a warning with the fix', async () => {
    const mw = await middleware({ behavior: { kind: 'deny', status: 403 } });
    mw.queueBehavior('allow');
    const r = await check(['--backend', `${mw.url}/auth`, VIEWER, '--recheck-probe=200ms']);
    // The request itself is allowed; the warning says the session will not last.
    expect(r.code).toBe(0);
    expect(mw.requests).toHaveLength(2);
    expect(mw.requests[1]!.rawUrl).toBe(mw.requests[0]!.rawUrl);
    expect(r.stdout).toContain('asked again 200 ms later (--recheck-probe)');
    expect(r.stdout).toContain('ONE-SHOT TOKEN');
    expect(r.stdout).toMatch(/! backend http: it allowed this token, then denied the same request 200 ms later \(backend_403\): this middleware issues one-shot tokens/);
    expect(r.stdout).toContain('--recheck never');
  });

  it('a middleware whose tokens last: no warning', async () => {
    const mw = await middleware();
    const r = await check(['--backend', `${mw.url}/auth`, VIEWER, '--recheck-probe', '100ms']);
    expect(r.code).toBe(0);
    expect(mw.requests).toHaveLength(2);
    expect(r.stdout).not.toContain('ONE-SHOT');
    expect(r.stdout).not.toContain('Warnings');
  });
});

describe('check: bad arguments (exit 2)', () => {
  it.each([
    [[], /which request\?/],
    [['--ip', 'nope', VIEWER], /--ip "nope" is not an IP address/],
    [['ftp://edge/play/a001'], /"ftp": the edge serves http/],
    [[VIEWER, 'http://other/'], /one URL only/],
    [['--header', 'NoColon', VIEWER], /expected "Name: value"/],
    [['--default-action', 'maybe', VIEWER], /--default-action.*"maybe"/],
    [['--backend', 'http://mw/', '--backend-ca', '/nonexistent/ca.pem', VIEWER], /backend http:.*nonexistent.*the edge would not start either/],
  ])('%j', async (args, message) => {
    const r = await check(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('--help', async () => {
    const r = await check(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Exit codes: 0 allowed; 1 denied');
  });
});
