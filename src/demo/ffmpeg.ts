/**
 * Real, playable live media for the demo: ONE ffmpeg child encodes a test
 * pattern and a 440 Hz tone in real time (-re) into a live HLS window in a
 * temporary directory; every channel name is served from it. The playlist
 * is read by one poller (not per request): the origin answers from memory
 * and only segment bytes come from disk.
 *
 * ffmpeg writes a live playlist atomically (to `index.m3u8.tmp`, then a
 * rename) and lists a segment only once it is complete, so whatever the
 * poller reads is consistent. `delete_segments` keeps the directory small;
 * a segment stays on disk one window position after it leaves the list
 * (hls_delete_threshold), long enough for a player that just read it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseLiveWindow, SEGMENT_NAME, SEGMENT_SECONDS, type LiveSource, type LiveWindow } from './live.js';

/** Segments ffmpeg keeps in the playlist (-hls_list_size). */
const HLS_LIST_SIZE = 6;
/** Segments listed before the channel counts as ready: ffprobe and players start at once. */
const READY_SEGMENTS = 2;
/** x264 start-up plus two real-time segments take ~4–5 s; past this something is wrong. */
const READY_TIMEOUT_MS = 20_000;
/** How often the playlist is re-read: well under a segment, so the window is never stale for long. */
const POLL_MS = 200;
/** After SIGTERM, ffmpeg gets this long to exit before SIGKILL. */
const KILL_GRACE_MS = 1500;
/** ffmpeg's last words kept for an error message. */
const STDERR_TAIL_BYTES = 2000;

export interface FfmpegLive extends LiveSource {
  readonly kind: 'ffmpeg';
  /** The temporary directory ffmpeg writes into (removed by close()). */
  readonly dir: string;
  readonly pid: number;
  /** Last resort for process 'exit' (a crash): SIGKILL and remove the directory, synchronously. */
  killNow(): void;
}

export type FfmpegStart = { ok: true; live: FfmpegLive } | { ok: false; missing: boolean; reason: string };

export interface FfmpegOptions {
  /** ffmpeg is running: the first segments take a few seconds. */
  readonly onSpawned: () => void;
  /** Called once if ffmpeg exits while the channel is live and close() was not called. */
  readonly onUnexpectedExit: (description: string) => void;
}

export function ffmpegArgs(dir: string): string[] {
  return [
    '-hide_banner', '-loglevel', 'error', '-nostdin',
    '-re', '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25',
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    // yuv420p: what every player decodes; a keyframe every 50 frames exactly, so each segment is 2 s and starts with one.
    '-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-pix_fmt', 'yuv420p', '-g', '50', '-sc_threshold', '0',
    '-c:a', 'aac',
    '-f', 'hls', '-hls_time', String(SEGMENT_SECONDS), '-hls_list_size', String(HLS_LIST_SIZE), '-hls_flags', 'delete_segments+omit_endlist',
    '-hls_segment_filename', join(dir, 'seg-%d.ts'),
    join(dir, 'index.m3u8'),
  ];
}

function describeExit(code: number | null, signal: NodeJS.Signals | null, stderr: string): string {
  const how = signal !== null ? `killed by ${signal}` : `exit code ${code}`;
  const said = stderr.trim().split('\n').slice(-3).join(' | ');
  return said === '' ? how : `${how}: ${said}`;
}

/** Starts ffmpeg and waits until its playlist lists {@link READY_SEGMENTS} segments. Never throws for ffmpeg's own failures. */
export async function startFfmpegLive(options: FfmpegOptions): Promise<FfmpegStart> {
  const dir = await mkdtemp(join(tmpdir(), 'astra-auth-edge-demo-'));
  // Not detached: a Ctrl-C in the terminal reaches ffmpeg too, so it cannot outlive an interrupted demo.
  const child: ChildProcess = spawn('ffmpeg', ffmpegArgs(dir), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (d: string) => {
    stderr = (stderr + d).slice(-STDERR_TAIL_BYTES);
  });
  const spawned = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
    child.once('spawn', () => resolve(undefined));
    child.once('error', (err: NodeJS.ErrnoException) => resolve(err));
  });
  if (spawned !== undefined) {
    await rm(dir, { recursive: true, force: true });
    return { ok: false, missing: spawned.code === 'ENOENT', reason: `cannot run ffmpeg: ${spawned.message}` };
  }
  options.onSpawned();

  let exited: string | undefined;
  let closing = false;
  let text: string | undefined;
  let window: LiveWindow | undefined;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = describeExit(code, signal, stderr);
      resolve();
    });
  });

  async function poll(): Promise<void> {
    try {
      const next = await readFile(join(dir, 'index.m3u8'), 'utf8');
      if (next !== text) {
        text = next;
        window = parseLiveWindow(next);
      }
    } catch {
      // Not written yet, or mid-rename: keep the last good one.
    }
  }
  let polling = false;
  const poller = setInterval(() => {
    if (polling) return;
    polling = true;
    void poll().finally(() => (polling = false));
  }, POLL_MS);

  const stop = async (): Promise<void> => {
    closing = true;
    clearInterval(poller);
    if (exited === undefined) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
      await exit;
      clearTimeout(killer);
    }
    await rm(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + READY_TIMEOUT_MS;
  while ((window?.segments.length ?? 0) < READY_SEGMENTS && exited === undefined && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  if ((window?.segments.length ?? 0) < READY_SEGMENTS) {
    const reason = exited ?? `no segments after ${READY_TIMEOUT_MS / 1000} s`;
    await stop();
    return { ok: false, missing: false, reason: `ffmpeg failed (${reason})` };
  }

  void exit.then(() => {
    if (!closing) options.onUnexpectedExit(exited ?? 'exited');
  });
  let closed: Promise<void> | undefined;
  return {
    ok: true,
    live: {
      kind: 'ffmpeg',
      dir,
      pid: child.pid!,
      playlist: () => text,
      window: () => window,
      async segment(name) {
        if (!SEGMENT_NAME.test(name)) return undefined;
        try {
          return await readFile(join(dir, name));
        } catch {
          return undefined; // deleted: it left the window
        }
      },
      close() {
        closed ??= stop();
        return closed;
      },
      killNow() {
        if (exited === undefined) child.kill('SIGKILL');
        rmSync(dir, { recursive: true, force: true });
      },
    },
  };
}
