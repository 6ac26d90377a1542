import { describe, expect, it } from 'vitest';
import { compilePlaylist, isPlaylistBody, renderPlaylist, rewritePlaylist, rewriteUri } from '../../src/proxy/playlist.js';

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

  it('recognizes playlists by their first line, as text or bytes', () => {
    expect(isPlaylistBody('\uFEFF#EXTM3U\n'.slice(1))).toBe(true);
    expect(isPlaylistBody('  \n#EXTM3U\n')).toBe(true);
    expect(isPlaylistBody('<html>')).toBe(false);
    expect(isPlaylistBody(Buffer.from('\uFEFF\r\n #EXTM3U\n'))).toBe(true);
    expect(isPlaylistBody(Buffer.from('#EXTM3'))).toBe(false);
    expect(isPlaylistBody(Buffer.from('{"#EXTM3U":1}'))).toBe(false);
  });
});

describe('which URIs are rewritten', () => {
  const one = (line: string): string => rewritePlaylist(`#EXTM3U\n${line}\n`, ctx).split('\n')[1]!;

  it('the URI-valued attributes of the RFC 8216bis tags', () => {
    for (const tag of ['EXT-X-KEY', 'EXT-X-SESSION-KEY', 'EXT-X-MAP', 'EXT-X-PART', 'EXT-X-PRELOAD-HINT', 'EXT-X-RENDITION-REPORT', 'EXT-X-MEDIA', 'EXT-X-I-FRAME-STREAM-INF', 'EXT-X-SESSION-DATA']) {
      expect(one(`#${tag}:A=1,URI="u.bin",B="x"`), tag).toBe(`#${tag}:A=1,URI="u.bin?edge_session=SID",B="x"`);
    }
    expect(one('#EXT-X-CONTENT-STEERING:SERVER-URI="steer.json",PATHWAY-ID="CDN-A"')).toBe('#EXT-X-CONTENT-STEERING:SERVER-URI="steer.json?edge_session=SID",PATHWAY-ID="CDN-A"');
    expect(one('#EXT-X-DATERANGE:ID="ad1",CLASS="com.apple.hls.interstitial",START-DATE="2024-01-01T00:00:00Z",X-ASSET-URI="ad/index.m3u8"')).toBe(
      '#EXT-X-DATERANGE:ID="ad1",CLASS="com.apple.hls.interstitial",START-DATE="2024-01-01T00:00:00Z",X-ASSET-URI="ad/index.m3u8?edge_session=SID"',
    );
    expect(one('#EXT-X-DATERANGE:ID="ad2",X-ASSET-LIST="list.json"')).toBe('#EXT-X-DATERANGE:ID="ad2",X-ASSET-LIST="list.json?edge_session=SID"');
  });

  it('not URI="…" in an #EXTINF title, a comment, an unknown tag or a tag without URI attributes', () => {
    for (const line of ['#EXTINF:2.0,Title URI="x.ts"', '#EXTINF:2.0 tvg-logo="l.png" URI="x.ts",News', '# URI="x.ts"', '#EXT-X-VENDOR:URI="x.ts"', '#EXT-X-STREAM-INF:BANDWIDTH=1,URI="x.ts"', '#EXT-X-KEY:METHOD=NONE']) {
      expect(one(line), line).toBe(line);
    }
  });

  it('not URI= inside another quoted value, nor an attribute whose name only ends in URI', () => {
    expect(one('#EXT-X-MEDIA:NAME="a,URI=",URI="au.m3u8"')).toBe('#EXT-X-MEDIA:NAME="a,URI=",URI="au.m3u8?edge_session=SID"');
    expect(one('#EXT-X-MEDIA:NAME="URI=\'x\'",GROUP-ID="g"')).toBe('#EXT-X-MEDIA:NAME="URI=\'x\'",GROUP-ID="g"');
    expect(one('#EXT-X-SESSION-DATA:DATA-ID="x",X-URI="a.json",URI="b.json"')).toBe('#EXT-X-SESSION-DATA:DATA-ID="x",X-URI="a.json",URI="b.json?edge_session=SID"');
    expect(one('#EXT-X-KEY:METHOD=AES-128,URI=key.bin')).toBe('#EXT-X-KEY:METHOD=AES-128,URI=key.bin');
  });

  it('tolerates blanks around names, and stops at a malformed attribute list', () => {
    expect(one('#EXT-X-MAP: URI = "init.mp4" , BYTERANGE="1@0"')).toBe('#EXT-X-MAP: URI = "init.mp4?edge_session=SID" , BYTERANGE="1@0"');
    expect(one('#EXT-X-MAP:URI="init.mp4')).toBe('#EXT-X-MAP:URI="init.mp4');
    expect(one('#EXT-X-MAP:URI="a"b,URI="c"')).toBe('#EXT-X-MAP:URI="a"b,URI="c"');
    expect(one('#EXT-X-MAP:BYTERANGE=1"@0,URI="c"')).toBe('#EXT-X-MAP:BYTERANGE=1"@0,URI="c"');
  });
});

describe('the session parameter an origin URI already carries', () => {
  it('is replaced by ours, however its name is percent-encoded; other parameters keep their bytes and order', () => {
    expect(rewriteUri('seg.ts?edge_session=OLD', ctx)).toBe('seg.ts?edge_session=SID');
    expect(rewriteUri('seg.ts?a=1&%65dge_session=OLD&b=%20&edge%5Fsession=OLD2', ctx)).toBe('seg.ts?a=1&b=%20&edge_session=SID');
    expect(rewriteUri('seg.ts?edge_session&x=1#t=2', ctx)).toBe('seg.ts?x=1&edge_session=SID#t=2');
    expect(rewriteUri('http://127.0.0.1:8000/a/seg.ts?edge_session=OLD', ctx)).toBe('/a/seg.ts?edge_session=SID');
  });
  it('a look-alike name (another letter case, a prefix) is the origin\'s own parameter and stays', () => {
    expect(rewriteUri('seg.ts?EDGE_SESSION=x&edge_sessions=y', ctx)).toBe('seg.ts?EDGE_SESSION=x&edge_sessions=y&edge_session=SID');
  });
});

describe('URIs that lead off the upstream are never marked', () => {
  it('hosts written with backslashes, extra slashes, tabs or userinfo', () => {
    for (const uri of ['\\\\evil.example/seg.ts', '/\\evil.example/seg.ts', '/\t/evil.example/seg.ts', '///evil.example/seg.ts', 'http:/evil.example/seg.ts', 'http:/127.0.0.1:8000/seg.ts', 'http://127.0.0.1:8000@evil.example/seg.ts', ' //evil.example/seg.ts', 'http:seg.ts', 'http://[::1/x']) {
      expect(rewriteUri(uri, ctx), uri).toBe(uri);
    }
  });
  it('the upstream is recognized as a URL parser reads the host', () => {
    for (const uri of ['HTTP://127.1:8000/a/seg.ts', 'http://user:pw@127.0.0.1:08000/a/seg.ts', '\t//127.0.0.1:8000/a/seg.ts', 'http:\\\\127.0.0.1:8000/a/seg.ts', 'http:/\\127.0.0.1:8000/a/seg.ts']) {
      expect(rewriteUri(uri, ctx), uri).toBe('/a/seg.ts?edge_session=SID');
    }
  });
  it('an upstream URL whose path starts with // stays a path on the edge', () => {
    expect(rewriteUri('http://127.0.0.1:8000//evil.example/x.ts', ctx)).toBe('/.//evil.example/x.ts?edge_session=SID');
    expect(new URL('/.//evil.example/x.ts', 'http://edge.test/play/a/index.m3u8').host).toBe('edge.test');
  });
  it('an upstream URL without a path keeps its query', () => {
    expect(rewriteUri('http://127.0.0.1:8000?ch=a', ctx)).toBe('/?ch=a&edge_session=SID');
    expect(rewriteUri('http://127.0.0.1:8000#f', ctx)).toBe('/?edge_session=SID#f');
    expect(rewriteUri('http:\\\\127.0.0.1:8000\\a\\seg.ts', ctx)).toBe('/a\\seg.ts?edge_session=SID');
  });
});

describe('compile once, render per session', () => {
  const playlist = ['#EXTM3U', '#EXT-X-MAP:URI="init.mp4"', '#EXTINF:2,', 'seg-1.ts', '#EXTINF:2,Ünïcödé', 'seg-2.ts?x=1', ''].join('\r\n');

  it('the template holds the fixed text around one slot per URI; a render only inserts the ID', () => {
    const t = compilePlaylist(Buffer.from(playlist), { upstreamOrigin: ctx.upstreamOrigin, param: ctx.param });
    expect(t.pieces).toHaveLength(4);
    expect(renderPlaylist(t, 'A').toString()).toBe(rewritePlaylist(playlist, { ...ctx, sessionId: 'A' }));
    expect(renderPlaylist(t, 'B').toString()).toContain('seg-2.ts?x=1&edge_session=B\r\n');
    expect(renderPlaylist(t, 'A').equals(renderPlaylist(t, 'A'))).toBe(true);
  });

  it('bytes that are not valid UTF-8 and a byte-order mark come out unchanged', () => {
    const body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('#EXTM3U\n#EXTINF:2,\xff\xfe title\n', 'latin1'), Buffer.from([0x73, 0xe9, 0x67, 0x2e, 0x74, 0x73, 0x0a])]);
    const out = renderPlaylist(compilePlaylist(body, ctx), 'SID');
    expect(out.subarray(0, 3)).toEqual(Buffer.from([0xef, 0xbb, 0xbf]));
    expect(out.toString('latin1')).toBe('\xef\xbb\xbf#EXTM3U\n#EXTINF:2,\xff\xfe title\ns\xe9g.ts?edge_session=SID\n');
  });

  it('a playlist without URIs renders as its own bytes', () => {
    const t = compilePlaylist('#EXTM3U\n#EXT-X-ENDLIST\n', ctx);
    expect(t.pieces).toHaveLength(1);
    expect(renderPlaylist(t, 'SID').toString()).toBe('#EXTM3U\n#EXT-X-ENDLIST\n');
  });
});
