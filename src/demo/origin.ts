/**
 * The demo's simulated Astra "HTTP Play" origin, on 127.0.0.1 (an ephemeral
 * port): every channel name serves the one live source.
 *
 *   GET /play/<ch>/index.m3u8   live media playlist (sliding window)
 *   GET /play/<ch>/<seg>.ts     a segment it lists
 *   GET /play/<ch>              HTTP MPEG-TS: the newest segment, then each
 *                               new one back to back, until the client leaves;
 *                               no Content-Length, the body ends with the
 *                               connection (as Astra sends it)
 *
 * The source is set once it is live (ffmpeg takes a few seconds); until then
 * the origin answers 503.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { startLoopbackServer } from './serve.js';
import { SEGMENT_NAME, type LiveSource } from './live.js';

const PLAYLIST_TYPE = 'application/vnd.apple.mpegurl';
const TS_TYPE = 'video/MP2T';
const CHANNEL_PATH = /^\/play\/([A-Za-z0-9_.-]+)(\/[^/]*)?$/;
/** A new segment appears every 2 s; looking four times as often keeps the MPEG-TS stream's gaps short. */
const STREAM_POLL_MS = 500;
/** Bytes per write of the MPEG-TS stream: whole TS packets (348 × 188). */
const STREAM_WRITE_BYTES = 348 * 188;

export interface DemoOrigin {
  readonly url: string;
  setSource(source: LiveSource): void;
  /** Ends every response (open MPEG-TS streams too) and stops listening. Idempotent. */
  close(): Promise<void>;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves true on 'drain', false when the response closed first. */
function drained(res: ServerResponse): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (ok: boolean): void => {
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(ok);
    };
    const onDrain = (): void => done(true);
    const onClose = (): void => done(false);
    res.once('drain', onDrain);
    res.once('close', onClose);
  });
}

/** Writes `bytes` with backpressure: a slow player slows this loop, memory stays flat. False when the client left. */
async function writeAll(res: ServerResponse, bytes: Buffer): Promise<boolean> {
  for (let off = 0; off < bytes.length; off += STREAM_WRITE_BYTES) {
    if (res.destroyed) return false;
    if (!res.write(bytes.subarray(off, off + STREAM_WRITE_BYTES)) && !(await drained(res))) return false;
  }
  return !res.destroyed;
}

export async function startDemoOrigin(): Promise<DemoOrigin> {
  let source: LiveSource | undefined;
  let closing = false;

  function text(res: ServerResponse, status: number, body: string): void {
    res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) }).end(body);
  }

  function send(req: IncomingMessage, res: ServerResponse, type: string, body: Buffer): void {
    res.writeHead(200, { 'content-type': type, 'content-length': body.length, 'cache-control': type === PLAYLIST_TYPE ? 'no-cache' : 'max-age=60' });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  async function stream(req: IncomingMessage, res: ServerResponse, live: LiveSource): Promise<void> {
    res.setHeader('content-type', TS_TYPE);
    res.setHeader('cache-control', 'no-cache');
    res.setHeader('connection', 'close');
    // Neither header: Node then frames the body by closing the connection.
    res.removeHeader('content-length');
    res.removeHeader('transfer-encoding');
    res.writeHead(200);
    if (req.method === 'HEAD') return void res.end();
    res.flushHeaders();
    let next: number | undefined;
    while (!res.destroyed && !closing) {
      const w = live.window();
      const last = w === undefined ? -1 : w.firstSequence + w.segments.length - 1;
      // Start at the newest segment; jump to it again if the client fell out of the window.
      if (w !== undefined && (next === undefined || next < w.firstSequence || next > last + 1)) next = last;
      if (w !== undefined && next !== undefined && next <= last) {
        const bytes = await live.segment(w.segments[next - w.firstSequence]!);
        next++;
        if (bytes !== undefined && !(await writeAll(res, bytes))) return;
        continue;
      }
      await sleep(STREAM_POLL_MS);
    }
    res.end();
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') return text(res, 405, 'method not allowed\n');
    const path = (req.url ?? '/').split('?')[0]!;
    const m = CHANNEL_PATH.exec(path);
    if (m === null) return text(res, 404, 'not found: try /play/news/index.m3u8\n');
    const live = source;
    if (live === undefined) return text(res, 503, 'the live channel is starting\n');
    const rest = m[2];
    if (rest === undefined) return stream(req, res, live);
    if (rest === '/index.m3u8') {
      const playlist = live.playlist();
      return playlist === undefined ? text(res, 503, 'no segment yet\n') : send(req, res, PLAYLIST_TYPE, Buffer.from(playlist));
    }
    const name = rest.slice(1);
    const bytes = SEGMENT_NAME.test(name) ? await live.segment(name) : undefined;
    return bytes === undefined ? text(res, 404, 'no such segment (it may have left the live window)\n') : send(req, res, TS_TYPE, bytes);
  }

  const server = await startLoopbackServer(
    (req, res) => {
      handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) text(res, 500, `${(err as Error).message}\n`);
        else res.destroy();
      });
    },
    () => (closing = true),
  );
  return {
    url: server.url,
    setSource(next) {
      source = next;
    },
    close: () => server.close(),
  };
}
