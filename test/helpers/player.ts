// A minimal HLS player for tests: fetches a playlist, resolves every URI it lists the way players
// do (relative to the playlist URL), and follows them, recording each request's status.
import { httpRequest, type HttpResult } from './client.js';

export interface PlayerStep {
  readonly url: string;
  readonly status: number;
  readonly bytes: number;
}

/** URIs a player would follow: non-tag lines and URI="…" attributes, resolved against `base`. */
export function playlistUris(text: string, base: string): string[] {
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    if (line.startsWith('#')) {
      for (const m of line.matchAll(/URI="([^"]*)"/g)) out.push(new URL(m[1]!, base).toString());
      continue;
    }
    out.push(new URL(line, base).toString());
  }
  return out;
}

/**
 * Plays like a live HLS client: playlist → its URIs (playlists are followed recursively,
 * breadth-first) until `maxRequests` requests were made. Every request is recorded.
 */
export async function playHls(startUrl: string, maxRequests: number, headers?: Record<string, string>): Promise<PlayerStep[]> {
  const steps: PlayerStep[] = [];
  const queue = [startUrl];
  while (queue.length > 0 && steps.length < maxRequests) {
    const url = queue.shift()!;
    const res: HttpResult = await httpRequest(url, { headers });
    steps.push({ url, status: res.status, bytes: res.body.length });
    if (res.status === 200 && url.split('?')[0]!.endsWith('.m3u8')) {
      queue.push(...playlistUris(res.body.toString('utf8'), url));
      // Live playlists are reloaded: queue it again so playback goes on past the first window.
      queue.push(url);
    }
  }
  return steps;
}

/**
 * playHls for a wall-clock duration: requests spaced by `pauseMs` until `durationMs` passed (or
 * `maxRequests`, a hard bound). Playlists are reloaded as a live player does.
 */
export async function playHlsFor(startUrl: string, durationMs: number, opts: { pauseMs?: number; maxRequests?: number } = {}): Promise<PlayerStep[]> {
  const steps: PlayerStep[] = [];
  const queue = [startUrl];
  const deadline = Date.now() + durationMs;
  const max = opts.maxRequests ?? 2000;
  while (queue.length > 0 && steps.length < max && Date.now() < deadline) {
    const url = queue.shift()!;
    const res: HttpResult = await httpRequest(url);
    steps.push({ url, status: res.status, bytes: res.body.length });
    if (res.status === 200 && url.split('?')[0]!.endsWith('.m3u8')) {
      const text = res.body.toString('utf8');
      queue.push(...playlistUris(text, url));
      // A live media playlist is reloaded; a master playlist is not (players load it once).
      if (!text.includes('#EXT-X-STREAM-INF')) queue.push(url);
    }
    await new Promise((r) => setTimeout(r, opts.pauseMs ?? 50));
  }
  return steps;
}
