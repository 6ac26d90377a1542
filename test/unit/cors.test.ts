// proxy/cors.ts and the cors.* settings: origins read as a browser writes them, the header arrays
// built once per origin (the hot path appends a shared array), config errors that name the field.
import { describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config/load.js';
import { CorsPolicy, allowedRequestHeaders, hasAllowOrigin, normalizeCorsOrigin, originHeader } from '../../src/proxy/cors.js';

describe('normalizeCorsOrigin', () => {
  it.each([
    ['https://TV.Example.com', 'https://tv.example.com'],
    ['https://tv.example.com/', 'https://tv.example.com'],
    ['http://tv.example.com:80', 'http://tv.example.com'],
    ['https://tv.example.com:8443', 'https://tv.example.com:8443'],
    ['http://[::1]:3000', 'http://[::1]:3000'],
    ['*', '*'],
    ['null', 'null'],
    ['app://Player', 'app://player'],
  ])('%s → %s', (entry, expected) => {
    expect(normalizeCorsOrigin(entry)).toBe(expected);
  });
  it.each(['tv.example.com', 'https://tv.example.com/app', 'https://tv.example.com?x=1', 'https://user:pw@tv.example.com', '', 'https://'])('%j is not an origin', (entry) => {
    expect(normalizeCorsOrigin(entry)).toBeUndefined();
  });
});

describe('originHeader', () => {
  it('finds Origin in any letter case without building a header object', () => {
    expect(originHeader(['Host', 'x', 'ORIGIN', 'https://a.example'])).toBe('https://a.example');
    expect(originHeader(['origin', 'null'])).toBe('null');
    expect(originHeader(['Host', 'x', 'Origins', 'y', 'Referer', 'z'])).toBeUndefined();
  });
});

describe('allowedRequestHeaders', () => {
  it("keeps the players' headers a preflight asks for, lower-case and once; drops the rest", () => {
    expect(allowedRequestHeaders('Range, X-Evil,range , If-None-Match')).toBe('range, if-none-match');
    expect(allowedRequestHeaders('authorization, cookie')).toBe('');
    expect(allowedRequestHeaders(undefined)).toBe('');
    expect(allowedRequestHeaders(Array.from({ length: 100 }, () => 'x').join(',') + ',range')).toBe(''); // cut short
  });
});

describe('CorsPolicy', () => {
  it('is absent without origins: nothing to add, ever', () => {
    expect(CorsPolicy.from(buildConfig({}).cors)).toBeUndefined();
  });

  it('hands out one prebuilt array per allowed origin, and nothing for any other', () => {
    const policy = CorsPolicy.from(buildConfig({ file: { cors: { origins: ['https://tv.example.com', 'null'] } } }).cors)!;
    const a = policy.headersFor('https://tv.example.com');
    expect(a).toEqual([
      'access-control-allow-origin',
      'https://tv.example.com',
      'vary',
      'Origin',
      'access-control-expose-headers',
      'Content-Length, Content-Range, Accept-Ranges, Retry-After, Age, Date, ETag, X-Cache',
    ]);
    expect(policy.headersFor('https://tv.example.com')).toBe(a);
    expect(Object.isFrozen(a)).toBe(true);
    expect(policy.headersFor('null')?.[1]).toBe('null');
    expect(policy.headersFor('https://TV.example.com')).toBeUndefined(); // browsers send it lower-case
    expect(policy.headersFor('https://evil.example')).toBeUndefined();
    expect(policy.headersFor(undefined)).toBeUndefined();
  });

  it('`*` answers every origin with the same array', () => {
    const policy = CorsPolicy.from(buildConfig({ file: { cors: { origins: '*' } } }).cors)!;
    expect(policy.headersFor('https://a.example')).toBe(policy.headersFor('null'));
    expect(policy.headersFor('https://a.example')?.slice(0, 2)).toEqual(['access-control-allow-origin', '*']);
    expect(policy.headersFor(undefined)).toBeUndefined();
  });

  it('hasAllowOrigin spots the upstream\'s own header in any case', () => {
    expect(hasAllowOrigin(['Content-Type', 'x', 'Access-Control-Allow-Origin', '*'])).toBe(true);
    expect(hasAllowOrigin(['access-control-expose-headers', 'x'])).toBe(false);
  });
});

describe('cors.* settings', () => {
  it('reads flags, env and file like every other setting', () => {
    expect(buildConfig({ flags: { 'cors.origins': ['https://a.example', 'https://b.example/'] } }).cors).toEqual({ origins: ['https://a.example', 'https://b.example'], maxAgeS: 600, credentials: false });
    expect(buildConfig({ env: { EDGE_CORS_ORIGINS: '*', EDGE_CORS_MAX_AGE: '1h' } }).cors).toEqual({ origins: ['*'], maxAgeS: 3600, credentials: false });
  });
  it.each([
    [{ origins: ['*'], credentials: true }, /invalid cors\.credentials \(in test\): true: cannot be true with cors\.origins \*/],
    [{ credentials: true }, /invalid cors\.credentials \(in test\): true: has no effect without cors\.origins/],
    [{ origins: ['tv.example.com'] }, /invalid cors\.origins \(in test\): .*"tv\.example\.com" is not an origin: write scheme:\/\/host\[:port\]/],
    [{ origins: ['https://tv.example.com/player'] }, /"https:\/\/tv\.example\.com\/player" is not an origin/],
    [{ origins: ['*', 'https://tv.example.com'] }, /invalid cors\.origins \(in test\): .*\* already allows every origin/],
  ])('refuses %j, naming the field', (cors, message) => {
    expect(() => buildConfig({ file: { cors }, fileName: 'test' })).toThrow(message);
  });
  it('--cors-credentials with --cors-origin * names the flags', () => {
    expect(() => buildConfig({ flags: { 'cors.origins': ['*'], 'cors.credentials': 'true' } })).toThrow(/^invalid --cors-credentials: "true": cannot be true with cors\.origins \*/);
  });
});
