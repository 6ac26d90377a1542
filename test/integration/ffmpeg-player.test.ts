// ffmpeg as a real HLS player in front of the edge: it follows the rewritten live playlist,
// reloads it and fetches segment after segment, and the middleware is asked once.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { startEdge, type TestEdge } from '../helpers/edge.js';
import { ffprobeStreams } from '../helpers/media.js';
import { startTestMiddleware, type TestMiddleware } from '../helpers/middleware.js';
import { startTestOrigin, type TestOrigin } from '../helpers/origin.js';
import { TOOLS, requireMedia, requireTool } from '../helpers/tools.js';

const FFMPEG_KILL_MS = 40_000;
const FFMPEG = requireTool(TOOLS.ffmpeg);
const FFPROBE = requireTool(TOOLS.ffprobe);
const MEDIA = requireMedia(inject('mediaDir'));

let origin: TestOrigin | undefined;
let mw: TestMiddleware | undefined;
let edge: TestEdge | undefined;
let tmp: string | undefined;

afterEach(async () => {
  await edge?.close();
  await mw?.close();
  await origin?.close();
  if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
  edge = mw = origin = tmp = undefined;
});

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Runs a command with a hard SIGKILL after `killMs`; stderr is kept (bounded) for the failure message. */
function run(cmd: string, args: string[], killMs: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      if (stderr.length < 64 * 1024) stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), killMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr });
    });
  });
}

describe.skipIf(FFMPEG.skip || FFPROBE.skip || MEDIA.skip)(`ffmpeg as the player${FFMPEG.note || FFPROBE.note || MEDIA.note}`, () => {
  it('plays 8 s of the live channel through the edge: video + audio, one middleware call', async () => {
    origin = await startTestOrigin({ mediaDir: MEDIA.path });
    mw = await startTestMiddleware();
    edge = await startEdge({ upstream: { url: origin.url }, backend: { url: `${mw.url}/auth` } });
    tmp = await mkdtemp(path.join(os.tmpdir(), 'edge-ffmpeg-'));
    const out = path.join(tmp, 'out.ts');

    const result = await run(
      FFMPEG.path,
      ['-hide_banner', '-nostdin', '-loglevel', 'error', '-i', `${edge.url}/play/real/index.m3u8?token=t`, '-t', '8', '-c', 'copy', '-y', out],
      FFMPEG_KILL_MS,
    );
    expect(result, result.stderr).toMatchObject({ code: 0, signal: null });
    expect((await stat(out)).size).toBeGreaterThan(0);

    const streams = await ffprobeStreams(out);
    expect(streams.map((s) => s.codec_type).sort()).toEqual(['audio', 'video']);
    expect(streams.find((s) => s.codec_type === 'video')?.codec_name).toBe('h264');
    expect(streams.find((s) => s.codec_type === 'audio')?.codec_name).toBe('aac');

    // Many requests went through the edge: playlist (re)loads and segments …
    const playlists = origin.requests.filter((r) => r.path.endsWith('.m3u8'));
    const segments = origin.requests.filter((r) => r.path.endsWith('.ts'));
    expect(origin.requests.length).toBeGreaterThan(3);
    expect(playlists.length).toBeGreaterThanOrEqual(1);
    expect(segments.length).toBeGreaterThanOrEqual(4); // 8 s of 2 s segments
    for (const r of origin.requests) expect(r.url).not.toContain('edge_session');
    // … and the middleware was asked exactly once, for the first one.
    const asked = mw.requests.map((r) => `${String(r.headers['x-real-path'])}?${r.rawQuery}`);
    expect(asked, `middleware calls: ${asked.join(', ')}`).toHaveLength(1);
    expect(mw.requests[0]!.rawQuery).toBe('token=t');
    expect(mw.requests[0]!.headers['x-real-path']).toBe('/play/real/index.m3u8');
    expect(edge.app.sessions.store.size).toBe(1);
    expect(await edge.metric('edge_auth_decisions_total', { result: 'allow', source: 'cache' })).toBe(origin.requests.length - 1);
  });
});
