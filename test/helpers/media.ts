// Real media for end-to-end tests: a short ffmpeg-generated HLS channel (H.264 + AAC in MPEG-TS),
// generated once per machine into test/artifacts/media/ (gitignored) and reused while it stays
// valid, so tests can push genuine segments through the edge and check them with ffprobe.
// Layout: index.m3u8 (VOD, ENDLIST) + seg-000.m2t, seg-001.m2t, ... (see MEDIA_SEGMENT_EXT).

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TS_PACKET_BYTES, TS_SYNC_BYTE } from './bytes.js';
import { parseMediaSegments } from './playlist.js';

export const DEFAULT_MEDIA_DIR = fileURLToPath(new URL('../artifacts/media/', import.meta.url)).replace(/[/\\]$/, '');

export interface MediaParams {
  durationS: number;
  hlsTimeS: number;
}

export const DEFAULT_MEDIA_PARAMS: MediaParams = { durationS: 20, hlsTimeS: 2 };

export interface GeneratedMedia {
  dir: string;
  /** Absolute path of index.m3u8. */
  playlist: string;
  /** Absolute paths of the segments, in playlist order. */
  segments: string[];
}

const MARKER = 'media.json';
/** Bump when the layout changes so stale artifacts are regenerated. */
const LAYOUT_VERSION = 2;
/**
 * On-disk segment extension. Not `.ts`: the repo's tsconfig includes `test/`, and tsc would try to
 * parse binary `*.ts` files as TypeScript. The origin's media mode serves them as `seg-NNN.ts`.
 */
export const MEDIA_SEGMENT_EXT = '.m2t';

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(Object.assign(err, { stderr }));
      else resolve({ stdout, stderr });
    });
  });
}

/** Throws an actionable error when ffmpeg/ffprobe are not on PATH. */
export async function assertFfmpegInstalled(): Promise<void> {
  for (const tool of ['ffmpeg', 'ffprobe']) {
    try {
      await run(tool, ['-hide_banner', '-version'], 10_000);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new Error(
        `${tool} is required to generate the test media but could not be run (${code ?? String(err)}). ` +
          'Install it, e.g. `sudo apt-get install -y ffmpeg`, then re-run the tests.',
        { cause: err },
      );
    }
  }
}

/** Returns the media in `dir` if it is complete and was generated with `params`, else null. */
export async function validateMedia(dir: string, params: MediaParams = DEFAULT_MEDIA_PARAMS): Promise<GeneratedMedia | null> {
  try {
    const marker = JSON.parse(await readFile(path.join(dir, MARKER), 'utf8')) as Partial<MediaParams> & { layout?: number };
    if (marker.layout !== LAYOUT_VERSION || marker.durationS !== params.durationS || marker.hlsTimeS !== params.hlsTimeS) return null;
    const playlist = path.join(dir, 'index.m3u8');
    const text = await readFile(playlist, 'utf8');
    const segs = parseMediaSegments(text);
    const total = segs.reduce((a, s) => a + s.durationS, 0);
    if (!text.includes('#EXT-X-ENDLIST') || segs.length < 2 || Math.abs(total - params.durationS) > params.hlsTimeS) return null;
    const segments: string[] = [];
    for (const s of segs) {
      const file = path.join(dir, s.uri);
      const bytes = await readFile(file);
      if (bytes.length === 0 || bytes.length % TS_PACKET_BYTES !== 0 || bytes[0] !== TS_SYNC_BYTE) return null;
      segments.push(file);
    }
    return { dir, playlist, segments };
  } catch {
    return null;
  }
}

/**
 * Makes sure `dir` holds a valid generated channel and returns it. Generates into a temporary
 * sibling directory and renames it into place, so an interrupted run never leaves a half-written
 * channel that looks valid.
 */
export async function ensureTestMedia(dir: string = DEFAULT_MEDIA_DIR, params: MediaParams = DEFAULT_MEDIA_PARAMS): Promise<GeneratedMedia> {
  const existing = await validateMedia(dir, params);
  if (existing) return existing;
  await assertFfmpegInstalled();
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  // testsrc video + 1 kHz tone; a keyframe every second so every 2 s segment starts with an IDR.
  const args = [
    '-hide_banner', '-loglevel', 'error', '-nostdin', '-y',
    '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=25',
    '-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=48000',
    '-t', String(params.durationS),
    '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-g', '25', '-keyint_min', '25', '-sc_threshold', '0',
    '-c:a', 'aac', '-b:a', '64k',
    '-f', 'hls', '-hls_time', String(params.hlsTimeS), '-hls_list_size', '0', '-hls_playlist_type', 'vod',
    '-hls_segment_filename', path.join(tmp, `seg-%03d${MEDIA_SEGMENT_EXT}`),
    path.join(tmp, 'index.m3u8'),
  ];
  try {
    await run('ffmpeg', args, 120_000);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`ffmpeg failed to generate test media: ${String(err)}\n${stderr}`, { cause: err });
  }
  await writeFile(path.join(tmp, MARKER), JSON.stringify({ ...params, layout: LAYOUT_VERSION }));
  if (existsSync(dir)) await rm(dir, { recursive: true, force: true });
  await mkdir(path.dirname(dir), { recursive: true });
  await rename(tmp, dir);
  const media = await validateMedia(dir, params);
  if (!media) throw new Error(`generated test media in ${dir} failed validation`);
  return media;
}

export interface ProbeStream {
  codec_type?: string;
  codec_name?: string;
}

/** ffprobe's stream list for a file or URL (127.0.0.1 only in tests). */
export async function ffprobeStreams(input: string, timeoutMs = 15_000): Promise<ProbeStream[]> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_type,codec_name', '-of', 'json', input], timeoutMs);
  return (JSON.parse(stdout) as { streams?: ProbeStream[] }).streams ?? [];
}
