// The pure parts of `astra-auth-edge check`, and its exchange's DNS and TCP steps with a
// lookup the test controls (no name ever leaves the machine).
import { createServer, type AddressInfo, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { decideLocally } from '../../src/auth/authorizer.js';
import { LocalRules, RULE_ORDER, type RulesConfig } from '../../src/auth/rules.js';
import { exchange, type LookupAll } from '../../src/check/exchange.js';
import { headersOf, identify, parseViewerUrl } from '../../src/check/identify.js';
import { formatDuration } from '../../src/check/report.js';
import { DEFAULT_RECHECK_PROBE_MS, parseCheckArgs } from '../../src/cli/check-args.js';
import { cidrList } from '../../src/config/cidr.js';
import { buildConfig } from '../../src/config/load.js';

describe('parseCheckArgs', () => {
  it('separates the URL, the check options and the edge settings', () => {
    const a = parseCheckArgs(['-c', 'edge.yaml', '--backend', 'http://mw/a', 'http://edge/play/a/i.m3u8?token=1', '--ip', '10.0.0.1', '-A', 'VLC', '-H', 'Referer: x', '--header=X-Forwarded-For: 1.2.3.4', '--json', '--show-secrets']);
    expect(a).toMatchObject({
      configFile: 'edge.yaml',
      flags: { 'backend.url': 'http://mw/a' },
      url: 'http://edge/play/a/i.m3u8?token=1',
      ip: '10.0.0.1',
      userAgent: 'VLC',
      headers: [
        ['Referer', 'x'],
        ['X-Forwarded-For', '1.2.3.4'],
      ],
      json: true,
      showSecrets: true,
      recheckProbeMs: undefined,
    });
  });

  it('a boolean setting flag does not swallow the URL after it', () => {
    const a = parseCheckArgs(['--soft-limits', 'http://edge/play/a', '--bind-session-ip']);
    expect(a).toMatchObject({ url: 'http://edge/play/a', flags: { 'limits.soft': 'true', 'session.bindIp': 'true' } });
    expect(parseCheckArgs(['--soft-limits', '/play/a']).url).toBe('/play/a');
    expect(parseCheckArgs(['--soft-limits', 'false', '/play/a']).flags).toEqual({ 'limits.soft': 'false' });
  });

  it('--recheck-probe: alone, =DURATION, or followed by a duration', () => {
    expect(parseCheckArgs(['/play/a', '--recheck-probe']).recheckProbeMs).toBe(DEFAULT_RECHECK_PROBE_MS);
    expect(parseCheckArgs(['--recheck-probe', '/play/a']).recheckProbeMs).toBe(DEFAULT_RECHECK_PROBE_MS);
    expect(parseCheckArgs(['--recheck-probe=2s', '/play/a']).recheckProbeMs).toBe(2000);
    expect(parseCheckArgs(['--recheck-probe', '500ms', '/play/a']).recheckProbeMs).toBe(500);
    expect(() => parseCheckArgs(['--recheck-probe=1h', '/play/a'])).toThrow(/up to 10m/);
  });
});

describe('parseViewerUrl', () => {
  it.each([
    ['http://edge/play/a?token=1', { host: 'edge', target: '/play/a?token=1', droppedFragment: false }],
    ['https://u:p@edge:8443/play/a', { host: 'edge:8443', target: '/play/a', droppedFragment: false }],
    ['http://edge?token=1', { host: 'edge', target: '/?token=1', droppedFragment: false }],
    ['http://edge/play/a?token=1#t=10', { host: 'edge', target: '/play/a?token=1', droppedFragment: true }],
    ['/play/a%2Fb?token=1', { host: undefined, target: '/play/a%2Fb?token=1', droppedFragment: false }],
  ])('%s', (url, expected) => {
    expect(parseViewerUrl(url)).toEqual(expected);
  });
  it('refuses what is no viewer URL', () => {
    expect(parseViewerUrl('edge/play/a')).toHaveProperty('error');
    expect(parseViewerUrl('rtmp://edge/play/a')).toHaveProperty('error');
  });
});

describe('identify (the handler\'s reading)', () => {
  const config = buildConfig({ flags: { 'proxy.trustedProxies': ['10.0.0.0/8'] } });
  const trusted = cidrList(config.proxy.trustedProxies);

  it('the client IP from a trusted proxy\'s X-Forwarded-For, as the edge reads it', () => {
    const who = identify({ target: '/play/a001?token=t', rawHeaders: ['Host', 'edge', 'X-Forwarded-For', '203.0.113.9, 10.0.0.2'], peerIp: '10.0.0.1' }, config, trusted);
    expect(who).toMatchObject({ ok: true, clientIp: '203.0.113.9', clientIpFrom: 'forwarded', kind: 'stream', sessionKind: 'mpegts', token: 't' });
    const untrusted = identify({ target: '/play/a001?token=t', rawHeaders: ['X-Forwarded-For', '203.0.113.9'], peerIp: '192.0.2.1' }, config, trusted);
    expect(untrusted).toMatchObject({ ok: true, clientIp: '192.0.2.1', clientIpFrom: 'peer' });
  });

  it('the marker is taken off the query the middleware gets; a repeated marker is refused', () => {
    const who = identify({ target: '/play/a001/i.m3u8?edge_session=AAAAAAAAAAAAAAAAAAAAAA&token=t', rawHeaders: [], peerIp: '127.0.0.1' }, config, trusted);
    expect(who).toMatchObject({ ok: true, marker: 'AAAAAAAAAAAAAAAAAAAAAA', upstreamQuery: 'token=t' });
    const twice = identify({ target: '/play/a001/i.m3u8?edge_session=a&edge_session=b', rawHeaders: [], peerIp: '127.0.0.1' }, config, trusted);
    expect(twice).toMatchObject({ ok: false, status: 400, step: 'marker', reason: 'duplicate_param' });
  });

  it('normalizes the path as the edge does (the channel is read from the result)', () => {
    expect(identify({ target: '/play/a/../b/i.m3u8', rawHeaders: [], peerIp: '127.0.0.1' }, config, trusted)).toMatchObject({ ok: true, channel: 'b', path: '/play/b/i.m3u8', rawPath: '/play/a/../b/i.m3u8' });
    expect(identify({ target: '/play/../../x', rawHeaders: [], peerIp: '127.0.0.1' }, config, trusted)).toMatchObject({ ok: false, reason: 'path_above_root' });
  });

  it('headersOf keeps the first of most duplicates and joins X-Forwarded-For, as Node does', () => {
    expect(headersOf(['User-Agent', 'a', 'user-agent', 'b', 'X-Forwarded-For', '1.1.1.1', 'x-forwarded-for', '2.2.2.2'])).toEqual({ 'user-agent': 'a', 'x-forwarded-for': '1.1.1.1, 2.2.2.2' });
  });
});

describe('local rules: the order check lists is the order evaluate() applies', () => {
  const all: RulesConfig = { ipDeny: ['10.0.0.0/8'], ipAllow: ['10.0.0.0/8'], userAgentDeny: ['^VLC'], tokenDeny: ['t'], tokenAllow: ['t'] };
  it('each rule wins over every later one', () => {
    for (let i = 0; i < RULE_ORDER.length; i++) {
      const config = { ...all };
      for (const earlier of RULE_ORDER.slice(0, i)) config[earlier.list] = [];
      const result = new LocalRules(config).evaluate({ clientIp: '10.1.2.3', token: 't', userAgent: 'VLC/3' });
      expect(result).toEqual({ allow: RULE_ORDER[i]!.allow, reason: RULE_ORDER[i]!.reason });
    }
  });

  it('decideLocally: a malformed securetoken goes on to a middleware, and is a deny without one', () => {
    const local = { rules: undefined, securetoken: { secret: 's', bindIp: true } };
    const input = { clientIp: '10.1.2.3', token: 'not-a-securetoken', userAgent: '', channel: 'a' };
    expect(decideLocally(local, input, true, Date.now())).toMatchObject({ securetoken: { reason: 'securetoken_malformed' }, decided: undefined });
    expect(decideLocally(local, input, false, Date.now())).toMatchObject({ decided: { allow: false, reason: 'securetoken_malformed' } });
  });
});

describe('exchange: DNS and TCP steps', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
    server = undefined;
  });
  const call = (origin: string) => ({ method: 'GET' as const, origin, path: '/auth', headers: [], readBody: false });
  const options = (lookup: LookupAll) => ({ timeoutMs: 500, maxBodyBytes: 1024, caFile: undefined, lookup });

  it.each([
    ['ENOTFOUND', 'does not resolve (no such name)', 'EDGE_ERR_BACKEND_REFUSED'],
    ['EAI_AGAIN', 'temporary DNS failure', 'EDGE_ERR_BACKEND_REFUSED'],
  ])('%s', async (code, detail, edge) => {
    const r = await exchange(call('http://mw.example'), options(() => Promise.reject(Object.assign(new Error(code), { code }))));
    expect(r.steps).toEqual([expect.objectContaining({ step: 'dns', ok: false, code, detail: expect.stringContaining(detail) })]);
    expect(r.failure?.code).toBe(edge);
  });

  it('a resolver that does not answer in time', async () => {
    const r = await exchange(call('http://mw.example'), options(() => new Promise(() => undefined)));
    expect(r.steps[0]).toMatchObject({ step: 'dns', ok: false, code: 'ETIMEOUT' });
    expect(r.failure?.code).toBe('EDGE_ERR_BACKEND_TIMEOUT');
  });

  it('every address is tried in turn: the first refused, the next connects', async () => {
    // resume(): a socket that is never read never sees the client's FIN, and close() would wait for it.
    server = createServer((s) => s.resume().end('HTTP/1.1 204 No Content\r\n\r\n'));
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', () => resolve()));
    const port = (server.address() as AddressInfo).port;
    const r = await exchange(call(`http://mw.example:${port}`), options(() => Promise.resolve([{ address: '::1', family: 6 }, { address: '127.0.0.1', family: 4 }])));
    expect(r.steps[0]).toMatchObject({ step: 'dns', ok: true, addresses: ['::1', '127.0.0.1'] });
    expect(r.steps[1]).toMatchObject({ step: 'tcp', ok: true, detail: expect.stringMatching(new RegExp(`^connected to 127\\.0\\.0\\.1:${port} \\(after \\[::1\\]:${port}: `)) });
    expect(r.response?.status).toBe(204);
  });
});

it('formatDuration writes durations the way the flags take them', () => {
  expect([500, 1000, 60_000, 300_000, 600_000, 3_600_000, 36_000_000, 1500].map(formatDuration)).toEqual(['500 ms', '1s', '60s', '300s', '10m', '1h', '10h', '1500 ms']);
});
