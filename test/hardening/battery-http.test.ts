// The hardening battery, HTTP layer: request heads no player sends, sent as raw bytes to the
// public listener. For each: the exact status and error code, whether the connection stays
// usable, and that neither the middleware nor the origin saw anything they should not have.
import { describe, expect, it } from 'vitest';
import { rawExchange, type RawExchange, type RawResponse } from '../helpers/raw-http.js';
import { useStack, type Stack } from '../helpers/stack.js';

const startStack = useStack({ origin: { segmentBytes: 4096 } });
// A small decision store: the default (1,000,000 entries) costs ~0.5 s of lru-cache allocation per edge.
const start = (): Promise<Stack> => startStack({ auth: { maxEntries: 10_000 } });

/** Default proxy.maxHeaderBytes (16 KiB). */
const MAX_HEADER_BYTES = 16 * 1024;

function only(x: RawExchange): RawResponse {
  expect(x.responses, `responses (received: ${JSON.stringify(x.received.toString('latin1').slice(0, 300))})`).toHaveLength(1);
  return x.responses[0]!;
}

function json(r: RawResponse): unknown {
  expect(r.headers['content-type']).toBe('application/json');
  return JSON.parse(r.body.toString('utf8'));
}

/** One refusal, the connection closed after it, and nobody behind the edge asked. */
function expectRefusedAndClosed(stack: Stack, x: RawExchange, status: number, body: unknown): void {
  const r = only(x);
  expect(r.status).toBe(status);
  expect(json(r)).toEqual(body);
  expect(r.headers['connection']).toBe('close');
  expect(x.closed).toBe(true);
  expect(stack.mw.requests).toEqual([]);
  expect(stack.origin.requests).toEqual([]);
}

const head = (lines: string[]): string => `${lines.join('\r\n')}\r\n\r\n`;

describe('battery: oversized request heads', () => {
  it('a request line longer than proxy.maxHeaderBytes → 431 EDGE_ERR_HEADERS_TOO_LARGE, closed, nothing forwarded', async () => {
    const stack = await start();
    const x = await rawExchange(stack.edge.url, head([`GET /play/ch1/index.m3u8?token=${'a'.repeat(MAX_HEADER_BYTES + 1)} HTTP/1.1`, 'Host: edge']));
    expectRefusedAndClosed(stack, x, 431, { error: 'EDGE_ERR_HEADERS_TOO_LARGE', reason: 'HPE_HEADER_OVERFLOW' });
  });

  it('headers adding up to more than proxy.maxHeaderBytes → 431; one just under the limit is served', async () => {
    const stack = await start();
    const many = Array.from({ length: 40 }, (_, i) => `X-Filler-${i}: ${'b'.repeat(500)}`);
    const x = await rawExchange(stack.edge.url, head(['GET /play/ch1/index.m3u8?token=t HTTP/1.1', 'Host: edge', ...many]));
    expectRefusedAndClosed(stack, x, 431, { error: 'EDGE_ERR_HEADERS_TOO_LARGE', reason: 'HPE_HEADER_OVERFLOW' });

    const fits = await rawExchange(stack.edge.url, head(['GET /play/ch1/index.m3u8?token=t HTTP/1.1', 'Host: edge', 'Connection: close', `X-Big: ${'c'.repeat(MAX_HEADER_BYTES - 1024)}`]));
    expect(only(fits).status).toBe(200);
    expect(stack.mw.requests).toHaveLength(1);
    expect(stack.origin.requests.map((r) => r.url)).toEqual(['/play/ch1/index.m3u8']);
  });
});

describe('battery: control bytes', () => {
  it.each([
    ['NUL', '\x00'],
    ['SOH', '\x01'],
    ['TAB', '\t'],
    ['DEL', '\x7f'],
    ['a raw 8-bit byte', '\xff'],
  ])('%s in the request target → 400 EDGE_ERR_BAD_REQUEST (HPE_INVALID_URL), closed, nothing forwarded', async (_name, byte) => {
    const stack = await start();
    const x = await rawExchange(stack.edge.url, head([`GET /play/ch1/index.m3u8?token=a${byte}b HTTP/1.1`, 'Host: edge']));
    expectRefusedAndClosed(stack, x, 400, { error: 'EDGE_ERR_BAD_REQUEST', reason: 'HPE_INVALID_URL' });
  });

  it.each([
    ['NUL in a value', 'X-A: a\x00b', 'HPE_INVALID_HEADER_TOKEN'],
    ['SOH in a value', 'X-A: a\x01b', 'HPE_INVALID_HEADER_TOKEN'],
    ['DEL in a value', 'X-A: a\x7fb', 'HPE_INVALID_HEADER_TOKEN'],
    ['a control byte in a name', 'X\x01A: a', 'HPE_INVALID_HEADER_TOKEN'],
    ['a bare LF splitting a value (header injection)', 'X-A: a\nX-Injected: b', 'HPE_CR_EXPECTED'],
    ['a bare CR splitting a value', 'X-A: a\rX-Injected: b', 'HPE_LF_EXPECTED'],
    ['obs-fold (a continuation line)', 'X-A: a\r\n b', 'HPE_INVALID_HEADER_TOKEN'],
    ['whitespace before the colon', 'X-A : a', 'HPE_INVALID_HEADER_TOKEN'],
  ])('%s → 400 EDGE_ERR_BAD_REQUEST (%s), closed, nothing forwarded', async (_name, line, reason) => {
    const stack = await start();
    const x = await rawExchange(stack.edge.url, head(['GET /play/ch1/index.m3u8?token=t HTTP/1.1', 'Host: edge', line]));
    expectRefusedAndClosed(stack, x, 400, { error: 'EDGE_ERR_BAD_REQUEST', reason });
  });

  it('HTAB and 8-bit bytes inside a header value are legal (RFC 9110 §5.5): served', async () => {
    const stack = await start();
    const x = await rawExchange(stack.edge.url, head(['GET /play/ch1/index.m3u8?token=t HTTP/1.1', 'Host: edge', 'Connection: close', 'User-Agent: player\t1.0 \xe9']));
    expect(only(x).status).toBe(200);
    expect(stack.mw.requests).toHaveLength(1);
  });
});

describe('battery: request smuggling', () => {
  it('Content-Length and Transfer-Encoding together → 400 (HPE_INVALID_TRANSFER_ENCODING), closed, the smuggled request never reaches the origin', async () => {
    const stack = await start();
    const smuggled = head(['GET /play/ch1/v1/seg-9.ts?token=t HTTP/1.1', 'Host: edge']);
    const x = await rawExchange(stack.edge.url, head(['GET /play/ch1/index.m3u8?token=t HTTP/1.1', 'Host: edge', `Content-Length: ${smuggled.length + 5}`, 'Transfer-Encoding: chunked']) + `0\r\n\r\n${smuggled}`);
    expectRefusedAndClosed(stack, x, 400, { error: 'EDGE_ERR_BAD_REQUEST', reason: 'HPE_INVALID_TRANSFER_ENCODING' });
  });

  it.each([
    ['two different', ['Content-Length: 4', 'Content-Length: 50']],
    ['two equal', ['Content-Length: 4', 'Content-Length: 4']],
    ['a list', ['Content-Length: 4, 4']],
  ])('%s Content-Length headers → 400 (HPE_UNEXPECTED_CONTENT_LENGTH), closed, nothing forwarded', async (_name, lengths) => {
    const stack = await start();
    const x = await rawExchange(stack.edge.url, head(['GET /play/ch1/index.m3u8?token=t HTTP/1.1', 'Host: edge', ...lengths]) + 'abcd' + head(['GET /play/ch1/v1/seg-9.ts HTTP/1.1', 'Host: edge']));
    const r = only(x);
    expect(r.status).toBe(400);
    expect((json(r) as { error: string }).error).toBe('EDGE_ERR_BAD_REQUEST');
    expect(['HPE_UNEXPECTED_CONTENT_LENGTH', 'HPE_INVALID_CONTENT_LENGTH']).toContain((json(r) as { reason: string }).reason);
    expect(x.closed).toBe(true);
    expect(stack.mw.requests).toEqual([]);
    expect(stack.origin.requests).toEqual([]);
  });

  it.each([
    ['chunked', 'Transfer-Encoding: chunked', '5\r\nabcde\r\n0\r\n\r\n'],
    ['gzip (not chunked: Node fails on it only after the head)', 'Transfer-Encoding: gzip', 'abcde'],
    ['chunked with a broken chunk size', 'Transfer-Encoding: chunked', 'zz\r\nabc\r\n'],
    ['chunked, obfuscated case', 'transfer-ENCODING: Chunked', '0\r\n\r\n'],
  ])('a GET with Transfer-Encoding: %s → one 400 "carries no body", closed, nothing forwarded', async (_name, te, body) => {
    const stack = await start();
    const x = await rawExchange(stack.edge.url, head(['GET /play/ch1/index.m3u8?token=t HTTP/1.1', 'Host: edge', te]) + body + head(['GET /play/ch1/v1/seg-9.ts?token=t HTTP/1.1', 'Host: edge']));
    expectRefusedAndClosed(stack, x, 400, { error: 'EDGE_ERR_BAD_REQUEST', reason: 'a GET or HEAD carries no body (Transfer-Encoding)' });
  });

  it('a GET with a Content-Length body that looks like a request: the body is discarded, the next pipelined request is served, the origin never sees the smuggled one', async () => {
    const stack = await start();
    const smuggled = head(['GET /play/ch1/v1/seg-1.ts?token=t HTTP/1.1', 'Host: edge']);
    const x = await rawExchange(
      stack.edge.url,
      head(['GET /play/ch1/index.m3u8?token=t HTTP/1.1', 'Host: edge', `Content-Length: ${smuggled.length}`]) + smuggled + head(['GET /play/ch1/v1/seg-2.ts?token=t HTTP/1.1', 'Host: edge', 'Connection: close']),
      { timeoutMs: 3000 },
    );
    expect(x.responses.map((r) => r.status)).toEqual([200, 200]);
    expect(x.responses[0]!.body.toString('utf8')).toContain('#EXTM3U');
    expect(x.responses[1]!.body.equals(stack.origin.expectedBytes('/play/ch1/v1/seg-2.ts'))).toBe(true);
    expect(x.closed).toBe(true);
    expect(stack.origin.requests.map((r) => r.url)).toEqual(['/play/ch1/index.m3u8', '/play/ch1/v1/seg-2.ts']);
    // No body and no body framing goes upstream.
    for (const r of stack.origin.requests) {
      expect(r.headers['content-length']).toBeUndefined();
      expect(r.headers['transfer-encoding']).toBeUndefined();
    }
    expect(stack.mw.requests).toHaveLength(1);
  });
});

describe('battery: absolute-form, CONNECT and other targets that are not a path', () => {
  it.each([
    ['absolute-form to another host', 'GET http://evil.example/play/ch1/index.m3u8?token=t HTTP/1.1', 'evil.example'],
    ['absolute-form naming the origin', 'GET http://127.0.0.1:1/play/ch1/index.m3u8?token=t HTTP/1.1', '127.0.0.1:1'],
    ['asterisk-form', 'OPTIONS * HTTP/1.1', 'edge'],
  ])('%s → 400 EDGE_ERR_BAD_REQUEST "request target must be a path"; the connection stays usable', async (_name, line, host) => {
    const stack = await start();
    const x = await rawExchange(stack.edge.url, head([line, `Host: ${host}`]) + head(['GET /play/ch1/v1/seg-1.ts?token=t HTTP/1.1', 'Host: edge', 'Connection: close']), { timeoutMs: 3000 });
    expect(x.responses.map((r) => r.status)).toEqual([400, 200]);
    expect(json(x.responses[0]!)).toEqual({ error: 'EDGE_ERR_BAD_REQUEST', reason: 'request target must be a path' });
    expect(stack.origin.requests.map((r) => r.url)).toEqual(['/play/ch1/v1/seg-1.ts']);
    expect(stack.mw.requests).toHaveLength(1);
  });

  it('CONNECT host:443 → 405 EDGE_ERR_METHOD_NOT_ALLOWED with Allow: GET, HEAD, closed; no tunnel is opened', async () => {
    const stack = await start();
    const x = await rawExchange(stack.edge.url, head(['CONNECT evil.example:443 HTTP/1.1', 'Host: evil.example:443']) + '\x16\x03\x01tls-bytes');
    expectRefusedAndClosed(stack, x, 405, { error: 'EDGE_ERR_METHOD_NOT_ALLOWED', reason: 'CONNECT is not served: the edge is no proxy' });
    expect(only(x).headers['allow']).toBe('GET, HEAD');
  });

  it('CONNECT to the origin itself opens no connection to it', async () => {
    const stack = await start();
    const before = stack.origin.activeConnections();
    const x = await rawExchange(stack.edge.url, head([`CONNECT 127.0.0.1:${stack.origin.port} HTTP/1.1`, `Host: 127.0.0.1:${stack.origin.port}`]) + head(['GET /play/ch1/v1/seg-1.ts HTTP/1.1', 'Host: x']));
    expectRefusedAndClosed(stack, x, 405, { error: 'EDGE_ERR_METHOD_NOT_ALLOWED', reason: 'CONNECT is not served: the edge is no proxy' });
    expect(stack.origin.activeConnections()).toBe(before);
  });

  it('Upgrade: websocket is not honoured: a plain 200, and neither Upgrade nor Connection reaches the origin', async () => {
    const stack = await start();
    const x = await rawExchange(stack.edge.url, head(['GET /play/ch1/v1/seg-1.ts?token=t HTTP/1.1', 'Host: edge', 'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13']), { responses: 1 });
    expect(only(x).status).toBe(200);
    expect(stack.origin.requests).toHaveLength(1);
    expect(stack.origin.requests[0]!.headers['upgrade']).toBeUndefined();
    expect(stack.origin.requests[0]!.headers['connection']).not.toMatch(/upgrade/i);
  });

  it('an HTTP/2 preface, a TLS ClientHello and a request without Host get a 400 and a close', async () => {
    const stack = await start();
    const h2 = await rawExchange(stack.edge.url, 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
    expectRefusedAndClosed(stack, h2, 400, { error: 'EDGE_ERR_BAD_REQUEST', reason: 'HPE_PAUSED_H2_UPGRADE' });
    const tls = await rawExchange(stack.edge.url, Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]));
    expectRefusedAndClosed(stack, tls, 400, { error: 'EDGE_ERR_BAD_REQUEST', reason: 'HPE_INVALID_METHOD' });
    // HTTP/1.1 requires Host (RFC 9112 §3.2): Node's own 400, before the edge's handler runs.
    const noHost = await rawExchange(stack.edge.url, head(['GET /play/ch1/index.m3u8?token=t HTTP/1.1']));
    expect(only(noHost).status).toBe(400);
    expect(noHost.closed).toBe(true);
    expect(stack.mw.requests).toEqual([]);
    expect(stack.origin.requests).toEqual([]);
  });
});
