// The origin's files, in a temporary directory the nginx origin serves:
//   play/ch1..ch5/master.m3u8, index.m3u8 (live-style: no ENDLIST, 6 segments), seg-1000..1005.ts
//   play/live/...                the (f) channel, whose playlist a timer advances (LiveChannel)
// Segment bytes are real MPEG-TS (H.264 + AAC from ffmpeg's test pattern, generated once per machine
// by the test helper), cut at packet boundaries into ~1 MiB pieces. The same bytes, looped, are
// what the MPEG-TS origin of (e) sends.
import { link, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureTestMedia } from '../../test/helpers/media.js';
import { TS_PACKET_BYTES, syntheticTsPackets } from '../../test/helpers/bytes.js';

/** 5,578 packets = 1,048,664 bytes: the smallest whole number of TS packets ≥ 1 MiB. */
export const SEGMENT_PACKETS = Math.ceil((1024 * 1024) / TS_PACKET_BYTES);
export const SEGMENT_BYTES = SEGMENT_PACKETS * TS_PACKET_BYTES;
export const SEGMENTS_PER_PLAYLIST = 6;
export const FIRST_SEQUENCE = 1000;
export const STATIC_CHANNELS = ['ch1', 'ch2', 'ch3', 'ch4', 'ch5'] as const;
export const LIVE_CHANNEL = 'live';

export interface Media {
  /** One continuous MPEG-TS byte stream (whole packets). */
  readonly ts: Buffer;
  /** Where it came from, for the output. */
  readonly source: string;
  /** The SEGMENTS_PER_PLAYLIST segment bodies. */
  readonly segments: readonly Buffer[];
}

export async function loadMedia(): Promise<Media> {
  let ts: Buffer;
  let source: string;
  try {
    const media = await ensureTestMedia();
    ts = Buffer.concat(await Promise.all(media.segments.map((f) => readFile(f))));
    source = `ffmpeg testsrc 320x240 H.264 + AAC, ${media.segments.length} segments concatenated (${(ts.length / 1e6).toFixed(1)} MB), looped`;
  } catch (err) {
    ts = syntheticTsPackets(0, SEGMENT_PACKETS * 2);
    source = `synthetic 0x47-synced packets (ffmpeg unavailable: ${String(err).split('\n')[0]})`;
  }
  const packets = ts.length / TS_PACKET_BYTES;
  const segments = Array.from({ length: SEGMENTS_PER_PLAYLIST }, (_, i) => {
    const out = Buffer.allocUnsafe(SEGMENT_BYTES);
    for (let p = 0; p < SEGMENT_PACKETS; p++) {
      const from = ((i * SEGMENT_PACKETS + p) % packets) * TS_PACKET_BYTES;
      ts.copy(out, p * TS_PACKET_BYTES, from, from + TS_PACKET_BYTES);
    }
    return out;
  });
  return { ts, source, segments };
}

export function mediaPlaylist(sequence: number, targetDurationS: number): string {
  const lines = ['#EXTM3U', '#EXT-X-VERSION:3', `#EXT-X-TARGETDURATION:${targetDurationS}`, `#EXT-X-MEDIA-SEQUENCE:${sequence}`];
  for (let i = 0; i < SEGMENTS_PER_PLAYLIST; i++) lines.push(`#EXTINF:${targetDurationS.toFixed(3)},`, `seg-${sequence + i}.ts`);
  return `${lines.join('\n')}\n`;
}

export function masterPlaylist(bandwidth: number): string {
  return `#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=${bandwidth},RESOLUTION=320x240\nindex.m3u8\n`;
}

/** Writes the static channels; the segment files are hard links to one copy of each body. */
export async function writeStaticChannels(root: string, media: Media, targetDurationS: number): Promise<void> {
  const store = join(root, 'store');
  await mkdir(store, { recursive: true });
  await Promise.all(media.segments.map((s, i) => writeFile(join(store, `seg-${i}.ts`), s)));
  const bandwidth = Math.round((SEGMENT_BYTES * 8) / targetDurationS);
  for (const ch of STATIC_CHANNELS) {
    const dir = join(root, 'play', ch);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'index.m3u8'), mediaPlaylist(FIRST_SEQUENCE, targetDurationS));
    await writeFile(join(dir, 'master.m3u8'), masterPlaylist(bandwidth));
    for (let i = 0; i < SEGMENTS_PER_PLAYLIST; i++) await link(join(store, `seg-${i}.ts`), join(dir, `seg-${FIRST_SEQUENCE + i}.ts`));
  }
}

/**
 * The live channel of (f): every target duration the media sequence advances by one, a new
 * segment file appears (a hard link) and the playlist is replaced atomically (write + rename, so
 * nginx never serves half a file). Old segments are removed so the directory stays small.
 */
export class LiveChannel {
  private sequence = FIRST_SEQUENCE;
  private timer: NodeJS.Timeout | undefined;
  private readonly dir: string;
  private ticking: Promise<void> = Promise.resolve();

  constructor(
    private readonly root: string,
    readonly targetDurationS: number,
  ) {
    this.dir = join(root, 'play', LIVE_CHANNEL);
  }

  async start(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeFile(join(this.dir, 'master.m3u8'), masterPlaylist(Math.round((SEGMENT_BYTES * 8) / this.targetDurationS)));
    for (let i = 0; i < SEGMENTS_PER_PLAYLIST; i++) await this.linkSegment(this.sequence + i);
    await this.writePlaylist();
    this.timer = setInterval(() => {
      this.ticking = this.ticking.then(() => this.advance()).catch((err: unknown) => {
        process.stderr.write(`live channel: ${String(err)}\n`);
      });
    }, this.targetDurationS * 1000);
  }

  /** The newest media sequence number in the playlist. */
  get newest(): number {
    return this.sequence + SEGMENTS_PER_PLAYLIST - 1;
  }

  private async advance(): Promise<void> {
    this.sequence++;
    await this.linkSegment(this.newest);
    await this.writePlaylist();
    await unlink(join(this.dir, `seg-${this.sequence - 2 * SEGMENTS_PER_PLAYLIST}.ts`)).catch(() => undefined);
  }

  private linkSegment(n: number): Promise<void> {
    return link(join(this.root, 'store', `seg-${n % SEGMENTS_PER_PLAYLIST}.ts`), join(this.dir, `seg-${n}.ts`)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
  }

  private async writePlaylist(): Promise<void> {
    const tmp = join(this.dir, '.index.m3u8.tmp');
    await writeFile(tmp, mediaPlaylist(this.sequence, this.targetDurationS));
    await rename(tmp, join(this.dir, 'index.m3u8'));
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.ticking;
  }
}
