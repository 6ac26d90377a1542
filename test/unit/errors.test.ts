import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, EdgeError, classifyTransportError, errorBody } from '../../src/errors.js';

describe('classifyTransportError', () => {
  it.each([
    [{ code: 'ECONNREFUSED' }, 'refused'],
    [{ code: 'ENOTFOUND' }, 'refused'],
    [{ code: 'ECONNRESET' }, 'reset'],
    [{ code: 'UND_ERR_SOCKET' }, 'reset'],
    [{ code: 'UND_ERR_HEADERS_TIMEOUT' }, 'timeout'],
    [{ code: 'UND_ERR_BODY_TIMEOUT' }, 'timeout'],
    [{ code: 'UND_ERR_CONNECT_TIMEOUT' }, 'timeout'],
    [{ name: 'TimeoutError' }, 'timeout'],
    [{ name: 'HTTPParserError' }, 'invalid'],
    [{ code: 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' }, 'invalid'],
    [{ message: 'wrapped', cause: { code: 'ECONNREFUSED' } }, 'refused'],
    [{ code: 'SOMETHING_NEW' }, 'reset'],
    ['not an object', 'reset'],
  ])('%j → %s', (err, kind) => {
    expect(classifyTransportError(err)).toBe(kind);
  });
});

describe('EdgeError', () => {
  it('carries the code and the status of the table', () => {
    const e = new EdgeError('EDGE_ERR_UPSTREAM_TIMEOUT');
    expect(e.status).toBe(504);
    expect(e.message).toBe(ERROR_CODES.EDGE_ERR_UPSTREAM_TIMEOUT.text);
    expect(JSON.parse(errorBody('EDGE_ERR_AUTH_DENIED', 'backend_"403"'))).toEqual({ error: 'EDGE_ERR_AUTH_DENIED', reason: 'backend_"403"' });
  });
});

describe('README error-code table', () => {
  it('lists every code with its status, and no code that does not exist', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const listed = new Map([...readme.matchAll(/^\| `(EDGE_ERR_[A-Z_0-9]+)` \| (\d{3}) \|/gm)].map((m) => [m[1]!, Number(m[2])]));
    const actual = new Map(Object.entries(ERROR_CODES).map(([code, v]) => [code, v.status]));
    expect(Object.fromEntries(listed)).toEqual(Object.fromEntries(actual));
  });
});
