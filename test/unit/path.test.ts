import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normalizePath } from '../../src/proxy/path.js';
import { isRefusal } from '../../src/proxy/refusal.js';

const reason = (raw: string): string | undefined => {
  const r = normalizePath(raw);
  return isRefusal(r) ? r.refused : undefined;
};

describe('normalizePath', () => {
  it('returns a path that needs nothing as the very same string', () => {
    for (const p of ['/', '/play/a001/index.m3u8', '/play/a001', '/play/a/seg.1.ts', '/a/.hidden/..x/...', '/play/%D0%BA%D0%B0/x', '/a//b', "/a/b!$&'()*+,;=:@~_-/"]) {
      expect(normalizePath(p)).toBe(p);
    }
  });

  it('removes dot-segments (RFC 3986 §5.2.4), after decoding unreserved escapes', () => {
    expect(normalizePath('/play/a/../b/index.m3u8')).toBe('/play/b/index.m3u8');
    expect(normalizePath('/play/a/%2e%2e/b/index.m3u8')).toBe('/play/b/index.m3u8');
    expect(normalizePath('/play/a/.%2e/b/index.m3u8')).toBe('/play/b/index.m3u8');
    expect(normalizePath('/play/a/%2E%2E/b/index.m3u8')).toBe('/play/b/index.m3u8');
    expect(normalizePath('/play/a/./index.m3u8')).toBe('/play/a/index.m3u8');
    expect(normalizePath('/play/../secret')).toBe('/secret');
    expect(normalizePath('/a/b/..')).toBe('/a/');
    expect(normalizePath('/a/b/.')).toBe('/a/b/');
    expect(normalizePath('/a/..')).toBe('/');
    expect(normalizePath('/.')).toBe('/');
    expect(normalizePath('/a//../b')).toBe('/a/b');
    expect(normalizePath('/a/b/../../c/./d/')).toBe('/c/d/');
  });

  it('decodes unreserved escapes and writes the others in upper case', () => {
    expect(normalizePath('/play/%61%62c/%7e')).toBe('/play/abc/~');
    expect(normalizePath('/play/%c3%a9/x')).toBe('/play/%C3%A9/x');
    expect(normalizePath('/play/a%2Db/%25')).toBe('/play/a-b/%25');
    // %25 stays encoded: decoding it would make a new escape.
    expect(normalizePath('/play/%252e%252e/x')).toBe('/play/%252e%252e/x');
  });

  it.each([
    ['/..', 'path_above_root'],
    ['/play/../../etc/passwd', 'path_above_root'],
    ['/%2e%2e/x', 'path_above_root'],
    ['/a/../..', 'path_above_root'],
    ['/play/a%2F..%2Fb', 'encoded_separator'],
    ['/play/a%2f', 'encoded_separator'],
    ['/play/a%5C..%5Cb', 'encoded_separator'],
    ['/play/a%00.ts', 'encoded_control'],
    ['/play/a%0A', 'encoded_control'],
    ['/play/a%7f', 'encoded_control'],
    ['/play/a%', 'malformed_escape'],
    ['/play/a%2', 'malformed_escape'],
    ['/play/a%zz', 'malformed_escape'],
    ['/play/a%%41', 'malformed_escape'],
    ['/play\\a', 'invalid_character'],
    ['/play/a b', 'invalid_character'],
    ['/play/a#b', 'invalid_character'],
    ['/play/a?b', 'invalid_character'],
    ['/play/é', 'invalid_character'],
    ['/play/a\u0000', 'invalid_character'],
    ['/play/[a]', 'invalid_character'],
    ['/play/a|b', 'invalid_character'],
    ['play/a', 'invalid_character'],
    ['', 'invalid_character'],
    ['//evil.example/x', 'path_double_slash'],
    ['/a/..//evil.example/x', 'path_double_slash'],
    ['//.', 'path_double_slash'],
  ])('refuses %j: %s', (raw, why) => {
    expect(reason(raw)).toBe(why);
  });
});

// Paths built from the pieces that matter: dot-segments (raw and encoded), escapes of every
// kind, separators, and a few bytes that must be refused.
const piece = fc.oneof(
  { weight: 30, arbitrary: fc.constantFrom('/', '.', '..', '%2e', '%2E', '.%2e', 'a', 'b', 'play', '%61', '%c3%a9', '%25', '~', '-', '_', ';', '%7E', ':@') },
  { weight: 1, arbitrary: fc.constantFrom('%2F', '%5c', '%00', '%', '%zz', '\\', '#', ' ', '?') },
);
const rawPath = fc.array(piece, { maxLength: 24 }).map((parts) => `/${parts.join('')}`);

/** RFC 3986 §5.2.4, rule by rule, on a string buffer: the oracle. */
function rfcRemoveDotSegments(path: string): string {
  let input = path;
  let output = '';
  const dropLastSegment = (): void => {
    output = output.slice(0, Math.max(0, output.lastIndexOf('/')));
  };
  while (input.length > 0) {
    if (input.startsWith('../')) input = input.slice(3);
    else if (input.startsWith('./')) input = input.slice(2);
    else if (input.startsWith('/./')) input = input.slice(2);
    else if (input === '/.') input = '/';
    else if (input.startsWith('/../')) {
      input = input.slice(3);
      dropLastSegment();
    } else if (input === '/..') {
      input = '/';
      dropLastSegment();
    } else if (input === '.' || input === '..') input = '';
    else {
      const next = input.indexOf('/', 1);
      const segment = next === -1 ? input : input.slice(0, next);
      output += segment;
      input = input.slice(segment.length);
    }
  }
  return output;
}

describe('normalizePath properties', () => {
  it('never throws, and a normalized path is normal: no dot-segment, never above or off the root', () => {
    fc.assert(
      fc.property(fc.oneof(rawPath, fc.string({ maxLength: 40 })), (raw) => {
        const out = normalizePath(raw);
        if (isRefusal(out)) return;
        expect(out.startsWith('/')).toBe(true);
        // Not a network-path reference: resolved against the upstream it stays on the upstream.
        expect(out.startsWith('//')).toBe(false);
        expect(new URL(out, 'http://upstream.invalid:8000').origin).toBe('http://upstream.invalid:8000');
        const segments = out.split('/');
        expect(segments.includes('.') || segments.includes('..')).toBe(false);
        // Nothing left to decode into a dot, a separator or a lower-case escape.
        expect(out).not.toMatch(/%(?:2[eEfF]|5[cC]|[0-9A-F][a-f]|[a-f][0-9A-Fa-f])/);
      }),
      { numRuns: 3000 },
    );
  });

  it('is idempotent', () => {
    fc.assert(
      fc.property(rawPath, (raw) => {
        const once = normalizePath(raw);
        if (!isRefusal(once)) expect(normalizePath(once)).toBe(once);
      }),
      { numRuns: 3000 },
    );
  });

  it('agrees with RFC 3986 §5.2.4 written out literally, on every path it accepts', () => {
    // (Not new URL(): Node 20's parser leaves "/x/.a/." unresolved, where WHATWG and RFC 3986 give "/x/.a/".)
    const safe = fc.array(fc.constantFrom('/', '.', '..', '%2e', '%2E', 'a', 'b', 'c'), { maxLength: 16 }).map((parts) => `/x/y/${parts.join('')}`);
    fc.assert(
      fc.property(safe, (raw) => {
        const out = normalizePath(raw);
        if (isRefusal(out)) return;
        expect(out).toBe(rfcRemoveDotSegments(raw.replaceAll(/%2e/gi, '.')));
      }),
      { numRuns: 3000 },
    );
  });
});
