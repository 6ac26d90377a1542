import { describe, expect, it } from 'vitest';
import { QueryRedactor, redactText, redactUrl } from '../../src/redact.js';

describe('QueryRedactor (the access log)', () => {
  const r = new QueryRedactor(['key', 'edge_session', 'token']);

  it('redacts the named parameters in any letter case or percent-encoding of the name', () => {
    expect(r.redact('key=SECRET&lang=en')).toBe('key=<redacted>&lang=en');
    expect(r.redact('KEY=SECRET&Edge_Session=ID')).toBe('KEY=<redacted>&Edge_Session=<redacted>');
    expect(r.redact('%6Bey=SECRET&edge%5Fsession=ID&%54OKEN=T')).toBe('%6Bey=<redacted>&edge%5Fsession=<redacted>&%54OKEN=<redacted>');
  });
  it('redacts every occurrence and the whole value, = included', () => {
    expect(r.redact('key=a&key=b=c&x=1')).toBe('key=<redacted>&key=<redacted>&x=1');
  });
  it('keeps every other byte: look-alike names, valueless names, empty parts', () => {
    expect(r.redact('keys=1&mykey=2&key&&x=%20')).toBe('keys=1&mykey=2&key&&x=%20');
    expect(r.redact('')).toBe('');
    const q = 'a=1&b=2';
    expect(r.redact(q)).toBe(q);
  });
  it('ignores empty names and duplicates in its list', () => {
    expect(new QueryRedactor(['', 'Token', 'token']).redact('=x&TOKEN=y')).toBe('=x&TOKEN=<redacted>');
  });
  it('stays linear on a query of many valueless parts', () => {
    const q = `${'a&'.repeat(8000)}key=S`;
    expect(r.redact(q)).toBe(`${'a&'.repeat(8000)}key=<redacted>`);
  });
});

describe('redactUrl (configured URLs)', () => {
  it('replaces credentials and every query value, keeping the spelling of the rest', () => {
    expect(redactUrl('http://user:pw@mw/check?key=secret')).toBe('http://redacted@mw/check?key=redacted');
    expect(redactUrl('https://MW.example:8443/a?x=1&api_key=K&flag#frag')).toBe('https://MW.example:8443/a?x=redacted&api_key=redacted&redacted#frag');
    expect(redactUrl('http://mw')).toBe('http://mw');
  });
  it('works on text a URL parser refuses (the value a config error is about)', () => {
    expect(redactUrl('http://u:p@mw:99999/auth?key=SECRETKEY')).toBe('http://redacted@mw:99999/auth?key=redacted');
    expect(redactUrl('u:p@mw/auth?key=S')).toBe('redacted@mw/auth?key=redacted');
    expect(redactUrl('//u:p@mw/x')).toBe('//redacted@mw/x');
    expect(redactUrl('http://u:p/ss@mw/auth')).toBe('http://redacted@mw/auth');
    expect(redactUrl('http:\\\\u:p@mw\\auth')).toBe('http:\\\\redacted@mw\\auth');
  });
});

describe('redactText (error messages)', () => {
  it('redacts every URL in the text and leaves the rest', () => {
    expect(redactText('connect to http://u:p@mw/auth?key=S1 failed; webhook "https://h/x?t=S2" too')).toBe('connect to http://redacted@mw/auth?key=redacted failed; webhook "https://h/x?t=redacted" too');
    expect(redactText('invalid --channel-pattern: "^/play/(?<channel>[^/]+)$"')).toBe('invalid --channel-pattern: "^/play/(?<channel>[^/]+)$"');
  });
});
