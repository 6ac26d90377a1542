// Self-tests for test/helpers/media.ts + global-setup.ts (real ffmpeg HLS) and the origin's
// real-media mode.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { TS_PACKET_BYTES, TS_SYNC_BYTE } from '../helpers/bytes.js';
import { httpRequest, openStream } from '../helpers/client.js';
import { DEFAULT_MEDIA_DIR, MEDIA_SEGMENT_EXT, ffprobeStreams, validateMedia } from '../helpers/media.js';
import { startTestOrigin } from '../helpers/origin.js';
import type { TestOrigin } from '../helpers/origin.js';
import { liveWindowPlaylist, parseMediaSegments, playlistNumberTag } from '../helpers/playlist.js';
import { TOOLS, requireMedia, requireTool } from '../helpers/tools.js';

const MEDIA = requireMedia(inject('mediaDir'));
const FFPROBE = requireTool(TOOLS.ffprobe);

let origin: TestOrigin | null = null;
afterEach(async () => {
  await origin?.close();
  origin = null;
});

describe.skipIf(MEDIA.skip || FFPROBE.skip)(`generated test media${MEDIA.note || FFPROBE.note}`, () => {
  it('is provided by globalSetup and is valid H.264 + AAC HLS', async () => {
    const dir = MEDIA.path;
    expect(dir).toBe(DEFAULT_MEDIA_DIR);
    const media = await validateMedia(dir);
    expect(media?.segments.length).toBeGreaterThanOrEqual(8);
    expect(media?.segments.every((f) => f.endsWith(MEDIA_SEGMENT_EXT))).toBe(true);
    const streams = await ffprobeStreams(media?.segments[0] ?? '');
    expect(streams.map((s) => `${s.codec_type}:${s.codec_name}`).sort()).toEqual(['audio:aac', 'video:h264']);
  });
});

describe('liveWindowPlaylist', () => {
  const segments = [0, 1, 2].map((i) => ({ durationS: 2, uri: `dir/seg-${i}.ts?x=1` }));

  it('slides with elapsed time and marks wrap-arounds', () => {
    const at = (ms: number): string => liveWindowPlaylist({ segments, elapsedMs: ms, windowSize: 2 });
    expect(parseMediaSegments(at(0)).map((s) => s.uri)).toEqual(['seg-0.ts', 'seg-1.ts']);
    expect(playlistNumberTag(at(3999), '#EXT-X-MEDIA-SEQUENCE')).toBe(1);
    const wrap = at(4000);
    expect(playlistNumberTag(wrap, '#EXT-X-MEDIA-SEQUENCE')).toBe(2);
    expect(wrap).toMatch(/seg-2\.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:2\.000000,\nseg-0\.ts/);
    expect(playlistNumberTag(wrap, '#EXT-X-DISCONTINUITY-SEQUENCE')).toBe(0);
    expect(playlistNumberTag(at(8000), '#EXT-X-DISCONTINUITY-SEQUENCE')).toBe(1);
    expect(at(8000)).not.toContain('ENDLIST');
  });
});

describe.skipIf(MEDIA.skip)(`startTestOrigin with mediaDir${MEDIA.note}`, () => {
  it('serves a live window over the real segments and their exact bytes', async () => {
    const dir = MEDIA.path;
    let now = 0;
    const o = (origin = await startTestOrigin({ mediaDir: dir, now: () => now, windowSize: 3 }));
    const url = `${o.url}/play/real/index.m3u8`;
    const first = (await httpRequest(url)).body.toString();
    expect(first).not.toContain('#EXT-X-ENDLIST');
    expect(playlistNumberTag(first, '#EXT-X-MEDIA-SEQUENCE')).toBe(0);
    const segs = parseMediaSegments(first);
    expect(segs.map((s) => s.uri)).toEqual(['seg-000.ts', 'seg-001.ts', 'seg-002.ts']);
    for (const s of segs) {
      const r = await httpRequest(new URL(s.uri, url).href);
      expect(r.headers['content-type']).toBe('video/mp2t');
      expect(r.body.equals(await readFile(path.join(dir, s.uri.replace(/\.ts$/, '.m2t'))))).toBe(true);
      expect(r.body.equals(o.expectedBytes(`/play/real/${s.uri}`))).toBe(true);
    }
    now += 4_000;
    expect(playlistNumberTag((await httpRequest(url)).body.toString(), '#EXT-X-MEDIA-SEQUENCE')).toBe(2);
    expect(o.mediaSequence()).toBe(2);
    expect((await httpRequest(`${o.url}/play/real/v1/index.m3u8`)).status).toBe(404);
    expect((await httpRequest(`${o.url}/play/real/missing.ts`)).status).toBe(404);
  });

  it.skipIf(FFPROBE.skip)(`is playable by ffprobe over HTTP, and the continuous stream carries the real TS${FFPROBE.note}`, async () => {
    const o = (origin = await startTestOrigin({ mediaDir: MEDIA.path, tsBytesPerSecond: 0 }));
    const streams = await ffprobeStreams(`${o.url}/play/real/index.m3u8`);
    expect(streams.map((s) => s.codec_type).sort()).toEqual(['audio', 'video']);
    const s = await openStream(`${o.url}/play/real`);
    const data = await s.readAtLeast(100 * TS_PACKET_BYTES);
    s.destroy();
    const first = await readFile(path.join(MEDIA.path, `seg-000${MEDIA_SEGMENT_EXT}`));
    expect(data.subarray(0, 4096).equals(first.subarray(0, 4096))).toBe(true);
    for (let p = 0; p < 100; p++) expect(data[p * TS_PACKET_BYTES]).toBe(TS_SYNC_BYTE);
  });
});
