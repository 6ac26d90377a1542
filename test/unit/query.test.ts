import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { appendParam, checkQuery, decodeKey, decodeValue, findParam, isParamNamed, phpVariableName, removeParam, removeParamNamed, splitTarget } from '../../src/proxy/query.js';
import { isRefusal, refusal } from '../../src/proxy/refusal.js';

describe('checkQuery', () => {
  it('accepts every character RFC 3986 allows in a query, and well-formed escapes', () => {
    expect(checkQuery('')).toBeUndefined();
    expect(checkQuery("token=a%2Fb&x=1&y=/?:@!$'()*+,;=-._~&flag&&z=%e2%9c%93")).toBeUndefined();
  });

  it.each([
    ['token=a#b', 'invalid_character'],
    ['token=a b', 'invalid_character'],
    ['token=a\tb', 'invalid_character'],
    ['token=é', 'invalid_character'],
    ['ids[]=1', 'invalid_character'],
    ['t="x"', 'invalid_character'],
    ['t=<x>', 'invalid_character'],
    ['t=a|b', 'invalid_character'],
    ['t=a{b}', 'invalid_character'],
    ['t=a^b', 'invalid_character'],
    ['t=a`b', 'invalid_character'],
    ['t=a\\b', 'invalid_character'],
    ['t=\u007f', 'invalid_character'],
    ['token=100%', 'malformed_escape'],
    ['token=%4', 'malformed_escape'],
    ['token=%zz', 'malformed_escape'],
    ['%u0074oken=x', 'malformed_escape'],
  ])('refuses %j: %s', (query, why) => {
    expect(checkQuery(query)).toBe(refusal(why as 'invalid_character'));
  });
});

describe('findParam', () => {
  it('reads the value as the middleware does: decoded, + as a space', () => {
    expect(findParam('token=a%2Fb&x=1', 'token')).toBe('a/b');
    expect(findParam('x=1&token=a+b%2B', 'token')).toBe('a b+');
    expect(findParam('token=%E2%9C%93', 'token')).toBe('✓');
    expect(findParam('x=1&token=', 'token')).toBe('');
    expect(findParam('token=a=b', 'token')).toBe('a=b');
  });

  it('reads a bare key as an empty value, as PHP does', () => {
    expect(findParam('token', 'token')).toBe('');
    expect(findParam('a=1&token&b=2', 'token')).toBe('');
  });

  it('decodes keys: %74oken IS token', () => {
    expect(findParam('%74oken=BAD', 'token')).toBe('BAD');
    expect(findParam('%74%6F%6B%65%6E=BAD', 'token')).toBe('BAD');
    expect(findParam('edge%5Fsession=ID', 'edge_session')).toBe('ID');
  });

  it('does not match a key that only starts or ends with the name', () => {
    expect(findParam('tokens=1&xtoken=2&tok=3', 'token')).toBeUndefined();
    expect(findParam('', 'token')).toBeUndefined();
    expect(findParam('&&', 'token')).toBeUndefined();
    expect(findParam('=token', 'token')).toBeUndefined();
  });

  it('refuses a parameter given twice, however it is spelled, rather than guess first or last', () => {
    expect(findParam('token=a&token=b', 'token')).toBe(refusal('duplicate_param'));
    expect(findParam('token=a&token=a', 'token')).toBe(refusal('duplicate_param'));
    expect(findParam('token=GOOD&%74oken=BAD', 'token')).toBe(refusal('duplicate_param'));
    expect(findParam('token&token=BAD', 'token')).toBe(refusal('duplicate_param'));
  });

  it('refuses a key PHP would file under the same variable without it being spelled the same', () => {
    for (const q of ['token%5B%5D=BAD', 'token%5Bx%5D=BAD', '%20token=BAD', '+token=BAD', 'token%00junk=BAD']) {
      expect(findParam(q, 'token'), q).toBe(refusal('ambiguous_param'));
    }
    // PHP turns "." and " " into "_" in variable names.
    expect(findParam('tok.en=BAD', 'tok_en')).toBe(refusal('ambiguous_param'));
    expect(findParam('tok+en=BAD', 'tok_en')).toBe(refusal('ambiguous_param'));
    expect(findParam('tok_en=BAD', 'tok.en')).toBe(refusal('ambiguous_param'));
    // An unmatched "[" becomes "_" too.
    expect(findParam('tok%5Ben=BAD', 'tok_en')).toBe(refusal('ambiguous_param'));
    // Not the same variable: fine.
    expect(findParam('token%5D=x&tokenx=y&token=ok', 'token')).toBe('ok');
  });

  it('refuses a value that is not UTF-8 once decoded', () => {
    expect(findParam('token=%FF', 'token')).toBe(refusal('param_not_utf8'));
    expect(findParam('token=%ED%A0%80', 'token')).toBe(refusal('param_not_utf8'));
    expect(findParam('token=%C0%AF', 'token')).toBe(refusal('param_not_utf8'));
    // Other parameters' bytes are none of our business: they go through as they are.
    expect(findParam('x=%FF&token=ok', 'token')).toBe('ok');
  });
});

describe('phpVariableName and decodeKey', () => {
  it('name keys as php_register_variable_ex does', () => {
    expect(phpVariableName('token')).toBe('token');
    expect(phpVariableName('  tok en.x')).toBe('tok_en_x');
    expect(phpVariableName('token[]')).toBe('token');
    expect(phpVariableName('token[a.b][c]')).toBe('token');
    expect(phpVariableName('tok[en')).toBe('tok_en');
    expect(phpVariableName('token\0junk')).toBe('token');
    expect(decodeKey('%74o+k%zz%C3%A9')).toBe('to k%zz\u00c3\u00a9');
  });
});

describe('removeParam', () => {
  it('removes every occurrence, keys compared decoded, and keeps all other bytes in order', () => {
    expect(removeParam('a=1&edge_session=X&b=%20&a=2', 'edge_session')).toBe('a=1&b=%20&a=2');
    expect(removeParam('edge_session=X', 'edge_session')).toBe('');
    expect(removeParam('edge_session=X&edge_session=Y&z', 'edge_session')).toBe('z');
    expect(removeParam('edge_session&k=v', 'edge_session')).toBe('k=v');
    expect(removeParam('a=1&edge%5Fsession=X', 'edge_session')).toBe('a=1');
    expect(removeParam('a=1&&edge_session=X&', 'edge_session')).toBe('a=1&&');
  });
  it('leaves look-alike names alone', () => {
    expect(removeParam('edge_sessions=1&my_edge_session=2', 'edge_session')).toBe('edge_sessions=1&my_edge_session=2');
  });
  it('returns the same string when the name is absent', () => {
    const q = 'a=%41&&b=+';
    expect(removeParam(q, 'edge_session')).toBe(q);
  });
});

describe('appendParam', () => {
  it('adds with ? or & and keeps the fragment last', () => {
    expect(appendParam('seg-1.ts', 's', 'ID')).toBe('seg-1.ts?s=ID');
    expect(appendParam('/p/seg.ts?a=1', 's', 'ID')).toBe('/p/seg.ts?a=1&s=ID');
    expect(appendParam('seg.ts?', 's', 'ID')).toBe('seg.ts?s=ID');
    expect(appendParam('seg.ts?a=1&', 's', 'ID')).toBe('seg.ts?a=1&s=ID');
    expect(appendParam('seg.ts#t=1', 's', 'ID')).toBe('seg.ts?s=ID#t=1');
  });
  it('percent-encodes the value', () => {
    expect(appendParam('seg.ts', 's', 'a&b=c#d')).toBe('seg.ts?s=a%26b%3Dc%23d');
  });
});

describe('splitTarget', () => {
  it('splits at the first ?', () => {
    expect(splitTarget('/play/a/index.m3u8?token=1?2')).toEqual({ path: '/play/a/index.m3u8', query: 'token=1?2' });
    expect(splitTarget('/play/a')).toEqual({ path: '/play/a', query: '' });
  });
});

describe('isParamNamed / removeParamNamed (names as a middleware decodes them)', () => {
  const named = (part: string, name: string, ignoreCase = false): boolean => {
    const eq = part.indexOf('=');
    return isParamNamed(part, 0, eq === -1 ? part.length : eq, name, ignoreCase);
  };
  it('percent-decodes the name; letter case only when asked', () => {
    expect(named('edge_session=1', 'edge_session')).toBe(true);
    expect(named('%65dge%5Fsession=1', 'edge_session')).toBe(true);
    expect(named('%65dge%5fsession', 'edge_session')).toBe(true);
    expect(named('EDGE_SESSION=1', 'edge_session')).toBe(false);
    expect(named('EDGE_SESSION=1', 'edge_session', true)).toBe(true);
    expect(named('%45DGE_session=1', 'edge_session', true)).toBe(true);
  });
  it('a malformed escape is literal text; prefixes and extensions are other names', () => {
    expect(named('edge_session%=1', 'edge_session')).toBe(false);
    expect(named('%6', 'k')).toBe(false);
    expect(named('%zzk', 'k')).toBe(false);
    expect(named('edge_sessions=1', 'edge_session')).toBe(false);
    expect(named('edge_sessio=1', 'edge_session')).toBe(false);
    expect(named('', 'edge_session')).toBe(false);
  });
  it('removes every matching part and keeps the others, empty ones included, in order', () => {
    expect(removeParamNamed('a=1&%65dge_session=X&&b=2&edge_session', 'edge_session', false)).toBe('a=1&&b=2');
    expect(removeParamNamed('EDGE_SESSION=X&a', 'edge_session', false)).toBe('EDGE_SESSION=X&a');
    expect(removeParamNamed('EDGE_SESSION=X&a', 'edge_session', true)).toBe('a');
    expect(removeParamNamed('edge_session=X', 'edge_session', false)).toBe('');
    const q = 'x=%20&&y';
    expect(removeParamNamed(q, 'edge_session', false)).toBe(q);
  });
});

// ---- Properties --------------------------------------------------------------------------

/**
 * The reference reader, written the slow and obvious way: split on "&", split each part at
 * its first "=", form-decode bytes with Buffer, decode a value with a fatal TextDecoder.
 */
const utf8 = new TextDecoder('utf-8', { fatal: true });
function formBytes(raw: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === '+') bytes.push(0x20);
    else if (c === '%' && /^[0-9A-Fa-f]{2}$/.test(raw.slice(i + 1, i + 3))) {
      bytes.push(parseInt(raw.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(...Buffer.from(c, 'utf8'));
  }
  return Buffer.from(bytes);
}
function phpName(key: string): string {
  let k = key.split('\0')[0]!.replace(/^ +/, '');
  const open = k.indexOf('[');
  if (open !== -1 && k.indexOf(']', open + 1) !== -1) k = k.slice(0, open);
  return k.replace(/[ .[]/g, '_');
}
function referenceFind(query: string, name: string): string | undefined | 'duplicate_param' | 'ambiguous_param' | 'param_not_utf8' {
  let found: string | undefined;
  for (const part of query.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const key = formBytes(eq === -1 ? part : part.slice(0, eq)).toString('latin1');
    const value = eq === -1 ? '' : part.slice(eq + 1);
    if (key === name) {
      if (found !== undefined) return 'duplicate_param';
      found = value;
    } else if (phpName(key) === phpName(name)) return 'ambiguous_param';
  }
  if (found === undefined) return undefined;
  try {
    return utf8.decode(formBytes(found));
  } catch {
    return 'param_not_utf8';
  }
}

const NAMES = ['token', 'edge_session', 'tok.en'] as const;
// Queries built from the pieces that matter: keys spelled as the names, encoded, mangled the way
// PHP renames variables, or different; values with escapes (valid, not UTF-8, of separators),
// "+" and plain text; bare keys and empty parts.
const keyPiece = fc.constantFrom(
  'token', '%74oken', 'tok%65n', 'token%5B%5D', 'token%5Bx%5D', '+token', '%20token', 'token%00x', 'tokens', 'toke', 'tok.en', 'tok_en', 'tok%2Een', 'tok+en',
  'tok%5Ben', 'edge_session', 'edge%5Fsession', 'edge.session', 'x', 'a%26b', '%3D', '',
);
const valuePiece = fc.constantFrom('a', 'B', '1', '+', '%20', '%2B', '%26', '%3D', '%23', '=', '%C3%A9', '%E2%9C%93', '%FF', '%ED%A0%80', '%c3', '/', '?', ':', '~', '-', '.', '_');
const part = fc.tuple(keyPiece, fc.option(fc.array(valuePiece, { maxLength: 6 }), { nil: undefined })).map(([k, v]) => (v === undefined ? k : `${k}=${v.join('')}`));
const query = fc.array(part, { maxLength: 6 }).map((parts) => parts.join('&'));
const name = fc.constantFrom(...NAMES);

describe('query properties', () => {
  it('findParam never throws and agrees with the reference reader', () => {
    fc.assert(
      fc.property(query, name, (q, n) => {
        const ours = findParam(q, n);
        expect(isRefusal(ours) ? ours.refused : ours).toBe(referenceFind(q, n));
      }),
      { numRuns: 5000 },
    );
  });

  it('findParam, removeParam and checkQuery never throw on any string at all', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60, unit: 'binary' }), name, (q, n) => {
        findParam(q, n);
        removeParam(q, n);
        checkQuery(q);
        decodeValue(q);
      }),
      { numRuns: 3000 },
    );
  });

  it('the marker round-trips: appended, it is found as written and removed to give the query back', () => {
    const marker = fc.stringMatching(/^[A-Za-z0-9_-]{22}$/);
    const path = fc.constantFrom('seg-1.ts', '/play/a/seg.ts', 'http://o:8000/x/y.m3u8');
    fc.assert(
      fc.property(query, marker, path, (q, id, p) => {
        // A query the edge would have accepted, without a marker of its own.
        fc.pre(checkQuery(q) === undefined && findParam(q, 'edge_session') === undefined);
        const uri = appendParam(q === '' ? p : `${p}?${q}`, 'edge_session', id);
        const { query: back } = splitTarget(uri);
        expect(findParam(back, 'edge_session')).toBe(id);
        expect(checkQuery(back)).toBeUndefined();
        // Every other byte comes back where it was (appendParam adds no "&" after a trailing one).
        expect(removeParam(back, 'edge_session')).toBe(q.endsWith('&') ? q.slice(0, -1) : q);
        // And what stays is exactly what the token lookup saw before.
        expect(findParam(removeParam(back, 'edge_session'), 'token')).toEqual(findParam(q, 'token'));
      }),
      { numRuns: 3000 },
    );
  });

  it('a value written with encodeURIComponent is read back exactly, whatever it holds', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 30, unit: 'grapheme' }), query, (value, rest) => {
        fc.pre(checkQuery(rest) === undefined && findParam(rest, 'token') === undefined);
        const q = rest === '' ? `token=${encodeURIComponent(value)}` : `${rest}&token=${encodeURIComponent(value)}`;
        expect(checkQuery(q)).toBeUndefined();
        expect(findParam(q, 'token')).toBe(value);
      }),
      { numRuns: 3000 },
    );
  });
});
