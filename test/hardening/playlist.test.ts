// Hardening #14, playlists: regression tests through a real stack (origin serving crafted
// playlists → edge → player requests), each named after what broke.
import { describe, expect, it } from 'vitest';
import { httpRequest } from '../helpers/client.js';
import { useStack } from '../helpers/stack.js';

const start = useStack();
const MARKER = /edge_session=([A-Za-z0-9_-]{22})/;

/** The crafted playlist `body` served at /play/ch1/index.m3u8, fetched through the edge as a player would. */
async function throughEdge(body: string | Buffer): Promise<{ stack: Awaited<ReturnType<typeof start>>; text: string; bytes: Buffer; sid: string; url: string }> {
  const stack = await start();
  stack.origin.setFault('/play/ch1/index.m3u8', { body });
  const url = `${stack.edge.url}/play/ch1/index.m3u8?token=t`;
  const res = await httpRequest(url);
  expect(res.status).toBe(200);
  const text = res.body.toString('utf8');
  const sid = MARKER.exec(text)?.[1];
  expect(sid, text).toBeDefined();
  return { stack, text, bytes: res.body, sid: sid!, url };
}

/** The `edge_session` values a URL parser finds in `ref`, resolved against the playlist's URL. */
function markers(ref: string, playlistUrl: string): string[] {
  return new URL(ref, playlistUrl).searchParams.getAll('edge_session');
}

describe('playlists (hardening #14)', () => {
  it('the marker was appended inside an #EXTINF title that contains URI="…"', async () => {
    const { stack, text, sid, url } = await throughEdge(['#EXTM3U', '#EXT-X-TARGETDURATION:2', '#EXTINF:2.000,News URI="seg-0.ts"', 'seg-1.ts', '#EXTINF:2.000 tvg-logo="l.png" URI="x.ts",Sport', 'seg-2.ts', ''].join('\n'));
    const lines = text.split('\n');
    expect(lines[2]).toBe('#EXTINF:2.000,News URI="seg-0.ts"');
    expect(lines[4]).toBe('#EXTINF:2.000 tvg-logo="l.png" URI="x.ts",Sport');
    expect(lines[3]).toBe(`seg-1.ts?edge_session=${sid}`);
    expect(lines[5]).toBe(`seg-2.ts?edge_session=${sid}`);
    expect(text.match(/edge_session=/g)).toHaveLength(2);
    // The segment the player follows belongs to the session: no second middleware call.
    const seg = await httpRequest(new URL(lines[3]!, url).href);
    expect(seg.status).toBe(200);
    expect(stack.mw.requests).toHaveLength(1);
    expect(stack.origin.requests.map((r) => r.url)).toEqual(['/play/ch1/index.m3u8', '/play/ch1/seg-1.ts']);
  });

  it('URI="…" inside another quoted attribute value was taken for the URI, and the real one was left unmarked', async () => {
    const { stack, text, sid, url } = await throughEdge(
      ['#EXTM3U', '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="en,URI=",URI="audio/en.m3u8"', '#EXT-X-STREAM-INF:BANDWIDTH=800000,AUDIO="aud",URI="not-an-attribute.m3u8"', 'v1/index.m3u8', '#EXT-X-VENDOR-TAG:URI="unknown-tag.m3u8"', '# comment URI="c.m3u8"', ''].join('\r\n'),
    );
    expect(text.split('\r\n')).toEqual([
      '#EXTM3U',
      `#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="en,URI=",URI="audio/en.m3u8?edge_session=${sid}"`,
      '#EXT-X-STREAM-INF:BANDWIDTH=800000,AUDIO="aud",URI="not-an-attribute.m3u8"',
      `v1/index.m3u8?edge_session=${sid}`,
      '#EXT-X-VENDOR-TAG:URI="unknown-tag.m3u8"',
      '# comment URI="c.m3u8"',
      '',
    ]);
    const audio = await httpRequest(new URL(`audio/en.m3u8?edge_session=${sid}`, url).href);
    expect(audio.status).toBe(200);
    expect(stack.mw.requests).toHaveLength(1);
  });

  it('an origin URI that already carried the session parameter kept its value first, so the edge took the player for a new session', async () => {
    const { stack, text, sid, url } = await throughEdge(
      ['#EXTM3U', '#EXT-X-MAP:URI="init.mp4?edge_session=STALE"', '#EXTINF:2.000,', 'seg-1.ts?edge_session=STALE&x=1', '#EXTINF:2.000,', 'seg-2.ts?%65dge_session=STALE&edge%5Fsession=STALE2', '#EXTINF:2.000,', 'seg-3.ts?EDGE_SESSION=origin-own', ''].join('\n'),
    );
    const lines = text.split('\n');
    expect(lines[1]).toBe(`#EXT-X-MAP:URI="init.mp4?edge_session=${sid}"`);
    expect(lines[3]).toBe(`seg-1.ts?x=1&edge_session=${sid}`);
    expect(lines[5]).toBe(`seg-2.ts?edge_session=${sid}`);
    // Another letter case is another parameter to the origin (and to the edge): it stays.
    expect(lines[7]).toBe(`seg-3.ts?EDGE_SESSION=origin-own&edge_session=${sid}`);
    for (const ref of [lines[3]!, lines[5]!, lines[7]!]) expect(markers(ref, url)).toEqual([sid]);

    stack.origin.reset();
    for (const ref of [lines[3]!, lines[5]!, lines[7]!]) expect((await httpRequest(new URL(ref, url).href)).status).toBe(200);
    // One session: the middleware was asked once, for the playlist; the marker never reaches the origin.
    expect(stack.mw.requests).toHaveLength(1);
    expect(stack.origin.requests.map((r) => r.url)).toEqual(['/play/ch1/seg-1.ts?x=1', '/play/ch1/seg-2.ts', '/play/ch1/seg-3.ts?EDGE_SESSION=origin-own']);
  });

  it('the session marker was handed to another host (an upstream path starting with //, a host written with backslashes)', async () => {
    const stack = await start();
    const upstream = stack.origin.url;
    stack.origin.setFault('/play/ch1/index.m3u8', {
      body: ['#EXTM3U', '#EXTINF:2,', `${upstream}//evil.example/seg-1.ts`, '#EXTINF:2,', '\\\\evil.example/seg-2.ts', '#EXTINF:2,', '/\\evil.example/seg-3.ts', '#EXTINF:2,', `${upstream}/play/ch1/seg-4.ts`, ''].join('\n'),
    });
    const url = `${stack.edge.url}/play/ch1/index.m3u8?token=t`;
    const text = (await httpRequest(url)).body.toString();
    const uris = text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    expect(uris).toHaveLength(4);
    const edgeHost = new URL(url).host;
    for (const ref of uris) {
      const target = new URL(ref, url);
      // Marked URIs lead to the edge; URIs left alone carry no marker.
      if (target.searchParams.has('edge_session')) expect(target.host, ref).toBe(edgeHost);
      else expect(ref).not.toContain('edge_session');
    }
    const sid = MARKER.exec(text)![1]!;
    expect(uris[0]).toBe(`/.//evil.example/seg-1.ts?edge_session=${sid}`);
    expect(uris[1]).toBe('\\\\evil.example/seg-2.ts');
    expect(uris[2]).toBe('/\\evil.example/seg-3.ts');
    expect(uris[3]).toBe(`/play/ch1/seg-4.ts?edge_session=${sid}`);
  });

  it('bytes that are not UTF-8 (a latin1 channel name) were replaced by U+FFFD', async () => {
    const body = Buffer.concat([Buffer.from('#EXTM3U\n#EXTINF:2,T\xe9l\xe9 Sud\n', 'latin1'), Buffer.from('seg-\xe9.ts\n', 'latin1')]);
    const { bytes, sid } = await throughEdge(body);
    expect(bytes.equals(Buffer.from(`#EXTM3U\n#EXTINF:2,T\xe9l\xe9 Sud\nseg-\xe9.ts?edge_session=${sid}\n`, 'latin1'))).toBe(true);
  });
});
