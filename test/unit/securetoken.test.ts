import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { makeSecureToken, SECURETOKEN_CLOCK_SKEW_MS, verifySecureToken, type SecureTokenConfig } from '../../src/auth/securetoken.js';

const bound: SecureTokenConfig = { secret: 's3cr3t', bindIp: true };
const unbound: SecureTokenConfig = { secret: 's3cr3t', bindIp: false };
const client = { channel: 'sport1', clientIp: '198.51.100.7' };
const START = 1_700_000_000;
const END = START + 3600;
const inWindow = (START + 60) * 1000;

/** The token as PROTOCOLS §6 defines it, computed here without the module. */
function reference(channel: string, ip: string, start: string, end: string, secret: string, salt: string): string {
  const hash = createHash('sha1').update(`${channel}${ip}${start}${end}${secret}${salt}`).digest('hex');
  return `${hash}-${salt}-${end}-${start}`;
}

/** Replaces one of the four parts of a token. */
function withPart(token: string, index: number, value: string): string {
  const parts = token.split('-');
  parts[index] = value;
  return parts.join('-');
}

describe('makeSecureToken', () => {
  it('matches a known-answer vector computed independently', () => {
    const expected = reference('sport1', '198.51.100.7', String(START), String(END), 's3cr3t', 'abc123');
    expect(makeSecureToken(client, bound, START, END, 'abc123')).toBe(expected);
    // Pinned, so a change in both the module and the helper would still show.
    expect(expected).toBe(`${createHash('sha1').update('sport1198.51.100.717000000001700003600s3cr3tabc123').digest('hex')}-abc123-1700003600-1700000000`);
  });

  it('hashes an empty IP when not bound to the client', () => {
    expect(makeSecureToken(client, unbound, START, END, 'abc123')).toBe(reference('sport1', '', String(START), String(END), 's3cr3t', 'abc123'));
  });

  it('refuses inputs that would make an unparsable or forgeable token', () => {
    expect(() => makeSecureToken(client, bound, START, END, 'has-dash')).toThrow(RangeError);
    expect(() => makeSecureToken(client, bound, START, END, '')).toThrow(RangeError);
    expect(() => makeSecureToken(client, bound, 1.5, END, 'abc')).toThrow(RangeError);
    expect(() => makeSecureToken(client, bound, -1, END, 'abc')).toThrow(RangeError);
    expect(() => makeSecureToken(client, bound, END, START, 'abc')).toThrow(RangeError);
    expect(() => makeSecureToken(client, { secret: '', bindIp: true }, START, END, 'abc')).toThrow(RangeError);
  });
});

describe('verifySecureToken', () => {
  const token = makeSecureToken(client, bound, START, END, 'abc123');

  it('accepts a valid token, with the time left until end as TTL', () => {
    expect(verifySecureToken(token, client, bound, inWindow)).toEqual({ allow: true, reason: 'securetoken_valid', ttlMs: (END - START - 60) * 1000 });
    expect(verifySecureToken(token, client, bound, START * 1000)).toEqual({ allow: true, reason: 'securetoken_valid', ttlMs: 3600_000 });
    expect(verifySecureToken(token, client, bound, END * 1000 - 1)).toEqual({ allow: true, reason: 'securetoken_valid', ttlMs: 1 });
  });

  it('accepts a token built by an independent implementation, uppercase hash too', () => {
    const theirs = reference('sport1', '198.51.100.7', String(START), String(END), 's3cr3t', 'f00d');
    expect(verifySecureToken(theirs, client, bound, inWindow).reason).toBe('securetoken_valid');
    expect(verifySecureToken(withPart(theirs, 0, theirs.split('-')[0]!.toUpperCase()), client, bound, inWindow).reason).toBe('securetoken_valid');
  });

  it('hashes start and end exactly as written (leading zeros count)', () => {
    const padded = reference('sport1', '198.51.100.7', `0${START}`, String(END), 's3cr3t', 'abc');
    expect(verifySecureToken(padded, client, bound, inWindow).reason).toBe('securetoken_valid');
    expect(verifySecureToken(withPart(padded, 3, String(START)), client, bound, inWindow).reason).toBe('securetoken_invalid');
  });

  it('is expired from end on', () => {
    expect(verifySecureToken(token, client, bound, END * 1000)).toEqual({ allow: false, reason: 'securetoken_expired' });
    expect(verifySecureToken(token, client, bound, (END + 86_400) * 1000).reason).toBe('securetoken_expired');
  });

  it('is not yet valid before start, beyond the clock skew', () => {
    expect(verifySecureToken(token, client, bound, START * 1000 - SECURETOKEN_CLOCK_SKEW_MS).reason).toBe('securetoken_valid');
    expect(verifySecureToken(token, client, bound, START * 1000 - SECURETOKEN_CLOCK_SKEW_MS - 1)).toEqual({ allow: false, reason: 'securetoken_not_yet_valid' });
  });

  it('binds to the client IP when bindIp is true', () => {
    expect(verifySecureToken(token, { ...client, clientIp: '198.51.100.8' }, bound, inWindow).reason).toBe('securetoken_invalid');
  });

  it('accepts any client IP when bindIp is false', () => {
    const anyIp = makeSecureToken({ channel: 'sport1', clientIp: 'ignored' }, unbound, START, END, 'abc123');
    expect(verifySecureToken(anyIp, client, unbound, inWindow).reason).toBe('securetoken_valid');
    expect(verifySecureToken(anyIp, { ...client, clientIp: '2001:db8::1' }, unbound, inWindow).reason).toBe('securetoken_valid');
    // A bound token does not verify unbound, nor the reverse.
    expect(verifySecureToken(token, client, unbound, inWindow).reason).toBe('securetoken_invalid');
    expect(verifySecureToken(anyIp, client, bound, inWindow).reason).toBe('securetoken_invalid');
  });

  it('is invalid for another channel or another secret', () => {
    expect(verifySecureToken(token, { ...client, channel: 'sport2' }, bound, inWindow).reason).toBe('securetoken_invalid');
    expect(verifySecureToken(token, client, { ...bound, secret: 'other' }, inWindow).reason).toBe('securetoken_invalid');
  });

  it.each([
    ['hash', 0, (h: string) => `${h[0] === '0' ? '1' : '0'}${h.slice(1)}`],
    ['salt', 1, () => 'abc124'],
    ['end (extended)', 2, () => String(END + 86_400)],
    ['start', 3, () => String(START - 1)],
  ])('is invalid with a tampered %s, whatever its times say', (_name, index, tamper) => {
    const tampered = withPart(token, index, tamper(token.split('-')[index]!));
    expect(tampered).not.toBe(token);
    expect(verifySecureToken(tampered, client, bound, inWindow)).toEqual({ allow: false, reason: 'securetoken_invalid' });
  });

  it('reports a forged token as invalid, not expired, even outside its window', () => {
    const forged = withPart(token, 0, '0'.repeat(40));
    expect(verifySecureToken(forged, client, bound, (END + 1) * 1000).reason).toBe('securetoken_invalid');
  });

  it('takes the token already decoded (the handler decodes it once, as the middleware would): escapes are not decoded again', () => {
    const encoded = token.replaceAll('-', '%2D');
    expect(verifySecureToken(encoded, client, bound, inWindow).reason).toBe('securetoken_malformed');
    const [h, salt, end, start] = token.split('-') as [string, string, string, string];
    expect(verifySecureToken(`${h}-${salt}%41-${end}-${start}`, client, bound, inWindow).reason).toBe('securetoken_invalid');
  });

  const [hash] = token.split('-') as [string];
  it.each([
    ['missing', undefined],
    ['empty', ''],
    ['three parts', `${hash}-abc123-${END}`],
    ['five parts (dash in salt)', `${hash}-abc-123-${END}-${START}`],
    ['empty salt', `${hash}--${END}-${START}`],
    ['short hash', `${hash.slice(2)}-abc123-${END}-${START}`],
    ['long hash', `${hash}00-abc123-${END}-${START}`],
    ['non-hex hash', `${hash.slice(1)}g-abc123-${END}-${START}`],
    ['non-numeric end', `${hash}-abc123-never-${START}`],
    ['non-numeric start', `${hash}-abc123-${END}-0x10`],
    ['fractional start', `${hash}-abc123-${END}-${START}.5`],
    ['signed end', `${hash}-abc123-+${END}-${START}`],
    ['empty end', `${hash}-abc123--${START}`],
    ['huge end', `${hash}-abc123-99999999999999999999-${START}`],
    ['end before start', `${hash}-abc123-${START}-${END}`],
    ['trailing garbage', `${token}%`],
    ['overlong', `${hash}-${'a'.repeat(600)}-${END}-${START}`],
  ])('is malformed: %s', (_name, bad) => {
    expect(verifySecureToken(bad, client, bound, inWindow)).toEqual({ allow: false, reason: 'securetoken_malformed' });
  });
});
