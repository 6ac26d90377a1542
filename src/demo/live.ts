/**
 * A live channel as the demo origin serves it: the current media playlist,
 * its sliding window, and segment bytes by name. Two implementations: real
 * H.264/AAC from one ffmpeg child (ffmpeg.ts) and, when ffmpeg is missing,
 * the placeholder below: a live playlist that advances with wall time over
 * segments of valid MPEG-TS packet framing that no player can decode.
 */

/** The segments a live playlist lists right now, oldest first. */
export interface LiveWindow {
  /** EXT-X-MEDIA-SEQUENCE: the sequence number of `segments[0]`. */
  readonly firstSequence: number;
  /** Segment URIs as the playlist writes them (file names, relative to the playlist). */
  readonly segments: readonly string[];
}

export interface LiveSource {
  readonly kind: 'ffmpeg' | 'placeholder';
  /** The media playlist text, or undefined before the first segment exists. */
  playlist(): string | undefined;
  window(): LiveWindow | undefined;
  /** Bytes of a segment the window lists (or listed moments ago); undefined when unknown or gone. */
  segment(name: string): Promise<Buffer | undefined>;
  close(): Promise<void>;
}

/** Segment length of both sources (ffmpeg's -hls_time), seconds: a player reloads the playlist about this often. */
export const SEGMENT_SECONDS = 2;
/** Segments a placeholder playlist lists; ffmpeg's own window is -hls_list_size. */
export const PLACEHOLDER_WINDOW = 5;
/** Segment names the origin accepts: a file name, never a path. */
export const SEGMENT_NAME = /^[A-Za-z0-9_-]+\.ts$/;

const TS_PACKET_BYTES = 188;
const TS_SYNC_BYTE = 0x47;
/** PID of the placeholder packets: an elementary-stream PID, no PAT/PMT points at it (hence "not decodable"). */
const PLACEHOLDER_PID = 0x100;
/** ≈ 2 s at 500 kbit/s: a plausible segment size for the byte counters on the status page. */
const PLACEHOLDER_PACKETS_PER_SEGMENT = 665;
/** Segments that fell out of the window stay fetchable this long (ffmpeg's hls_delete_threshold does the same). */
const PLACEHOLDER_KEEP_BEHIND = 2;

/** Parses the window out of a live media playlist (the subset ffmpeg's HLS muxer writes). */
export function parseLiveWindow(text: string): LiveWindow | undefined {
  if (!text.startsWith('#EXTM3U')) return undefined;
  const sequence = /^#EXT-X-MEDIA-SEQUENCE:(\d+)\s*$/m.exec(text);
  const segments = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  if (segments.length === 0) return undefined;
  return { firstSequence: sequence === null ? 0 : Number(sequence[1]), segments };
}

function mediaPlaylist(window: LiveWindow): string {
  const lines = ['#EXTM3U', '#EXT-X-VERSION:3', `#EXT-X-TARGETDURATION:${SEGMENT_SECONDS}`, `#EXT-X-MEDIA-SEQUENCE:${window.firstSequence}`];
  for (const name of window.segments) lines.push(`#EXTINF:${SEGMENT_SECONDS.toFixed(3)},`, name);
  return `${lines.join('\n')}\n`;
}

/**
 * Placeholder segment `sequence`: whole 188-byte packets, sync byte first,
 * continuity counters running on from the previous segment, so the
 * MPEG-TS endpoint's back-to-back stream has valid framing throughout.
 */
export function placeholderSegment(sequence: number): Buffer {
  const out = Buffer.alloc(PLACEHOLDER_PACKETS_PER_SEGMENT * TS_PACKET_BYTES, 0xff);
  for (let p = 0; p < PLACEHOLDER_PACKETS_PER_SEGMENT; p++) {
    const off = p * TS_PACKET_BYTES;
    out[off] = TS_SYNC_BYTE;
    out[off + 1] = (PLACEHOLDER_PID >> 8) & 0x1f;
    out[off + 2] = PLACEHOLDER_PID & 0xff;
    out[off + 3] = 0x10 | ((sequence * PLACEHOLDER_PACKETS_PER_SEGMENT + p) & 0x0f);
  }
  return out;
}

/**
 * The placeholder channel: segment n is complete once `(n + 1) × 2 s` have
 * passed since the epoch, which starts a full window in the past so a player
 * gets {@link PLACEHOLDER_WINDOW} segments from the first request.
 */
export function placeholderLive(now: () => number = Date.now): LiveSource {
  const epoch = now() - PLACEHOLDER_WINDOW * SEGMENT_SECONDS * 1000;
  const newest = (): number => Math.floor((now() - epoch) / (SEGMENT_SECONDS * 1000)) - 1;
  const window = (): LiveWindow => {
    const last = newest();
    const first = Math.max(0, last - PLACEHOLDER_WINDOW + 1);
    const segments: string[] = [];
    for (let n = first; n <= last; n++) segments.push(`seg-${n}.ts`);
    return { firstSequence: first, segments };
  };
  return {
    kind: 'placeholder',
    window,
    playlist: () => mediaPlaylist(window()),
    segment(name) {
      const n = Number(/^seg-(\d{1,12})\.ts$/.exec(name)?.[1] ?? NaN);
      const last = newest();
      const known = Number.isSafeInteger(n) && n <= last && n >= last - PLACEHOLDER_WINDOW - PLACEHOLDER_KEEP_BEHIND;
      return Promise.resolve(known ? placeholderSegment(n) : undefined);
    },
    close: () => Promise.resolve(),
  };
}
