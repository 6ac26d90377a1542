import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { formatSessionTable, parseAdminArgs, type RemoteSessionView } from '../../src/cli/admin-client.js';
import { helpText, parseArgs } from '../../src/cli/args.js';
import { OPTIONS } from '../../src/config/options.js';
import { EdgeError } from '../../src/errors.js';

describe('parseArgs', () => {
  it('maps flags to option paths, both --flag value and --flag=value', () => {
    const a = parseArgs(['--listen', '127.0.0.1:1', '--backend=http://mw/check?x=1', '--trusted-proxy', '10.0.0.0/8', '--trusted-proxy=fd00::/8,192.168.0.0/16']);
    expect(a.command).toBe('run');
    expect(a.flags).toEqual({ listen: '127.0.0.1:1', 'backend.url': 'http://mw/check?x=1', 'proxy.trustedProxies': ['10.0.0.0/8', 'fd00::/8', '192.168.0.0/16'] });
  });
  it('knows commands, --config, --help and --version', () => {
    expect(parseArgs(['check-config', '-c', 'edge.yaml'])).toMatchObject({ command: 'check-config', configFile: 'edge.yaml' });
    expect(parseArgs(['--upstream', 'http://x:1', '--help']).command).toBe('help');
    expect(parseArgs(['--version']).command).toBe('version');
  });
  it('rejects unknown options, missing values and stray arguments, naming them', () => {
    const err = (argv: string[]): string => {
      try {
        parseArgs(argv);
      } catch (e) {
        expect(e).toBeInstanceOf(EdgeError);
        return (e as Error).message;
      }
      throw new Error('expected an error');
    };
    expect(err(['--lisen', 'x'])).toMatch(/unknown option --lisen/);
    expect(err(['--listen'])).toMatch(/--listen needs a value/);
    expect(err(['--listen', '--upstream', 'x'])).toMatch(/--listen needs a value/);
    expect(err(['serve'])).toMatch(/unexpected argument "serve"/);
  });
});

describe('parseAdminArgs', () => {
  it('takes a session ID that begins with "-" as the ID (regression: base64url IDs can)', () => {
    const id = '-abcdefghijklmnopqrstu';
    expect(parseAdminArgs('kick', [id, '--token', 't'], {})).toMatchObject({ command: 'kick', id, token: 't' });
    expect(parseAdminArgs('kick', ['--admin', 'http://127.0.0.1:1', id], {})).toMatchObject({ id, adminUrl: 'http://127.0.0.1:1' });
    expect(parseAdminArgs('kick', ['--', '-x'], {})).toMatchObject({ id: '-x' });
  });
  it('names what is wrong', () => {
    expect(() => parseAdminArgs('kick', [], {})).toThrow(/kick needs a session ID/);
    expect(() => parseAdminArgs('sessions', ['--admin', 'not a url'], {})).toThrow(/invalid --admin/);
    expect(() => parseAdminArgs('sessions', ['--bogus'], {})).toThrow(/unexpected argument "--bogus"/);
  });
});

describe('formatSessionTable', () => {
  const row = (id: string, edge?: string): RemoteSessionView => ({
    id,
    channel: 'news',
    kind: 'hls',
    name: 'carol',
    userId: null,
    ip: '10.0.0.1',
    userAgent: '',
    openedAt: new Date(0).toISOString(),
    lastSeenAt: new Date(0).toISOString(),
    requests: 1,
    bytes: 10,
    state: 'open',
    decision: { result: 'allow', reason: null, source: 'backend', decidedAt: null, expiresAt: null },
    nextCheckAt: null,
    ...(edge !== undefined && { edge }),
  });
  it('shows the edge holding each session (a fleet\'s table), - for an edge from before fleets', () => {
    const text = formatSessionTable([row('a'.repeat(22), 'edge-3:8080'), row('b'.repeat(22))], 60_000);
    const [header, first, second] = text.split('\n');
    expect(header).toMatch(/NEXT CHECK\s+EDGE$/);
    expect(first).toMatch(/\s+edge-3:8080$/);
    expect(second).toMatch(/\s+-$/);
  });
});

describe('documentation', () => {
  it('--help documents every option with its env variable', () => {
    const help = helpText('0.0.0');
    for (const o of OPTIONS) {
      expect(help).toContain(o.flag ?? o.path);
      expect(help).toContain(o.env);
    }
  });
  it('the README documents every flag', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    for (const o of OPTIONS) expect(readme, o.flag ?? o.path).toContain(`\`${o.flag ?? o.path}\``);
  });
});
