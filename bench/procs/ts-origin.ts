// The MPEG-TS live origin of scenario (e), in its own process (on the load core). nginx cannot
// generate a live stream, so this stands in for Astra's HTTP MPEG-TS output: GET /play/<channel>
// answers an endless body at a fixed bitrate per connection, starting at the channel's live
// position in a looped real TS recording (whole 188-byte packets). Like a live source it never
// waits: when a connection's socket buffer is full, that interval's bytes are skipped and counted.
// It counts its open connections, in all and per channel (GET /__stats; GET /__reset restarts
// the maxima and byte counts).
//   node --import tsx bench/procs/ts-origin.ts <ts file> <bits per second>
// Prints {"port": N} when listening; exits when stdin closes.
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';

const PACKET = 188;
const TICK_MS = 50;
/** A connection whose unsent buffer exceeds this is backpressured: its bytes are skipped. */
const BACKLOG_CAP = 512 * 1024;
const MAX_CONNECTIONS = 5_000;
const MAX_STREAM_MS = 15 * 60_000;

const ts = readFileSync(process.argv[2]!);
const bytesPerSecond = Number(process.argv[3]) / 8;
const started = Date.now();

interface Viewer {
  res: ServerResponse;
  channel: string;
  startedAt: number;
  /** Absolute byte position in the looped stream where this viewer started. */
  origin: number;
  due: number;
}

const viewers = new Set<Viewer>();
const stats = {
  open: 0,
  maxOpen: 0,
  total: 0,
  bytesWritten: 0,
  bytesSkipped: 0,
  /** Per channel: open connections now, and the most at once since the last reset. */
  channels: {} as Record<string, { open: number; maxOpen: number }>,
};

/** The channel's live position: every channel plays the same recording from the same clock, offset per channel. */
function livePosition(channel: string, now: number): number {
  let offset = 0;
  for (let i = 0; i < channel.length; i++) offset = (offset * 31 + channel.charCodeAt(i)) % 1_000;
  const bytes = Math.floor(((now - started) / 1000) * bytesPerSecond) + offset * 10 * PACKET;
  return bytes - (bytes % PACKET);
}

function slice(from: number, length: number): Buffer {
  const start = from % ts.length;
  if (start + length <= ts.length) return ts.subarray(start, start + length);
  return Buffer.concat([ts.subarray(start), ts.subarray(0, length - (ts.length - start))]);
}

function tick(): void {
  const now = Date.now();
  for (const v of viewers) {
    if (now - v.startedAt > MAX_STREAM_MS) {
      v.res.end();
      continue;
    }
    const target = Math.floor(((now - v.startedAt) / 1000) * bytesPerSecond);
    let length = target - v.due;
    length -= length % PACKET;
    if (length <= 0) continue;
    if (v.res.writableLength > BACKLOG_CAP) {
      stats.bytesSkipped += length;
    } else {
      v.res.write(slice(v.origin + v.due, length));
      stats.bytesWritten += length;
    }
    v.due += length;
  }
}

const server = createServer((req, res) => {
  const path = (req.url ?? '/').split('?', 1)[0]!;
  if (path === '/__stats' || path === '/__reset' || path === '/__ping') {
    if (path === '/__reset') {
      stats.maxOpen = stats.open;
      stats.total = 0;
      stats.bytesWritten = 0;
      stats.bytesSkipped = 0;
      for (const c of Object.values(stats.channels)) c.maxOpen = c.open;
    }
    const body = JSON.stringify(stats);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  const m = /^\/play\/([^/]+)\/?$/.exec(path);
  if (m === null || viewers.size >= MAX_CONNECTIONS) {
    res.writeHead(m === null ? 404 : 503, { 'content-length': 0 });
    res.end();
    return;
  }
  const channel = m[1]!;
  res.writeHead(200, { 'content-type': 'video/mp2t', 'cache-control': 'no-cache' });
  const now = Date.now();
  const viewer: Viewer = { res, channel, startedAt: now, origin: livePosition(channel, now), due: 0 };
  viewers.add(viewer);
  stats.open++;
  stats.total++;
  const perChannel = (stats.channels[channel] ??= { open: 0, maxOpen: 0 });
  perChannel.open++;
  perChannel.maxOpen = Math.max(perChannel.maxOpen, perChannel.open);
  stats.maxOpen = Math.max(stats.maxOpen, stats.open);
  res.once('close', () => {
    viewers.delete(viewer);
    stats.open--;
    perChannel.open--;
  });
});

setInterval(tick, TICK_MS);
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`));
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
