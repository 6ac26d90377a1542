// The HLS viewers of scenario (f), in one process on the load core: N players of one live channel.
// Each opens the master playlist with its own token, follows the variant URI, then polls the media
// playlist every target duration / 2 and downloads each new segment once (starting with the newest),
// as a live player does. Through the edge the URIs already carry the session marker; through nginx
// the player appends its token to every URI (how token-in-URL nginx setups work: `appendToken`).
// Prints one JSON line with the result; ends after `durationS` at the latest.
//   node --import tsx bench/procs/hls-viewers.ts '<json options>'
import { Agent, get } from 'node:http';

interface Options {
  base: string;
  channel: string;
  viewers: number;
  durationS: number;
  rampS: number;
  appendToken: boolean;
  tokenPrefix: string;
}

const o = JSON.parse(process.argv[2]!) as Options;
const t0 = Date.now();
const deadline = t0 + o.durationS * 1000;
const REQUEST_TIMEOUT_MS = 15_000;
const agent = new Agent({ keepAlive: true, maxSockets: 4 * o.viewers, maxFreeSockets: 4 * o.viewers });

const stats = {
  viewersStarted: 0,
  viewersFailed: 0,
  playlists: 0,
  playlistErrors: 0,
  segments: 0,
  segmentErrors: 0,
  bytes: 0,
  /** Segments whose download took longer than one target duration (the player would stall). */
  lateSegments: 0,
  statuses: {} as Record<string, number>,
};
const segmentMs: number[] = [];
let stopping = false;

/** GET `url`; the body is kept only when `keep` (playlists), otherwise just counted (segments). */
function fetchBody(url: string, keep = true): Promise<{ status: number; body: Buffer; length: number; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = get(url, { agent, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      let length = 0;
      res.on('data', (c: Buffer) => {
        length += c.length;
        if (keep) chunks.push(c);
      });
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        stats.statuses[status] = (stats.statuses[status] ?? 0) + 1;
        resolve({ status, body: Buffer.concat(chunks), length, ms: performance.now() - started });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

function withToken(url: URL, token: string): string {
  if (o.appendToken && !url.searchParams.has('token') && url.search === '') url.search = `?token=${token}`;
  return url.toString();
}

function parseMedia(text: string): { sequence: number; targetS: number; uris: string[] } {
  let sequence = 0;
  let targetS = 2;
  const uris: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#EXT-X-MEDIA-SEQUENCE:')) sequence = Number(line.slice(22));
    else if (line.startsWith('#EXT-X-TARGETDURATION:')) targetS = Number(line.slice(22));
    else if (line !== '' && !line.startsWith('#')) uris.push(line);
  }
  return { sequence, targetS, uris };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function viewer(index: number): Promise<void> {
  const token = `${o.tokenPrefix}-${index}`;
  const masterUrl = new URL(`${o.base}/play/${o.channel}/master.m3u8?token=${token}`);
  const master = await fetchBody(masterUrl.toString());
  const variant = master.body.toString().split('\n').map((l) => l.trim()).find((l) => l !== '' && !l.startsWith('#'));
  if (master.status !== 200 || variant === undefined) throw new Error(`master playlist: ${master.status}`);
  const mediaUrl = withToken(new URL(variant, masterUrl), token);
  let lastFetched = -1;
  stats.viewersStarted++;
  while (!stopping && Date.now() < deadline) {
    const pollStarted = Date.now();
    let targetS = 2;
    try {
      const pl = await fetchBody(mediaUrl);
      stats.playlists++;
      if (pl.status !== 200) throw new Error(`playlist ${pl.status}`);
      const media = parseMedia(pl.body.toString());
      targetS = media.targetS;
      const newest = media.sequence + media.uris.length - 1;
      const from = lastFetched < 0 ? newest : Math.max(lastFetched + 1, media.sequence);
      for (let seq = from; seq <= newest && !stopping && Date.now() < deadline; seq++) {
        try {
          const seg = await fetchBody(withToken(new URL(media.uris[seq - media.sequence]!, mediaUrl), token), false);
          if (seg.status !== 200) throw new Error(`segment ${seg.status}`);
          stats.segments++;
          stats.bytes += seg.length;
          segmentMs.push(seg.ms);
          if (seg.ms > targetS * 1000) stats.lateSegments++;
        } catch {
          stats.segmentErrors++;
        }
        lastFetched = seq;
      }
    } catch {
      stats.playlistErrors++;
    }
    await sleep(Math.max(50, (targetS * 1000) / 2 - (Date.now() - pollStarted)));
  }
}

const all: Promise<void>[] = [];
for (let i = 0; i < o.viewers; i++) {
  all.push(
    sleep((i / o.viewers) * o.rampS * 1000).then(() =>
      viewer(i).catch(() => {
        stats.viewersFailed++;
      }),
    ),
  );
}
const hardStop = setTimeout(() => finish(), (o.durationS + 20) * 1000);
await Promise.all(all);
finish();

function finish(): void {
  if (stopping) return;
  stopping = true;
  clearTimeout(hardStop);
  segmentMs.sort((a, b) => a - b);
  const pct = (p: number): number | null => (segmentMs.length === 0 ? null : segmentMs[Math.min(segmentMs.length - 1, Math.floor((p / 100) * segmentMs.length))]!);
  const elapsedS = (Date.now() - t0) / 1000;
  process.stdout.write(`VIEWERS_JSON ${JSON.stringify({ ...stats, elapsedS, bytesPerSecond: stats.bytes / elapsedS, segmentP50Ms: pct(50), segmentP99Ms: pct(99) })}\n`);
  agent.destroy();
  setTimeout(() => process.exit(0), 100);
}
