import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildConfig, describeConfig } from '../../src/config/load.js';
import { redactUrl } from '../../src/redact.js';
import { parseDurationMs, parseHostPort, parseSizeBytes } from '../../src/config/units.js';
import { EdgeError } from '../../src/errors.js';

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(EdgeError);
    expect((err as EdgeError).code).toBe('EDGE_ERR_CONFIG');
    return (err as Error).message;
  }
  throw new Error('expected a config error');
}

describe('defaults', () => {
  it('matches the documented defaults', () => {
    const c = buildConfig({});
    expect(c.listen).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(c.admin.listen).toEqual({ host: '127.0.0.1', port: 9901 });
    expect(c.upstream.origin).toBe('http://127.0.0.1:8000');
    expect(c.auth.defaultAction).toBe('allow');
    expect(c.backend.type).toBe('http');
    expect(c.backend.url).toBeUndefined();
    expect(c.backend.timeoutMs).toBe(1000);
    expect(c.auth.denyTtlMs).toBeLessThan(c.auth.allowTtlMs);
    expect(Object.isFrozen(c) && Object.isFrozen(c.auth)).toBe(true);
  });
});

describe('precedence flags > env > file > defaults', () => {
  const file = { listen: '127.0.0.1:1001', auth: { allowTtl: '5m', denyTtl: 3 } };
  it('file over defaults', () => {
    const c = buildConfig({ file });
    expect(c.listen.port).toBe(1001);
    expect(c.auth.allowTtlMs).toBe(300_000);
    expect(c.auth.denyTtlMs).toBe(3000);
  });
  it('env over file, flags over env', () => {
    const env = { EDGE_LISTEN: '127.0.0.1:1002', EDGE_DEFAULT_ACTION: 'deny' };
    expect(buildConfig({ file, env }).listen.port).toBe(1002);
    const c = buildConfig({ file, env, flags: { listen: '127.0.0.1:1003' } });
    expect(c.listen.port).toBe(1003);
    expect(c.auth.defaultAction).toBe('deny');
  });
  it('does not mutate its inputs', () => {
    const input = structuredClone(file);
    buildConfig({ file: input, flags: { 'auth.allowTtl': '10m' } });
    expect(input).toEqual(file);
  });
});

describe('errors name the setting and the value', () => {
  it('flags', () => {
    expect(configError(() => buildConfig({ flags: { 'auth.defaultAction': 'maybe' } }))).toMatch(/--default-action.*"maybe".*allow, deny, keep-granted/);
    expect(configError(() => buildConfig({ flags: { listen: 'nope' } }))).toMatch(/--listen.*"nope"/);
  });
  it('env', () => {
    expect(configError(() => buildConfig({ env: { EDGE_BACKEND: 'ftp://x' } }))).toMatch(/EDGE_BACKEND.*"ftp:\/\/x"/);
  });
  it('file, including unknown keys', () => {
    expect(configError(() => buildConfig({ file: { auth: { allowTTL: 1 } }, fileName: 'edge.yaml' }))).toMatch(/edge\.yaml.*unknown setting "auth\.allowTTL"/);
    expect(configError(() => buildConfig({ file: { upstream: { url: 'http://astra:8000/play' } }, fileName: 'e.yaml' }))).toMatch(/upstream\.url.*without path/);
    expect(configError(() => buildConfig({ file: { session: { channelPattern: '^/live/([^/]+)' } } }))).toMatch(/session\.channelPattern.*\(\?<channel>/);
    expect(configError(() => buildConfig({ file: { proxy: { trustedProxies: ['10.0.0.0/33'] } } }))).toMatch(/trustedProxies.*10\.0\.0\.0\/33/);
    expect(configError(() => buildConfig({ file: ['a'] }))).toMatch(/mapping/);
  });
  it('cross-field checks', () => {
    expect(configError(() => buildConfig({ flags: { 'backend.timeout': '0s' } }))).toMatch(/--backend-timeout.*"0s".*greater than 0/);
    expect(configError(() => buildConfig({ flags: { 'session.param': 'token' } }))).toMatch(/--session-param.*tokenParam/);
    // Every middleware call in flight needs its own connection (auth/guarded.ts).
    // Left unset, backend.connections follows backend.concurrency; set below it, it is an error.
    expect(buildConfig({ flags: { 'backend.concurrency': 100 } }).backend.connections).toBe(100);
    expect(configError(() => buildConfig({ flags: { 'backend.concurrency': 100, 'backend.connections': 64 } }))).toBe(
      'invalid --backend-connections: 64: must be at least the concurrency (--backend-concurrency: 100): every middleware call in flight needs its own connection: set it to 100 or more',
    );
    expect(configError(() => buildConfig({ file: { backends: [{ url: 'http://127.0.0.1:1/a' }, { url: 'http://127.0.0.1:2/a', connections: 8, concurrency: 16 }] } }))).toMatch(/^invalid backends\[1\]\.connections: 8: must be at least the concurrency \(backends\[1\]\.concurrency: 16\)/);
    expect(buildConfig({ flags: { 'backend.concurrency': 100, 'backend.connections': 100 } }).backend.concurrency).toBe(100);
  });
});

describe('units', () => {
  it('durations', () => {
    expect(parseDurationMs('500ms')).toBe(500);
    expect(parseDurationMs('1.5s')).toBe(1500);
    expect(parseDurationMs(2)).toBe(2000);
    expect(parseDurationMs('7d')).toBe(604_800_000);
    expect(parseDurationMs('-1s')).toBeUndefined();
    expect(parseDurationMs('5 parsecs')).toBeUndefined();
  });
  it('sizes', () => {
    expect(parseSizeBytes('64KiB')).toBe(65536);
    expect(parseSizeBytes('1MB')).toBe(1_000_000);
    expect(parseSizeBytes(10)).toBe(10);
    expect(parseSizeBytes('big')).toBeUndefined();
  });
  it('listen addresses', () => {
    expect(parseHostPort('[::1]:9901')).toEqual({ host: '::1', port: 9901 });
    expect(parseHostPort(':8080')).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(parseHostPort('host:70000')).toBeUndefined();
  });
});

describe('redaction', () => {
  it('hides credentials and query values of the middleware URL', () => {
    expect(redactUrl('http://user:pw@mw/check?key=secret')).toBe('http://redacted@mw/check?key=redacted');
    const described = JSON.stringify(describeConfig(buildConfig({ flags: { 'backend.url': 'http://mw/check?api_key=hunter2' } })));
    expect(described).not.toContain('hunter2');
  });
});

describe('the fleet store and node name', () => {
  it('memory by default; a redis:// or rediss:// URL from --store, EDGE_STORE or store.url; the node name defaults to host:port', () => {
    const c = buildConfig({});
    expect(c.store).toEqual({ url: undefined, prefix: 'edge:' });
    expect(c.node.name).toBe(`${hostname()}:8080`);
    expect(buildConfig({ flags: { listen: '0.0.0.0:8081' } }).node.name).toBe(`${hostname()}:8081`);
    expect(buildConfig({ flags: { 'store.url': 'MEMORY' } }).store.url).toBeUndefined();
    expect(buildConfig({ env: { EDGE_STORE: 'redis://10.0.0.5:6380/2' } }).store.url).toBe('redis://10.0.0.5:6380/2');
    expect(buildConfig({ file: { store: { url: 'rediss://edge:pw@redis.example.com', prefix: 'tv1:' }, node: { name: 'edge-3' } } })).toMatchObject({ store: { url: 'rediss://edge:pw@redis.example.com', prefix: 'tv1:' }, node: { name: 'edge-3' } });
    expect(buildConfig({ env: { EDGE_NODE_NAME: 'edge-7' } }).node.name).toBe('edge-7');
  });
  it('a bad store URL names the setting and hides its password', () => {
    for (const bad of ['http://redis:6379', 'redis://', 'redis://h:6379/x', 'redis://h:6379/1?family=6', 'redis://h/99999', 'mongo']) {
      expect(configError(() => buildConfig({ flags: { 'store.url': bad } }))).toMatch(/^invalid --store: /);
    }
    const message = configError(() => buildConfig({ env: { EDGE_STORE: 'redis://u:hunter2@h:6379/db' } }));
    expect(message).toContain('EDGE_STORE');
    expect(message).not.toContain('hunter2');
    expect(configError(() => buildConfig({ file: { node: { name: 'edge 3' } } }))).toMatch(/node\.name/);
    expect(configError(() => buildConfig({ flags: { 'store.prefix': 'a b' } }))).toMatch(/--store-prefix/);
  });
  it('check-config shows the store URL without its credentials', () => {
    const shown = JSON.stringify(describeConfig(buildConfig({ flags: { 'store.url': 'redis://edge:hunter2@10.0.0.5:6379/1' } })));
    expect(shown).toContain('redis://redacted@10.0.0.5:6379/1');
    expect(shown).not.toContain('hunter2');
    expect(describeConfig(buildConfig({}))['store']).toEqual({ url: 'memory', prefix: 'edge:' });
  });
});

describe('deploy/edge.example.yaml', () => {
  it('is a valid configuration that sets every option', async () => {
    const { readConfigFile } = await import('../../src/config/load.js');
    const { OPTIONS } = await import('../../src/config/options.js');
    const file = fileURLToPath(new URL('../../deploy/edge.example.yaml', import.meta.url));
    const doc = await readConfigFile(file);
    const config = buildConfig({ file: doc, fileName: file });
    expect(config.backend.url).toBe('https://mw.example.com/auth/check');
    const text = readFileSync(file, 'utf8');
    for (const o of OPTIONS) expect(text, o.path).toContain(`${o.path.split('.').at(-1)!}:`);
  });
});
