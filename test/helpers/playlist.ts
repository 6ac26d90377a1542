// Pure HLS playlist text for the fake origin, kept apart from the server so it can be unit-tested
// and reused: an Astra-like master playlist, a synthetic live media playlist whose segment URIs
// cycle through relative / root-relative / absolute forms (the edge must rewrite all three), and a
// live sliding window over a real pre-generated VOD playlist.

export const M3U8_CONTENT_TYPE = 'application/vnd.apple.mpegurl';

/** Master playlist for `/play/<channel>/index.m3u8`: two variants (relative and root-relative with a
 * query), an audio rendition and an I-frame playlist, referenced by URI attributes. */
export function masterPlaylist(channel: string): string {
  return [
    '#EXTM3U',
    '#EXT-X-VERSION:6',
    '#EXT-X-INDEPENDENT-SEGMENTS',
    '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="English",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,URI="audio/index.m3u8"',
    '#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,CODECS="avc1.4d401e,mp4a.40.2",AUDIO="aud"',
    'v1/index.m3u8',
    '#EXT-X-STREAM-INF:BANDWIDTH=1600000,RESOLUTION=1280x720,CODECS="avc1.4d401f,mp4a.40.2",AUDIO="aud"',
    `/play/${channel}/v2/index.m3u8?foo=bar`,
    '#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=200000,CODECS="avc1.4d401e",URI="iframes.m3u8"',
    '',
  ].join('\n');
}

export type UriStyle = 'relative' | 'root-relative' | 'absolute';

/** Segment n uses style n mod 3, so any window of 3 consecutive segments contains all three. */
export function uriStyleOf(n: number): UriStyle {
  const styles: UriStyle[] = ['relative', 'root-relative', 'absolute'];
  return styles[((n % 3) + 3) % 3] ?? 'relative';
}

export interface SyntheticMediaOptions {
  /** Directory of the playlist with trailing slash, e.g. `/play/ch1/v1/`. */
  dirPath: string;
  /** `http://127.0.0.1:<port>` used for absolute URIs. */
  origin: string;
  mediaSequence: number;
  targetDurationS: number;
  windowSize: number;
  key: boolean;
  map: boolean;
}

/** Live (no ENDLIST) media playlist with segments `seg-<n>.ts`, n = mediaSequence.. */
export function syntheticMediaPlaylist(o: SyntheticMediaOptions): string {
  const lines = [
    '#EXTM3U',
    '#EXT-X-VERSION:6',
    `#EXT-X-TARGETDURATION:${o.targetDurationS}`,
    `#EXT-X-MEDIA-SEQUENCE:${o.mediaSequence}`,
  ];
  if (o.key) lines.push('#EXT-X-KEY:METHOD=AES-128,URI="key.bin"');
  if (o.map) lines.push('#EXT-X-MAP:URI="init.mp4"');
  for (let n = o.mediaSequence; n < o.mediaSequence + o.windowSize; n++) {
    const name = `seg-${n}.ts`;
    const style = uriStyleOf(n);
    lines.push(`#EXTINF:${o.targetDurationS.toFixed(3)},`);
    if (style === 'relative') lines.push(name);
    else if (style === 'root-relative') lines.push(`${o.dirPath}${name}`);
    else lines.push(`${o.origin}${o.dirPath}${name}`);
  }
  lines.push('');
  return lines.join('\n');
}

export interface PlaylistSegment {
  durationS: number;
  uri: string;
}

/** Extracts `#EXTINF` durations and URIs from a media playlist (other tags are ignored). */
export function parseMediaSegments(text: string): PlaylistSegment[] {
  const out: PlaylistSegment[] = [];
  let pending: number | null = null;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.startsWith('#EXTINF:')) {
      pending = Number.parseFloat(line.slice('#EXTINF:'.length));
    } else if (line !== '' && !line.startsWith('#') && pending !== null) {
      out.push({ durationS: pending, uri: line });
      pending = null;
    }
  }
  return out;
}

/** Value of a single-number tag such as `#EXT-X-MEDIA-SEQUENCE`, or null when absent. */
export function playlistNumberTag(text: string, tag: string): number | null {
  const m = new RegExp(`^${tag}:(\\d+(?:\\.\\d+)?)`, 'm').exec(text);
  return m?.[1] !== undefined ? Number(m[1]) : null;
}

export interface LiveWindowOptions {
  segments: PlaylistSegment[];
  elapsedMs: number;
  windowSize: number;
}

/** Absolute index of the first segment of the live window after `elapsedMs` of looping `segments`. */
export function liveWindowSequence(segments: PlaylistSegment[], elapsedMs: number): number {
  const n = segments.length;
  if (n === 0) return 0;
  const durationsMs = segments.map((s) => Math.max(1, Math.round(s.durationS * 1000)));
  const cycleMs = durationsMs.reduce((a, b) => a + b, 0);
  const elapsed = Math.max(0, elapsedMs);
  let seq = Math.floor(elapsed / cycleMs) * n;
  let rem = elapsed % cycleMs;
  for (let i = 0; i < n && rem >= (durationsMs[i] ?? 0); i++) {
    rem -= durationsMs[i] ?? 0;
    seq++;
  }
  return seq;
}

/**
 * Live playlist over a looped list of real segments. The absolute segment index advances with
 * `elapsedMs` using the real durations; the window wraps around the list, marking each wrap with
 * `#EXT-X-DISCONTINUITY` and counting wraps that slid out in `#EXT-X-DISCONTINUITY-SEQUENCE`.
 * URIs are the basenames of the source URIs (relative).
 */
export function liveWindowPlaylist(o: LiveWindowOptions): string {
  const n = o.segments.length;
  if (n === 0) throw new Error('liveWindowPlaylist: no segments');
  const seq = liveWindowSequence(o.segments, o.elapsedMs);
  const target = Math.ceil(Math.max(...o.segments.map((s) => s.durationS)));
  const lines = [
    '#EXTM3U',
    '#EXT-X-VERSION:3',
    `#EXT-X-TARGETDURATION:${target}`,
    `#EXT-X-MEDIA-SEQUENCE:${seq}`,
    `#EXT-X-DISCONTINUITY-SEQUENCE:${seq === 0 ? 0 : Math.floor((seq - 1) / n)}`,
  ];
  for (let j = seq; j < seq + o.windowSize; j++) {
    const seg = o.segments[j % n];
    if (!seg) continue;
    if (j > 0 && j % n === 0) lines.push('#EXT-X-DISCONTINUITY');
    lines.push(`#EXTINF:${seg.durationS.toFixed(6)},`);
    lines.push(seg.uri.split('?')[0]?.split('/').pop() ?? seg.uri);
  }
  lines.push('');
  return lines.join('\n');
}
