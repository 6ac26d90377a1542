import { describe, expect, it } from 'vitest';
import { LocalRules, validateRules, type RulesConfig } from '../../src/auth/rules.js';

const NONE: RulesConfig = { ipAllow: [], ipDeny: [], tokenAllow: [], tokenDeny: [], userAgentDeny: [] };
const rules = (partial: Partial<RulesConfig>): LocalRules => new LocalRules({ ...NONE, ...partial });
const ask = (r: LocalRules, clientIp: string, token?: string, userAgent = 'VLC/3.0.20 LibVLC/3.0.20') => r.evaluate({ clientIp, token, userAgent });

describe('LocalRules order', () => {
  it('is empty with no rules, and then never decides', () => {
    const r = rules({});
    expect(r.empty).toBe(true);
    expect(ask(r, '10.0.0.1', 'tok')).toBeUndefined();
    expect(rules({ tokenDeny: ['x'] }).empty).toBe(false);
  });

  it('denies an IP that is both allowed and denied', () => {
    const r = rules({ ipAllow: ['10.0.0.0/8'], ipDeny: ['10.0.0.66'] });
    expect(ask(r, '10.0.0.66')).toEqual({ allow: false, reason: 'ip_denied' });
    expect(ask(r, '10.0.0.67')).toEqual({ allow: true, reason: 'ip_allowed' });
  });

  it('allows an allow-listed IP even with a denied User-Agent or token (IP allow comes before both)', () => {
    const r = rules({ ipAllow: ['192.0.2.0/24'], userAgentDeny: ['curl'], tokenDeny: ['stolen'] });
    expect(ask(r, '192.0.2.10', 'stolen', 'curl/8.5.0')).toEqual({ allow: true, reason: 'ip_allowed' });
    expect(ask(r, '198.51.100.1', 'stolen', 'curl/8.5.0')).toEqual({ allow: false, reason: 'user_agent_denied' });
  });

  it('checks the User-Agent before tokens, and token deny before token allow', () => {
    const r = rules({ userAgentDeny: ['^bot'], tokenAllow: ['vip', 'both'], tokenDeny: ['both'] });
    expect(ask(r, '198.51.100.1', 'vip', 'BotAgent/1')).toEqual({ allow: false, reason: 'user_agent_denied' });
    expect(ask(r, '198.51.100.1', 'vip')).toEqual({ allow: true, reason: 'token_allowed' });
    expect(ask(r, '198.51.100.1', 'both')).toEqual({ allow: false, reason: 'token_denied' });
  });

  it('leaves everything else to the middleware', () => {
    const r = rules({ ipAllow: ['10.0.0.0/8'], ipDeny: ['10.9.0.0/16'], userAgentDeny: ['curl'], tokenAllow: ['vip'], tokenDeny: ['stolen'] });
    expect(ask(r, '203.0.113.5', 'other')).toBeUndefined();
    expect(ask(r, '203.0.113.5', undefined)).toBeUndefined();
    expect(ask(r, '', 'other')).toBeUndefined(); // no usable address: IP rules cannot match
  });
});

describe('LocalRules IP lists', () => {
  it('matches IPv4 CIDRs and bare addresses, host bits in the entry ignored', () => {
    const r = rules({ ipDeny: ['203.0.113.7', '10.1.2.3/8', '0.0.0.0/32'] });
    expect(ask(r, '203.0.113.7')?.reason).toBe('ip_denied');
    expect(ask(r, '203.0.113.8')).toBeUndefined();
    expect(ask(r, '10.200.0.1')?.reason).toBe('ip_denied');
    expect(ask(r, '11.0.0.1')).toBeUndefined();
  });

  it('matches IPv6 CIDRs and bare addresses', () => {
    const r = rules({ ipAllow: ['2001:db8::/32', '::1'] });
    expect(ask(r, '2001:db8:ffff::1')?.reason).toBe('ip_allowed');
    expect(ask(r, '2001:db9::1')).toBeUndefined();
    expect(ask(r, '::1')?.reason).toBe('ip_allowed');
    expect(ask(r, '127.0.0.1')).toBeUndefined(); // ::1 is not 127.0.0.1
  });

  it('matches an IPv4 client written IPv4-mapped, and an IPv4-mapped entry', () => {
    const v4Entry = rules({ ipDeny: ['10.0.0.0/8'] });
    expect(ask(v4Entry, '::ffff:10.1.2.3')?.reason).toBe('ip_denied');
    expect(ask(v4Entry, '::ffff:11.1.2.3')).toBeUndefined();
    const mappedEntry = rules({ ipDeny: ['::ffff:10.0.0.0/104', '::ffff:192.0.2.1'] });
    expect(ask(mappedEntry, '10.1.2.3')?.reason).toBe('ip_denied');
    expect(ask(mappedEntry, '192.0.2.1')?.reason).toBe('ip_denied');
    expect(ask(mappedEntry, '11.1.2.3')).toBeUndefined();
  });

  it('keeps /0 of one family from swallowing the other', () => {
    const r = rules({ ipDeny: ['0.0.0.0/0'] });
    expect(ask(r, '198.51.100.1')?.reason).toBe('ip_denied');
    expect(ask(r, '2001:db8::1')).toBeUndefined();
  });
});

describe('LocalRules User-Agent patterns', () => {
  it('match case-insensitively, anywhere unless anchored', () => {
    const r = rules({ userAgentDeny: ['curl', '^Wget/', 'python-requests/\\d'] });
    expect(ask(r, '198.51.100.1', undefined, 'CURL/8.5.0')?.reason).toBe('user_agent_denied');
    expect(ask(r, '198.51.100.1', undefined, 'Mozilla/5.0 (compatible; Curl)')?.reason).toBe('user_agent_denied');
    expect(ask(r, '198.51.100.1', undefined, 'wget/1.21')?.reason).toBe('user_agent_denied');
    expect(ask(r, '198.51.100.1', undefined, 'NotWget/1.21')).toBeUndefined();
    expect(ask(r, '198.51.100.1', undefined, 'Python-Requests/2.31')?.reason).toBe('user_agent_denied');
    expect(ask(r, '198.51.100.1', undefined, 'python-requests/x')).toBeUndefined();
  });

  it('can refuse an empty User-Agent with ^$', () => {
    const r = rules({ userAgentDeny: ['^$'] });
    expect(ask(r, '198.51.100.1', undefined, '')?.reason).toBe('user_agent_denied');
    expect(ask(r, '198.51.100.1', undefined, 'VLC')).toBeUndefined();
  });

  it('give the same answer on every call (no lastIndex state)', () => {
    const r = rules({ userAgentDeny: ['curl'] });
    for (let i = 0; i < 3; i++) expect(ask(r, '198.51.100.1', undefined, 'curl/8')?.reason).toBe('user_agent_denied');
  });
});

describe('LocalRules tokens', () => {
  it('compare exactly, with the decoded value the middleware reads', () => {
    // The handler decodes `?token=a%2Bb` to `a+b` and `?token=a+b` to `a b` (proxy/query.ts).
    const r = rules({ tokenAllow: ['a+b', 'Secret1', 'ключ'], tokenDeny: ['leaked', 'with space'] });
    expect(ask(r, '198.51.100.1', 'a+b')?.reason).toBe('token_allowed');
    expect(ask(r, '198.51.100.1', 'a b')).toBeUndefined();
    expect(ask(r, '198.51.100.1', 'ключ')?.reason).toBe('token_allowed');
    expect(ask(r, '198.51.100.1', 'with space')?.reason).toBe('token_denied');
    expect(ask(r, '198.51.100.1', 'Secret1')?.reason).toBe('token_allowed');
    expect(ask(r, '198.51.100.1', 'secret1')).toBeUndefined();
    expect(ask(r, '198.51.100.1', 'Secret')).toBeUndefined();
    expect(ask(r, '198.51.100.1', 'Secret12')).toBeUndefined();
    expect(ask(r, '198.51.100.1', '')).toBeUndefined();
    expect(ask(r, '198.51.100.1', 'leaked')).toEqual({ allow: false, reason: 'token_denied' });
  });

  it('does not keep the configured tokens in the object', () => {
    const r = rules({ tokenAllow: ['TopSecretToken'] });
    const seen: string[] = [];
    JSON.stringify(r, (_key, value: unknown) => {
      if (value instanceof Set) return [...(value as Set<unknown>)];
      if (typeof value === 'string') seen.push(value);
      return value;
    });
    expect(seen.join(' ')).not.toContain('TopSecretToken');
  });
});

describe('validateRules', () => {
  it('accepts a valid config', () => {
    expect(validateRules(NONE)).toBeUndefined();
    expect(validateRules({ ipAllow: ['10.0.0.0/8', '::1', 'fd00::/8', '::ffff:10.0.0.0/104'], ipDeny: ['0.0.0.0/0'], tokenAllow: ['abc=def', 'a+b', 'has space', 'ключ', 'x#y&z', '100%'], tokenDeny: ['x'], userAgentDeny: ['^$', 'curl|wget'] })).toBeUndefined();
  });

  it.each([
    [{ ipAllow: ['10.0.0.0/33'] }, 'rules.ipAllow: "10.0.0.0/33" is not an IP address or CIDR'],
    [{ ipDeny: ['fd00::/129'] }, 'rules.ipDeny: "fd00::/129" is not an IP address or CIDR'],
    [{ ipDeny: ['10.0.0.0/8/9'] }, 'rules.ipDeny: "10.0.0.0/8/9" is not an IP address or CIDR'],
    [{ ipDeny: ['10.0.0.0/'] }, 'rules.ipDeny: "10.0.0.0/" is not an IP address or CIDR'],
    [{ ipDeny: ['10.0.0.0/+8'] }, 'rules.ipDeny: "10.0.0.0/+8" is not an IP address or CIDR'],
    [{ ipDeny: ['10.0.0'] }, 'rules.ipDeny: "10.0.0" is not an IP address or CIDR'],
    [{ ipDeny: ['example.com'] }, 'rules.ipDeny: "example.com" is not an IP address or CIDR'],
    [{ ipDeny: ['fe80::1%eth0'] }, 'rules.ipDeny: "fe80::1%eth0" is not an IP address or CIDR'],
    [{ ipAllow: ['10.0.0.1', ' 10.0.0.2'] }, 'rules.ipAllow: " 10.0.0.2" is not an IP address or CIDR'],
    [{ userAgentDeny: [''] }, 'rules.userAgentDeny: "" would match every User-Agent (write ^$ to refuse an empty one)'],
  ])('names the bad entry: %j', (partial, message) => {
    expect(validateRules({ ...NONE, ...partial })).toBe(message);
  });

  it('reports an invalid regular expression with the engine message', () => {
    expect(validateRules({ ...NONE, userAgentDeny: ['ok', '('] })).toMatch(/^rules\.userAgentDeny: "\(" is not a valid regular expression: .*Unterminated group/);
  });

  it('names a bad token by position and never echoes it', () => {
    expect(validateRules({ ...NONE, tokenAllow: ['fine', ''] })).toBe('rules.tokenAllow[1]: empty');
    // Compared decoded since the query is read as the middleware reads it: an entry written
    // percent-encoded (as the old raw comparison wanted) would silently never match.
    for (const [list, bad] of [['tokenAllow', 'secret%2Bmore'], ['tokenDeny', 'a%2fb'], ['tokenDeny', '%41']] as const) {
      const message = validateRules({ ...NONE, [list]: ['fine', bad] });
      expect(message).toMatch(new RegExp(`^rules\\.${list}\\[1\\]: looks percent-encoded: tokens are compared decoded`));
      expect(message).not.toContain(bad);
    }
  });

  it('is what the constructor throws', () => {
    expect(() => new LocalRules({ ...NONE, ipAllow: ['10.0.0.0/33'] })).toThrow(new TypeError('rules.ipAllow: "10.0.0.0/33" is not an IP address or CIDR'));
  });

  it('does not touch the caller\'s config', () => {
    const config = Object.freeze({ ...NONE, ipAllow: Object.freeze(['10.0.0.0/8']), userAgentDeny: Object.freeze(['curl']) });
    expect(() => new LocalRules(config)).not.toThrow();
  });
});
