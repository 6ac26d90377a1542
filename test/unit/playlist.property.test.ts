// Property tests of the playlist rewriter (hardening #14): generated playlists with every line kind
// the rewriter must tell apart (URI lines, tags with tricky attribute lists, #EXTINF titles and
// comments quoting URI="…", CRLF), URIs of every shape (relative, root-relative, absolute to the
// upstream or elsewhere, non-HTTP, hosts a URL parser reads differently from the text, an existing
// session parameter in several spellings). A WHATWG URL parser (what browsers and hls.js use) is
// the oracle of where a URI leads.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { legacyRewritePlaylist } from '../../bench/legacy-playlist.js';
import { compilePlaylist, renderPlaylist, rewritePlaylist, rewriteUri } from '../../src/proxy/playlist.js';
import { isParamNamed } from '../../src/proxy/query.js';

const UPSTREAM = 'http://127.0.0.1:8000';
const PARAM = 'edge_session';
const SID = 'Zm9vYmFyYmF6cXV4MTIzNA';
/** A second session: a URI that renders the same for both has no slot (left alone). */
const OTHER_SID = 'b3RoZXJzZXNzaW9uaWQxMg';
const ctx = { upstreamOrigin: UPSTREAM, param: PARAM, sessionId: SID };
/** Where the player fetched the playlist from: relative URIs resolve against it. */
const PLAYLIST_URL = 'http://edge.test/play/ch/index.m3u8';
const EDGE = 'http://edge.test';
const RUNS = { numRuns: 400 };

// ---------------------------------------------------------------------------------------------
// URIs
// ---------------------------------------------------------------------------------------------

const segment = fc.stringMatching(/^[A-Za-z0-9._~-]{1,10}$/);
const path = fc.array(segment, { minLength: 1, maxLength: 3 }).map((s) => s.join('/'));
const otherParam = fc.tuple(fc.stringMatching(/^[a-z]{1,6}$/), fc.stringMatching(/^[A-Za-z0-9%._-]{0,8}$/)).map(([k, v]) => `${k}=${v}`);
/** The session parameter as an origin might already carry it, and look-alikes that are not it. */
const sessionLike = fc.constantFrom(`${PARAM}=OLD`, `${PARAM}=${SID}`, `${PARAM}=`, PARAM, '%65dge_session=OLD', 'edge%5Fsession=OLD', 'edge%5fsession=x', 'EDGE_SESSION=up', 'Edge_Session=x', 'edge_sessions=1', 'my_edge_session=2', 'edge_session%=3');
const query = fc.option(fc.array(fc.oneof(otherParam, sessionLike, fc.constant('')), { maxLength: 4 }).map((p) => p.join('&')), { nil: undefined });
const fragment = fc.option(fc.stringMatching(/^[a-z0-9=.]{0,6}$/), { nil: undefined });

/** Every way a playlist writes where a resource is (the origin is Astra-like: http://127.0.0.1:8000). */
const PREFIXES = [
  '', // relative
  '../',
  '/play/ch/', // root-relative
  `${UPSTREAM}/`,
  'HTTP://127.0.0.1:8000/',
  '//127.0.0.1:8000/',
  'http://127.1:8000/', // the upstream as a URL parser reads the host
  'http://u:p@127.0.0.1:8000/',
  'http:\\\\127.0.0.1:8000\\',
  'http:/127.0.0.1:8000/', // a path on an http edge, the upstream from an https one: left alone
  `${UPSTREAM}//`, // a path that starts with //
  'https://cdn.example/', // other hosts
  'http://127.0.0.1:8001/',
  'https://127.0.0.1:8000/',
  'http://127.0.0.1:8000@evil.example/',
  '//evil.example/',
  '\\\\evil.example/',
  '/\\evil.example/',
  '/\t/evil.example/',
  '///evil.example/',
  'http:/evil.example/',
  'http:', // relative or not, depending on the player's scheme
  'skd://', // non-HTTP
  'data:text/plain,',
  'mailto:',
];

const structuredUri = fc
  .tuple(fc.constantFrom(...PREFIXES), fc.oneof(path, fc.constant('')), query, fragment)
  .map(([prefix, p, q, f]) => `${prefix}${p}${q === undefined ? '' : `?${q}`}${f === undefined ? '' : `#${f}`}`)
  .filter((u) => u !== '');
/** Free text made of the characters that matter to URI parsing (no `"` or newline: a quoted value cannot hold them). */
const fuzzUri = fc.string({ unit: fc.constantFrom(...'aZ9/\\:?#&=%._-@ \t[]'.split(''), '127.0.0.1', ':8000', 'http', 'edge_session', '%65', '//'), minLength: 1, maxLength: 12 });
const anyUri = fc.oneof({ weight: 4, arbitrary: structuredUri }, { weight: 1, arbitrary: fuzzUri });

function resolve(ref: string): URL | undefined {
  try {
    return new URL(ref, PLAYLIST_URL);
  } catch {
    return undefined;
  }
}

/**
 * A pathname with its dot segments removed once more: Node's parser (ada) leaves a final `/.` in
 * `http://h//.0/.` (but not in `http://h//a/.`); resolving it again as `/./…` settles both forms.
 */
function samePath(pathname: string): string {
  return new URL(`/.${pathname}`, 'http://x').pathname;
}

/** Query parameters a parser sees, minus ours (any percent-encoding of our name, exact letter case). */
function paramsWithoutOurs(url: URL): [string, string][] {
  return [...url.searchParams].filter(([k]) => k !== PARAM);
}

/** The `&`-parts of a raw query whose percent-decoded name is exactly ours. */
function ourParts(ref: string): string[] {
  const hash = ref.indexOf('#');
  const base = hash === -1 ? ref : ref.slice(0, hash);
  const q = base.indexOf('?');
  if (q === -1) return [];
  return base
    .slice(q + 1)
    .split('&')
    .filter((part) => {
      const eq = part.indexOf('=');
      return isParamNamed(part, 0, eq === -1 ? part.length : eq, PARAM, false);
    });
}

/** Path, non-empty query parts other than ours, fragment: what "the same URI minus the session param" compares. */
function withoutOurs(ref: string): { path: string; parts: string[]; fragment: string } {
  const hash = ref.indexOf('#');
  const base = hash === -1 ? ref : ref.slice(0, hash);
  const q = base.indexOf('?');
  const parts = q === -1 ? [] : base.slice(q + 1).split('&');
  return {
    path: q === -1 ? base : base.slice(0, q),
    parts: parts.filter((part) => part !== '' && !ourParts(`?${part}`).length),
    fragment: hash === -1 ? '' : ref.slice(hash),
  };
}

/** The properties of one URI's rewrite. */
function checkUri(uri: string): void {
  const out = rewriteUri(uri, ctx);
  const before = resolve(uri);
  if (out === rewriteUri(uri, { ...ctx, sessionId: OTHER_SID })) {
    expect(out, uri).toBe(uri);
    // Left alone: another host, a non-HTTP scheme, or a form players disagree on. Never the
    // upstream: a player must not be sent around the edge.
    if (before !== undefined) expect(before.origin, uri).not.toBe(UPSTREAM);
    return;
  }
  // Marked: relative or root-relative, leading to the edge, never off it.
  expect(out, uri).not.toMatch(/^[A-Za-z][A-Za-z0-9+.-]*:/);
  expect(out, uri).not.toMatch(/^\s*[/\\]{2}/);
  const after = resolve(out);
  expect(after?.origin, uri).toBe(EDGE);
  // Exactly one session parameter, ours, as a parser and as the edge read it.
  expect(after!.searchParams.getAll(PARAM), uri).toEqual([SID]);
  expect(ourParts(out), uri).toEqual([`${PARAM}=${SID}`]);
  // The same resource as the origin named: the edge forwards it to the upstream.
  expect(before, uri).toBeDefined();
  expect([UPSTREAM, EDGE], uri).toContain(before!.origin);
  expect(samePath(after!.pathname), uri).toBe(samePath(before!.pathname));
  expect(after!.hash, uri).toBe(before!.hash);
  expect(paramsWithoutOurs(after!), uri).toEqual(paramsWithoutOurs(before!));
  // A relative URI keeps its bytes (but for the blanks a URL parser drops): removing our parameter
  // gives back the original minus any it had.
  if (before!.origin === EDGE) expect(withoutOurs(out), uri).toEqual(withoutOurs(uri.replace(/^[\0- ]+|[\0- ]+$/g, '').replace(/[\t\n\r]/g, '')));
}

describe('rewriteUri', () => {
  it('marks only URIs that lead to the edge, with exactly one session parameter, ours, and the same resource', () => {
    fc.assert(
      fc.property(anyUri, (uri) => checkUri(uri)),
      { numRuns: 2000 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Playlists
// ---------------------------------------------------------------------------------------------

const URI_TAGS: Readonly<Record<string, readonly string[]>> = {
  'EXT-X-KEY': ['URI'],
  'EXT-X-SESSION-KEY': ['URI'],
  'EXT-X-MAP': ['URI'],
  'EXT-X-PART': ['URI'],
  'EXT-X-PRELOAD-HINT': ['URI'],
  'EXT-X-RENDITION-REPORT': ['URI'],
  'EXT-X-MEDIA': ['URI'],
  'EXT-X-I-FRAME-STREAM-INF': ['URI'],
  'EXT-X-SESSION-DATA': ['URI'],
  'EXT-X-CONTENT-STEERING': ['SERVER-URI'],
  'EXT-X-DATERANGE': ['X-ASSET-URI', 'X-ASSET-LIST'],
};
const OTHER_TAGS = ['EXT-X-STREAM-INF', 'EXT-X-VENDOR-THING', 'EXT-X-PROGRAM-DATE-TIME', 'EXT-X-SKIP', 'EXT-X-DEFINE', 'EXTINF'];
const ATTRIBUTE_NAMES = ['URI', 'SERVER-URI', 'X-ASSET-URI', 'X-ASSET-LIST', 'X-URI', 'NAME', 'GROUP-ID', 'BANDWIDTH', 'METHOD'];

/** A line of the playlist and what the rewriter must make of it, given how one URI is rewritten. */
interface Line {
  readonly text: string;
  expected(rewrite: (uri: string) => string): string;
}

/** Quoted-string contents that look like attributes or URIs (never a `"` or a line break). */
const trickyQuoted = fc.oneof(
  fc.constantFrom('a,URI=b', 'URI=', 'x",URI=', ',URI=evil.ts,', 'SERVER-URI=', ' URI = ', 'BANDWIDTH=1,URI=x').map((t) => t.replaceAll('"', '')),
  fc.string({ unit: fc.constantFrom(...'aU,RI= .'.split('')), maxLength: 8 }),
);
const quotedUri = anyUri.filter((u) => !u.includes('"'));

interface Attribute {
  readonly name: string;
  readonly value: string;
  readonly quoted: boolean;
  /** Blanks around the name and the value (rfc8216 writes none; some packagers do). */
  readonly spaced: boolean;
}

const attribute: fc.Arbitrary<Attribute> = fc.oneof(
  fc.record({ name: fc.constantFrom(...ATTRIBUTE_NAMES), value: quotedUri, quoted: fc.constant(true), spaced: fc.boolean() }),
  fc.record({ name: fc.constantFrom(...ATTRIBUTE_NAMES), value: trickyQuoted, quoted: fc.constant(true), spaced: fc.constant(false) }),
  fc.record({ name: fc.constantFrom(...ATTRIBUTE_NAMES), value: fc.stringMatching(/^[A-Za-z0-9.x-]{1,8}$/), quoted: fc.constant(false), spaced: fc.constant(false) }),
);

function writeAttribute(a: Attribute, value: string): string {
  const v = a.quoted ? `"${value}"` : value;
  return a.spaced ? ` ${a.name} = ${v} ` : `${a.name}=${v}`;
}

const tagLine: fc.Arbitrary<Line> = fc.tuple(fc.constantFrom(...Object.keys(URI_TAGS), ...OTHER_TAGS), fc.array(attribute, { minLength: 1, maxLength: 4 })).map(([tag, attrs]) => ({
  text: `#${tag}:${attrs.map((a) => writeAttribute(a, a.value)).join(',')}`,
  expected: (rewrite) => `#${tag}:${attrs.map((a) => writeAttribute(a, a.quoted && (URI_TAGS[tag] ?? []).includes(a.name) ? rewrite(a.value) : a.value)).join(',')}`,
}));

const unchanged = (text: string): Line => ({ text, expected: () => text });

const extinf = fc.tuple(fc.constantFrom('2.000', '10', '-1'), quotedUri, fc.constantFrom('', 'News ', 'tvg-id="x" ')).map(([d, u, pre]) => unchanged(`#EXTINF:${d},${pre}URI="${u}"`));
const comment = quotedUri.map((u) => unchanged(`# see URI="${u}"`));
const malformedTag = fc.tuple(fc.constantFrom(...Object.keys(URI_TAGS)), quotedUri).chain(([tag, u]) => fc.constantFrom(unchanged(`#${tag}:URI="${u}`), unchanged(`#${tag}:URI="${u}"x,NAME="n"`), unchanged(`#${tag}:BYTERANGE=1"2,URI="${u}"`)));
const uriLine = fc.tuple(anyUri.filter((u) => !u.includes('\n') && u.trim() !== '' && !u.trim().startsWith('#')), fc.constantFrom('', ' ', '\t', '  ')).map(([u, pad]): Line => {
  const trimmed = u.replace(/^[ \t\r\v\f]+|[ \t\r\v\f]+$/g, '');
  return { text: `${pad}${u}${pad}`, expected: (rewrite) => rewrite(trimmed) };
});
const blank = fc.constantFrom(unchanged(''), unchanged(' '));

const anyLine = fc.oneof({ weight: 4, arbitrary: uriLine }, { weight: 4, arbitrary: tagLine }, { weight: 1, arbitrary: extinf }, { weight: 1, arbitrary: comment }, { weight: 1, arbitrary: malformedTag }, { weight: 1, arbitrary: blank });

interface Playlist {
  readonly text: string;
  readonly expected: string;
}

function playlistOf(lineArb: fc.Arbitrary<Line>): fc.Arbitrary<Playlist> {
  return fc.tuple(fc.array(lineArb, { maxLength: 12 }), fc.constantFrom('\n', '\r\n'), fc.boolean()).map(([lines, eol, finalEol]) => {
    const end = finalEol ? eol : '';
    const rewrite = (u: string): string => rewriteUri(u, ctx);
    return {
      text: `${['#EXTM3U', ...lines.map((l) => l.text)].join(eol)}${end}`,
      expected: `${['#EXTM3U', ...lines.map((l) => l.expected(rewrite))].join(eol)}${end}`,
    };
  });
}

describe('compilePlaylist + renderPlaylist', () => {
  it('never throw, whatever the bytes', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)), fc.string({ maxLength: 300 }).map((s) => `#EXTM3U\n${s}`)), (body) => {
        const t = compilePlaylist(body, ctx);
        renderPlaylist(t, SID);
      }),
      RUNS,
    );
  });

  it('rewrite exactly the URI lines and the URI attributes of the URI tags: titles, comments, other attributes and malformed lists stay', () => {
    fc.assert(
      fc.property(playlistOf(anyLine), ({ text, expected }) => {
        expect(rewritePlaylist(text, ctx)).toBe(expected);
      }),
      RUNS,
    );
  });

  it('every rewritten URI in a playlist keeps the per-URI properties (tags, lines, CRLF)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.oneof(uriLine, tagLine), fc.constantFrom('\n', '\r\n')), { minLength: 1, maxLength: 6 }), (lines) => {
        // Collect the URIs as the generator wrote them, then check each rewritten one where the rewriter put it.
        const seen: string[] = [];
        const text = `#EXTM3U\n${lines.map(([l, eol]) => l.text + eol).join('')}`;
        const out = rewritePlaylist(text, ctx);
        const expected = `#EXTM3U\n${lines.map(([l, eol]) => l.expected((u) => {
          seen.push(u);
          return rewriteUri(u, ctx);
        }) + eol).join('')}`;
        expect(out).toBe(expected);
        for (const u of seen) checkUri(u);
      }),
      RUNS,
    );
  });

  it('render is deterministic, per session ID, and equals compiling again', () => {
    fc.assert(
      fc.property(playlistOf(anyLine), fc.stringMatching(/^[A-Za-z0-9_-]{22}$/), ({ text }, id) => {
        const t = compilePlaylist(text, ctx);
        const a = renderPlaylist(t, id);
        expect(renderPlaylist(t, id).equals(a)).toBe(true);
        expect(renderPlaylist(compilePlaylist(text, ctx), id).equals(a)).toBe(true);
        expect(a.toString('utf8')).toBe(rewritePlaylist(text, { ...ctx, sessionId: id }));
        // The ID appears once per slot and nowhere else.
        expect(a.toString('latin1').split(id).length - 1).toBe(t.pieces.length - 1);
      }),
      RUNS,
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Same bytes as the old rewriter wherever the old one was right
// ---------------------------------------------------------------------------------------------

/** URIs the old rewriter handled correctly: plain relative, root-relative, upstream-absolute with a path, other hosts, non-HTTP. */
const plainUri = fc
  .tuple(fc.constantFrom('', '../', '/play/ch/', `${UPSTREAM}/`, 'HTTP://127.0.0.1:8000/', 'https://cdn.example/', 'http://127.0.0.1:8001/', 'skd://', 'data:text/plain,'), path, fc.option(fc.array(otherParam, { maxLength: 3 }).map((p) => p.join('&')), { nil: undefined }), fragment)
  .map(([prefix, p, q, f]) => `${prefix}${p}${q === undefined ? '' : `?${q}`}${f === undefined ? '' : `#${f}`}`);
/** Tags the old regex also rewrote: one URI attribute, no other attribute whose name ends in URI. */
const plainTag = fc
  .tuple(fc.constantFrom('EXT-X-KEY', 'EXT-X-MAP', 'EXT-X-MEDIA', 'EXT-X-I-FRAME-STREAM-INF', 'EXT-X-SESSION-KEY', 'EXT-X-PART', 'EXT-X-PRELOAD-HINT', 'EXT-X-RENDITION-REPORT', 'EXT-X-SESSION-DATA'), plainUri, fc.constantFrom('', 'METHOD=AES-128,', 'TYPE=AUDIO,GROUP-ID="a,b",NAME="en",'))
  .map(([tag, u, before]) => `#${tag}:${before}URI="${u}"`);
const plainLine = fc.oneof(plainUri, plainTag, fc.constantFrom('#EXTINF:2.000,', '#EXTINF:10,Channel One', '#EXT-X-TARGETDURATION:2', '#EXT-X-STREAM-INF:BANDWIDTH=800000,AUDIO="aud"', '# a comment', ''));

describe('the old rewriter', () => {
  it('gives the same bytes wherever it was right', () => {
    fc.assert(
      fc.property(fc.array(plainLine, { maxLength: 12 }), fc.constantFrom('\n', '\r\n'), (lines, eol) => {
        const text = `${['#EXTM3U', ...lines].join(eol)}${eol}`;
        expect(rewritePlaylist(text, ctx)).toBe(legacyRewritePlaylist(text, ctx));
      }),
      RUNS,
    );
  });
});
