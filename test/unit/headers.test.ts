import fc from 'fast-check';
import { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { clientResponseHeaders, hasDuplicateHost, RequestHead, upstreamRequestHeaders } from '../../src/proxy/headers.js';

const pairs = (flat: string[]): [string, string][] => flat.flatMap((v, i) => (i % 2 === 0 ? [[v, flat[i + 1]!] as [string, string]] : []));

describe('upstreamRequestHeaders', () => {
  const raw = [
    'Host', 'live.example.com',
    'User-Agent', 'VLC/3.0',
    'Range', 'bytes=0-99',
    'Connection', 'keep-alive, X-Hop',
    'X-Hop', 'secret',
    'Keep-Alive', 'timeout=5',
    'TE', 'trailers',
    'Upgrade', 'h2c',
    'Accept-Encoding', 'gzip',
    'X-Forwarded-For', '6.6.6.6',
    'X-Forwarded-Proto', 'https',
  ];

  it('sets Host to the upstream, drops hop-by-hop and Connection-listed headers, keeps the rest', () => {
    const h = new Map(pairs(upstreamRequestHeaders(raw, { upstreamHost: 'astra:8000', clientIp: '198.51.100.1', peerIp: '198.51.100.1', fromTrustedProxy: false })));
    expect(h.get('host')).toBe('astra:8000');
    expect(h.get('user-agent')).toBe('VLC/3.0');
    expect(h.get('range')).toBe('bytes=0-99');
    for (const gone of ['connection', 'x-hop', 'keep-alive', 'te', 'upgrade', 'accept-encoding']) expect(h.has(gone), gone).toBe(false);
    // An untrusted client's own forwarding headers are not passed on.
    expect(h.get('x-forwarded-for')).toBe('198.51.100.1');
    expect(h.get('x-forwarded-proto')).toBe('http');
    expect(h.get('x-forwarded-host')).toBe('live.example.com');
    expect(h.get('x-real-ip')).toBe('198.51.100.1');
  });

  it('drops Range and If-Range for playlists, which are rewritten whole', () => {
    const h = new Map(pairs(upstreamRequestHeaders([...raw, 'If-Range', '"e"'], { upstreamHost: 'a', clientIp: '1.1.1.1', peerIp: '1.1.1.1', fromTrustedProxy: false, dropRange: true })));
    expect(h.has('range')).toBe(false);
    expect(h.has('if-range')).toBe(false);
  });

  it("never passes on a client's Forwarded, X-Forwarded-* or URL-override headers", () => {
    const withForwarding = [
      ...raw,
      'Forwarded', 'for=6.6.6.6;host=admin.internal;proto=https',
      'X-Forwarded-Port', '443',
      'X-Forwarded-Prefix', '/admin',
      'x-forwarded-server', 'x',
      'X-Original-URL', '/play/b/index.m3u8',
      'X-Rewrite-URL', '/secret',
      'X-Forwardedness', 'kept: not a forwarding header',
    ];
    for (const fromTrustedProxy of [false, true]) {
      const out = pairs(upstreamRequestHeaders(withForwarding, { upstreamHost: 'a', clientIp: '1.1.1.1', peerIp: fromTrustedProxy ? '10.0.0.2' : '1.1.1.1', fromTrustedProxy }));
      const names = out.map(([n]) => n);
      for (const gone of ['forwarded', 'x-forwarded-port', 'x-forwarded-prefix', 'x-forwarded-server', 'x-original-url', 'x-rewrite-url']) expect(names, gone).not.toContain(gone);
      // Ours, once each.
      for (const ours of ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host']) expect(names.filter((n) => n === ours), ours).toHaveLength(1);
      expect(names).toContain('x-forwardedness');
    }
  });

  it('extends the chain of a trusted proxy', () => {
    const h = new Map(pairs(upstreamRequestHeaders(raw, { upstreamHost: 'astra:8000', clientIp: '6.6.6.6', peerIp: '10.0.0.2', fromTrustedProxy: true })));
    expect(h.get('x-forwarded-for')).toBe('6.6.6.6, 10.0.0.2');
    expect(h.get('x-forwarded-proto')).toBe('https');
    expect(h.get('x-real-ip')).toBe('6.6.6.6');
  });
});

describe('hasDuplicateHost', () => {
  it('finds a second Host whatever its case, and only Host', () => {
    expect(hasDuplicateHost(['Host', 'a', 'User-Agent', 'x'])).toBe(false);
    expect(hasDuplicateHost([])).toBe(false);
    expect(hasDuplicateHost(['Host', 'a', 'hOST', 'b'])).toBe(true);
    expect(hasDuplicateHost(['host', 'a', 'X', '1', 'HOST', 'a'])).toBe(true);
    expect(hasDuplicateHost(['Host', 'a', 'Hosts', 'b', 'Ghost', 'c', 'X-Host', 'd'])).toBe(false);
  });
});

describe('RequestHead', () => {
  /** What Node's own parsing gives for a raw header list (req.headers, built the way the server builds it). */
  function nodeView(raw: string[]): Record<string, string | string[] | undefined> {
    const message = new IncomingMessage(new Socket());
    (message as unknown as { _addHeaderLines(h: string[], n: number): void })._addHeaderLines(raw, raw.length);
    return message.headers;
  }

  it('reads Host, User-Agent and Referer as req.headers does, and flags a second Host and a Transfer-Encoding, in any letter case', () => {
    const name = fc.constantFrom('Host', 'host', 'HOST', 'hOsT', 'User-Agent', 'user-agent', 'USER-AGENT', 'Referer', 'referer', 'Transfer-Encoding', 'transfer-encoding', 'Hosts', 'Ghost', 'X-Host', 'Referrer', 'User-Agents', 'Accept', 'Range');
    const rawList = fc.array(fc.tuple(name, fc.string({ maxLength: 8 })), { maxLength: 8 }).map((pairs) => pairs.flat());
    fc.assert(
      fc.property(rawList, (raw) => {
        const head = new RequestHead().read(raw);
        const node = nodeView(raw);
        expect(head.host).toBe(node.host ?? '');
        expect(head.userAgent).toBe(node['user-agent'] ?? '');
        expect(head.referer).toBe(node.referer ?? '');
        expect(head.duplicateHost).toBe(hasDuplicateHost(raw));
        expect(head.framesBody).toBe(raw.some((v, i) => i % 2 === 0 && v.toLowerCase() === 'transfer-encoding'));
      }),
      { numRuns: 500 },
    );
  });

  it('is refilled by each read: nothing of a previous request stays', () => {
    const head = new RequestHead();
    head.read(['Host', 'a', 'host', 'b', 'User-Agent', 'ua', 'Referer', 'r', 'Transfer-Encoding', 'chunked']);
    expect(head).toMatchObject({ duplicateHost: true, framesBody: true, host: 'a', userAgent: 'ua', referer: 'r' });
    head.read(['Host', 'c']);
    expect(head).toMatchObject({ duplicateHost: false, framesBody: false, host: 'c', userAgent: '', referer: '' });
  });
});

describe('clientResponseHeaders', () => {
  it('drops hop-by-hop response headers and the ones asked for', () => {
    const out = clientResponseHeaders(
      ['Content-Type', 'video/mp2t', 'Transfer-Encoding', 'chunked', 'Connection', 'close, X-Private', 'X-Private', '1', 'ETag', '"a"', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2'],
      new Set(['etag']),
    );
    expect(out).toEqual(['Content-Type', 'video/mp2t', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2']);
  });
});
