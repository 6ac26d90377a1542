// Self-tests for test/helpers/origin.ts (the fake Astra origin) and its building blocks.
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { checkSyntheticTs, expectedBytes, syntheticTsPackets } from '../helpers/bytes.js';
import { HttpClientError, httpRequest, openStream } from '../helpers/client.js';
import { startTestOrigin } from '../helpers/origin.js';
import type { TestOrigin, TestOriginOptions } from '../helpers/origin.js';
import { M3U8_CONTENT_TYPE, parseMediaSegments, playlistNumberTag } from '../helpers/playlist.js';
import { waitFor } from '../helpers/wait.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

let origin: TestOrigin | null = null;
async function start(opts?: TestOriginOptions): Promise<TestOrigin> {
  origin = await startTestOrigin(opts);
  return origin;
}
afterEach(async () => {
  await origin?.close();
  origin = null;
});

/** URI attribute values and plain URI lines of a playlist. */
function uris(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (!line.startsWith('#')) out.push(line);
    for (const m of line.matchAll(/URI="([^"]+)"/g)) if (m[1] !== undefined) out.push(m[1]);
  }
  return out;
}

describe('expectedBytes / synthetic TS', () => {
  it('is deterministic, path-dependent and sized', () => {
    expect(sha(expectedBytes('/play/a/seg-1.ts'))).toBe(sha(expectedBytes('/play/a/seg-1.ts')));
    expect(sha(expectedBytes('/play/a/seg-1.ts'))).not.toBe(sha(expectedBytes('/play/a/seg-2.ts')));
    expect(expectedBytes('/x', 1001)).toHaveLength(1001);
    expect(expectedBytes('/x', 1001).equals(expectedBytes('/x', 2000).subarray(0, 1001))).toBe(true);
  });

  it('generates continuous packets and detects a gap', () => {
    const a = Buffer.concat([syntheticTsPackets(0, 7), syntheticTsPackets(7, 7)]);
    expect(checkSyntheticTs(a)).toEqual({ packets: 14, firstBadPacket: -1 });
    const gap = Buffer.concat([syntheticTsPackets(0, 7), syntheticTsPackets(8, 7)]);
    expect(checkSyntheticTs(gap).firstBadPacket).toBe(7);
  });
});

describe('startTestOrigin: HLS', () => {
  it('serves a master playlist with mixed URI styles (GET and HEAD)', async () => {
    const o = await start();
    const r = await httpRequest(`${o.url}/play/ch1/index.m3u8`);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe(M3U8_CONTENT_TYPE);
    const text = r.body.toString();
    expect(text.startsWith('#EXTM3U\n')).toBe(true);
    expect(uris(text)).toEqual(['audio/index.m3u8', 'v1/index.m3u8', '/play/ch1/v2/index.m3u8?foo=bar', 'iframes.m3u8']);
    expect(text).toMatch(/^#EXT-X-MEDIA:TYPE=AUDIO,.*URI="audio\/index.m3u8"$/m);
    expect(text).toMatch(/^#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=\d+,.*URI="iframes.m3u8"$/m);
    const head = await httpRequest(`${o.url}/play/ch1/index.m3u8`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(String(r.body.length));
    expect(head.body).toHaveLength(0);
  });

  it('serves live media playlists whose sequence follows the clock, with all three URI styles', async () => {
    let now = 1_000_000;
    const o = await start({ now: () => now, targetDurationS: 2 });
    for (const p of ['/play/ch1/v1/index.m3u8', '/play/ch1/v2/index.m3u8?foo=bar', '/play/ch1/audio/index.m3u8', '/play/ch1/iframes.m3u8']) {
      const r = await httpRequest(o.url + p);
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toBe(M3U8_CONTENT_TYPE);
      expect(r.body.toString()).not.toContain('#EXT-X-ENDLIST');
    }
    const url = `${o.url}/play/ch1/v1/index.m3u8`;
    const first = (await httpRequest(url)).body.toString();
    expect(playlistNumberTag(first, '#EXT-X-MEDIA-SEQUENCE')).toBe(0);
    expect(playlistNumberTag(first, '#EXT-X-TARGETDURATION')).toBe(2);
    expect(first).toContain('#EXT-X-KEY:METHOD=AES-128,URI="key.bin"');
    expect(first).toContain('#EXT-X-MAP:URI="init.mp4"');
    const segs = parseMediaSegments(first).map((s) => s.uri);
    expect(segs).toEqual(['seg-0.ts', '/play/ch1/v1/seg-1.ts', `${o.url}/play/ch1/v1/seg-2.ts`]);
    now += 4_100;
    const later = (await httpRequest(url)).body.toString();
    expect(playlistNumberTag(later, '#EXT-X-MEDIA-SEQUENCE')).toBe(2);
    expect(o.mediaSequence()).toBe(2);
    expect(parseMediaSegments(later).map((s) => new URL(s.uri, url).pathname)).toEqual(['/play/ch1/v1/seg-2.ts', '/play/ch1/v1/seg-3.ts', '/play/ch1/v1/seg-4.ts']);
  });

  it('uses the real clock by default and honours key/map/window options', async () => {
    const o = await start({ epochMs: Date.now() - 10_500, key: false, map: false, windowSize: 6 });
    const text = (await httpRequest(`${o.url}/play/x/v1/index.m3u8`)).body.toString();
    expect(playlistNumberTag(text, '#EXT-X-MEDIA-SEQUENCE')).toBe(5);
    expect(text).not.toContain('EXT-X-KEY');
    expect(text).not.toContain('EXT-X-MAP');
    expect(parseMediaSegments(text)).toHaveLength(6);
  });

  it('serves deterministic segment bytes for every URI style, key.bin and init.mp4', async () => {
    const o = await start({ segmentBytes: 10_000 });
    const url = `${o.url}/play/ch1/v1/index.m3u8`;
    const text = (await httpRequest(url)).body.toString();
    for (const u of uris(text)) {
      const abs = new URL(u, url);
      const r = await httpRequest(abs.href);
      expect(r.status).toBe(200);
      const expected = abs.pathname.endsWith('key.bin') ? expectedBytes(abs.pathname, 16) : expectedBytes(abs.pathname, 10_000);
      expect(sha(r.body)).toBe(sha(expected));
      expect(sha(o.expectedBytes(abs.pathname))).toBe(sha(expected));
    }
    const seg = await httpRequest(`${o.url}/play/ch1/v1/seg-9.ts?token=abc`);
    expect(seg.headers['content-type']).toBe('video/mp2t');
    expect(seg.body.equals(expectedBytes('/play/ch1/v1/seg-9.ts', 10_000))).toBe(true);
  });

  it('supports byte ranges and HEAD on files', async () => {
    const o = await start();
    const p = '/play/ch1/v1/seg-3.ts';
    const full = expectedBytes(p);
    const r = await httpRequest(o.url + p, { headers: { Range: 'bytes=100-199' } });
    expect(r.status).toBe(206);
    expect(r.headers['content-range']).toBe(`bytes 100-199/${full.length}`);
    expect(r.body.equals(full.subarray(100, 200))).toBe(true);
    const open = await httpRequest(o.url + p, { headers: { Range: 'bytes=65000-' } });
    expect(open.body.equals(full.subarray(65000))).toBe(true);
    const suffix = await httpRequest(o.url + p, { headers: { Range: 'bytes=-10' } });
    expect(suffix.headers['content-range']).toBe(`bytes ${full.length - 10}-${full.length - 1}/${full.length}`);
    expect(suffix.body.equals(full.subarray(-10))).toBe(true);
    const bad = await httpRequest(o.url + p, { headers: { Range: `bytes=${full.length}-` } });
    expect(bad.status).toBe(416);
    expect(bad.headers['content-range']).toBe(`bytes */${full.length}`);
    const head = await httpRequest(o.url + p, { method: 'HEAD' });
    expect(head.headers['content-length']).toBe(String(full.length));
    expect(head.headers['accept-ranges']).toBe('bytes');
    expect(head.body).toHaveLength(0);
  });

  it('answers 404 outside /play and 405 for other methods, and records requests', async () => {
    const o = await start();
    expect((await httpRequest(`${o.url}/nope`)).status).toBe(404);
    expect((await httpRequest(`${o.url}/play/ch1/v1/`)).status).toBe(404);
    expect((await httpRequest(`${o.url}/play/ch1/v1/seg-1.ts`, { method: 'POST' })).status).toBe(405);
    await httpRequest(`${o.url}/play/ch1/v1/seg-1.ts?a=%2F&a=2`, { headers: { 'X-Test': 'yes' } });
    const rec = o.requests.at(-1);
    expect(rec).toMatchObject({ method: 'GET', url: '/play/ch1/v1/seg-1.ts?a=%2F&a=2', path: '/play/ch1/v1/seg-1.ts', remoteAddress: '127.0.0.1' });
    expect(rec?.headers['x-test']).toBe('yes');
    expect(o.requests).toHaveLength(4);
    o.reset();
    expect(o.requests).toHaveLength(0);
  });
});

describe('startTestOrigin: continuous MPEG-TS', () => {
  it('streams continuous 188-byte packets and records the client closing', async () => {
    const o = await start({ tsBytesPerSecond: 0 });
    const s = await openStream(`${o.url}/play/ch1`);
    expect(s.status).toBe(200);
    expect(s.headers['content-type']).toBe('video/mp2t');
    expect(s.headers['content-length']).toBeUndefined();
    expect(s.headers['transfer-encoding']).toBeUndefined();
    expect(s.headers.connection).toBe('close');
    const data = await s.readAtLeast(200 * 188);
    expect(checkSyntheticTs(data).firstBadPacket).toBe(-1);
    expect(o.streams).toHaveLength(1);
    const rec = o.streams[0];
    expect(rec?.closedAt).toBeNull();
    expect(o.activeConnections()).toBe(1);
    s.destroy();
    await waitFor(() => rec?.closedAt !== null);
    expect(rec).toMatchObject({ channel: 'ch1', url: '/play/ch1', closedByClient: true, endReason: 'client' });
    expect(rec?.bytesWritten).toBeGreaterThanOrEqual(s.received());
    await waitFor(() => o.activeConnections() === 0);
  });

  it('paces output at tsBytesPerSecond', async () => {
    const o = await start({ tsBytesPerSecond: 200_000 });
    const s = await openStream(`${o.url}/play/ch1`);
    await new Promise((r) => setTimeout(r, 500));
    const got = s.received();
    s.destroy();
    expect(got).toBeGreaterThan(50_000);
    expect(got).toBeLessThan(160_000);
  });

  it('respects backpressure from a client that stops reading', async () => {
    const o = await start({ tsBytesPerSecond: 0, tsChunkPackets: 70 });
    const s = await openStream(`${o.url}/play/ch1`);
    s.pause();
    const rec = await waitFor(() => (o.streams[0]?.drainWaits ? o.streams[0] : null), 5000);
    const before = rec.bytesWritten;
    await new Promise((r) => setTimeout(r, 200));
    expect(rec.bytesWritten - before).toBeLessThan(2 * 70 * 188); // stuck waiting for drain
    expect(rec.bytesWritten).toBeLessThan(16 * 1024 * 1024); // buffers stayed bounded
    s.resume();
    await waitFor(() => rec.bytesWritten > before + 100_000, 5000);
    s.destroy();
  });

  it('ends a stream itself after tsMaxDurationMs, supports chunked framing and HEAD', async () => {
    const o = await start({ tsMaxDurationMs: 200, tsFraming: 'chunked' });
    const s = await openStream(`${o.url}/play/ch2`);
    expect(s.headers['transfer-encoding']).toBe('chunked');
    await waitFor(() => s.ended(), 2000);
    expect(o.streams[0]).toMatchObject({ endReason: 'max-duration', closedByClient: false });
    const head = await httpRequest(`${o.url}/play/ch2`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers['content-type']).toBe('video/mp2t');
    expect(o.streams).toHaveLength(1);
  });

  it('close() destroys open streams, is idempotent and frees every socket', async () => {
    const o = await start();
    const s = await openStream(`${o.url}/play/ch1`);
    await s.readAtLeast(1000);
    await Promise.all([o.close(), o.close()]);
    await o.close();
    await waitFor(() => s.ended());
    expect(o.streams[0]?.endReason).toBe('shutdown');
    expect(o.activeConnections()).toBe(0);
  });
});

describe('startTestOrigin: faults', () => {
  const seg = '/play/ch1/v1/seg-1.ts';

  it('delays headers', async () => {
    const o = await start();
    o.setFault(seg, { delayHeadersMs: 300 });
    const t0 = Date.now();
    expect((await httpRequest(o.url + seg)).status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
  });

  it('resets before headers', async () => {
    const o = await start();
    o.setFault(/seg-1\.ts/, { resetBeforeHeaders: true });
    const err = await httpRequest(o.url + seg).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HttpClientError);
    expect((err as HttpClientError).status).toBeUndefined();
  });

  it('resets mid-body after sending part of the body', async () => {
    const o = await start();
    o.setFault((r) => r.path === seg, { resetMidBody: 10_000 });
    const err = await httpRequest(o.url + seg).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HttpClientError);
    const e = err as HttpClientError;
    expect(e.status).toBe(200);
    expect(e.received.equals(expectedBytes(seg).subarray(0, 10_000))).toBe(true);
  });

  it('resets a TS stream mid-body', async () => {
    const o = await start({ tsBytesPerSecond: 0 });
    o.setFault('/play/ch1', { resetMidBody: 188 * 70 });
    const s = await openStream(`${o.url}/play/ch1`);
    await waitFor(() => s.ended());
    expect(s.received()).toBe(188 * 70);
    expect(o.streams[0]?.endReason).toBe('fault');
  });

  it('overrides the status a limited number of times, and faults can be removed', async () => {
    const o = await start();
    o.setFault(seg, { status: 503, headers: { 'Retry-After': '1' }, times: 1 });
    const r1 = await httpRequest(o.url + seg);
    expect(r1.status).toBe(503);
    expect(r1.headers['retry-after']).toBe('1');
    expect((await httpRequest(o.url + seg)).status).toBe(200);
    const remove = o.setFault(seg, { status: 404 });
    expect((await httpRequest(o.url + seg)).status).toBe(404);
    remove();
    expect((await httpRequest(o.url + seg)).status).toBe(200);
    o.setFault(seg, { status: 500 });
    o.clearFaults();
    expect((await httpRequest(o.url + seg)).status).toBe(200);
  });

  it('accepts faults in the options', async () => {
    const o = await start({ faults: [{ match: '/play/ch1/index.m3u8', fault: { status: 502 } }] });
    expect((await httpRequest(`${o.url}/play/ch1/index.m3u8`)).status).toBe(502);
  });
});
