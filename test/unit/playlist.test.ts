import { describe, expect, it } from 'vitest';
import { isPlaylistBody, rewritePlaylist, rewriteUri } from '../../src/proxy/playlist.js';

const ctx = { upstreamOrigin: 'http://127.0.0.1:8000', param: 'edge_session', sessionId: 'SID' };

describe('rewriteUri', () => {
  it('tags relative and root-relative URIs', () => {
    expect(rewriteUri('seg-1.ts', ctx)).toBe('seg-1.ts?edge_session=SID');
    expect(rewriteUri('../v2/index.m3u8?x=1', ctx)).toBe('../v2/index.m3u8?x=1&edge_session=SID');
    expect(rewriteUri('/play/a/seg.ts', ctx)).toBe('/play/a/seg.ts?edge_session=SID');
  });
  it('makes absolute URIs of the upstream root-relative, with or without the default port', () => {
    expect(rewriteUri('http://127.0.0.1:8000/play/a/seg.ts?k=v', ctx)).toBe('/play/a/seg.ts?k=v&edge_session=SID');
    expect(rewriteUri('HTTP://127.0.0.1:8000/play/a/seg.ts', ctx)).toBe('/play/a/seg.ts?edge_session=SID');
    const c80 = { ...ctx, upstreamOrigin: 'http://astra' };
    expect(rewriteUri('http://astra:80/play/a/seg.ts', c80)).toBe('/play/a/seg.ts?edge_session=SID');
    expect(rewriteUri('//astra/play/a/seg.ts', c80)).toBe('/play/a/seg.ts?edge_session=SID');
  });
  it('leaves other hosts and non-HTTP schemes alone', () => {
    expect(rewriteUri('https://cdn.example.com/seg.ts', ctx)).toBe('https://cdn.example.com/seg.ts');
    expect(rewriteUri('http://127.0.0.1:8001/seg.ts', ctx)).toBe('http://127.0.0.1:8001/seg.ts');
    expect(rewriteUri('skd://key-id', ctx)).toBe('skd://key-id');
    expect(rewriteUri('data:text/plain;base64,AAAA', ctx)).toBe('data:text/plain;base64,AAAA');
  });
});

describe('rewritePlaylist', () => {
  it('rewrites a media playlist: segment lines, EXT-X-KEY and EXT-X-MAP URIs', () => {
    const input = [
      '#EXTM3U',
      '#EXT-X-VERSION:6',
      '#EXT-X-TARGETDURATION:2',
      '#EXT-X-MEDIA-SEQUENCE:41',
      '#EXT-X-KEY:METHOD=AES-128,URI="key.bin",IV=0x0',
      '#EXT-X-MAP:URI="init.mp4"',
      '#EXTINF:2.000,',
      'seg-41.ts',
      '#EXTINF:2.000,',
      '/play/a/seg-42.ts',
      '#EXTINF:2.000,',
      'http://127.0.0.1:8000/play/a/seg-43.ts',
      '',
    ].join('\n');
    expect(rewritePlaylist(input, ctx)).toBe(
      [
        '#EXTM3U',
        '#EXT-X-VERSION:6',
        '#EXT-X-TARGETDURATION:2',
        '#EXT-X-MEDIA-SEQUENCE:41',
        '#EXT-X-KEY:METHOD=AES-128,URI="key.bin?edge_session=SID",IV=0x0',
        '#EXT-X-MAP:URI="init.mp4?edge_session=SID"',
        '#EXTINF:2.000,',
        'seg-41.ts?edge_session=SID',
        '#EXTINF:2.000,',
        '/play/a/seg-42.ts?edge_session=SID',
        '#EXTINF:2.000,',
        '/play/a/seg-43.ts?edge_session=SID',
        '',
      ].join('\n'),
    );
  });

  it('rewrites a master playlist: variants, EXT-X-MEDIA and I-frame URIs; keeps CRLF and comments', () => {
    const input = [
      '#EXTM3U',
      '# a comment with URI="not-a-tag"',
      '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="en",URI="audio/index.m3u8"',
      '#EXT-X-STREAM-INF:BANDWIDTH=800000,AUDIO="aud"',
      'v1/index.m3u8',
      '#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=100000,URI="iframes.m3u8"',
      '#EXT-X-STREAM-INF:BANDWIDTH=1600000',
      '  /play/a/v2/index.m3u8?foo=bar  ',
    ].join('\r\n');
    const out = rewritePlaylist(input, ctx).split('\r\n');
    expect(out[1]).toBe('# a comment with URI="not-a-tag"');
    expect(out[2]).toBe('#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="en",URI="audio/index.m3u8?edge_session=SID"');
    expect(out[4]).toBe('v1/index.m3u8?edge_session=SID');
    expect(out[5]).toBe('#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=100000,URI="iframes.m3u8?edge_session=SID"');
    expect(out[7]).toBe('/play/a/v2/index.m3u8?foo=bar&edge_session=SID');
  });

  it('recognizes playlists by their first line', () => {
    expect(isPlaylistBody('\uFEFF#EXTM3U\n'.slice(1))).toBe(true);
    expect(isPlaylistBody('  \n#EXTM3U\n')).toBe(true);
    expect(isPlaylistBody('<html>')).toBe(false);
  });
});
