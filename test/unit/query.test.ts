import { describe, expect, it } from 'vitest';
import { appendParam, findParam, isParamNamed, removeParam, removeParamNamed, splitTarget } from '../../src/proxy/query.js';

describe('findParam', () => {
  it('finds the first value, raw and undecoded', () => {
    expect(findParam('token=a%2Fb&x=1', 'token')).toBe('a%2Fb');
    expect(findParam('x=1&token=t1&token=t2', 'token')).toBe('t1');
    expect(findParam('x=1&token=', 'token')).toBe('');
  });
  it('does not match a parameter that only starts with the name', () => {
    expect(findParam('tokens=1&xtoken=2', 'token')).toBeUndefined();
    expect(findParam('token', 'token')).toBeUndefined();
    expect(findParam('', 'token')).toBeUndefined();
  });
});

describe('removeParam', () => {
  it('removes every occurrence and keeps all other bytes in order', () => {
    expect(removeParam('a=1&edge_session=X&b=%20&a=2', 'edge_session')).toBe('a=1&b=%20&a=2');
    expect(removeParam('edge_session=X', 'edge_session')).toBe('');
    expect(removeParam('edge_session=X&edge_session=Y&z', 'edge_session')).toBe('z');
    expect(removeParam('edge_session&k=v', 'edge_session')).toBe('k=v');
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
