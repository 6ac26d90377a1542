// A fake Cesbo Astra "HTTP Play" origin for integration tests of the edge: HLS master/media
// playlists with every URI style the edge must rewrite, deterministic segment bytes the test can
// recompute (expectedBytes), an endless paced MPEG-TS stream per channel, an optional live window
// over real ffmpeg media, per-request fault injection, and full request/connection bookkeeping.

import http from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { DEFAULT_SEGMENT_BYTES, expectedBytes, syntheticTsPackets } from './bytes.js';
import { destroyAfterFlush, parseRange, writeInPieces } from './http-send.js';
import type { PlaylistSegment } from './playlist.js';
import { M3U8_CONTENT_TYPE, liveWindowPlaylist, liveWindowSequence, masterPlaylist, parseMediaSegments, syntheticMediaPlaylist } from './playlist.js';
import { loopingPackets, pumpTsStream } from './ts-stream.js';
import type { TsStreamRecord } from './ts-stream.js';
import { sleep } from './wait.js';

export { expectedBytes } from './bytes.js';
export type { TsStreamRecord } from './ts-stream.js';

export interface TestOriginOptions {
  /** Segment duration / EXT-X-TARGETDURATION of synthetic media playlists, seconds (default 2). */
  targetDurationS?: number;
  /** Segments per live window (default 3; 5 with `mediaDir`, enough for ffmpeg/players to start). */
  windowSize?: number;
  /** Size of every synthetic file except `key.bin` (always 16 bytes). Default 64 KiB. */
  segmentBytes?: number;
  /** Emit `#EXT-X-KEY:METHOD=AES-128,URI="key.bin"` (default true). */
  key?: boolean;
  /** Emit `#EXT-X-MAP:URI="init.mp4"` (default true). */
  map?: boolean;
  /** Real media mode: a directory from ensureTestMedia() (index.m3u8 + segments). Then
   * `/play/<ch>/index.m3u8` is a live media playlist (no master) sliding over its segments,
   * served as `/play/<ch>/seg-NNN.ts`, and `/play/<ch>` streams the segments' TS bytes in a loop. */
  mediaDir?: string;
  /** Pace of the continuous MPEG-TS stream; 0 = as fast as the client reads (default 256 KiB/s). */
  tsBytesPerSecond?: number;
  /** TS packets per write (default 7). */
  tsChunkPackets?: number;
  /** The origin ends a TS stream by itself after this long (default 120 s): keeps it bounded. */
  tsMaxDurationMs?: number;
  /** 'close': no Content-Length / Transfer-Encoding, body ends with the connection (Astra-like,
   * default). 'chunked': Transfer-Encoding: chunked. */
  tsFraming?: 'close' | 'chunked';
  /** Number of writes a file/playlist body is split into (default 4). */
  bodyChunks?: number;
  /** Clock for the live timeline (default Date.now). */
  now?: () => number;
  /** Wall time at which media sequence 0 starts (default: now() at start). */
  epochMs?: number;
  faults?: { match: OriginRequestMatcher; fault: OriginFault }[];
}

export interface OriginFault {
  /** Wait this long before doing anything (then apply the rest of the fault, or answer normally). */
  delayHeadersMs?: number;
  /** Destroy the socket without answering. */
  resetBeforeHeaders?: boolean;
  /** Send headers and part of the body (`true` = half of a file, 64 KiB of a TS stream; a number =
   * that many body bytes), then destroy the socket. */
  resetMidBody?: boolean | number;
  /** Use TCP RST instead of a normal close for the two faults above. */
  rst?: boolean;
  /** Answer with this status and a short text body instead of the real response. */
  status?: number;
  /** Answer with this body instead of the real response (status `status` or 200; Content-Type from
   * the path, e.g. an HLS playlist for `.m3u8`, unless `headers` sets one): crafted playlists. */
  body?: string | Buffer;
  /** Extra response headers (with `status`, or added to the normal response). */
  headers?: Record<string, string>;
  /** Announce this Content-Length instead of the body's real length, then send the real body:
   * shorter than the body = extra bytes after the response; longer = the connection closes short. */
  declaredLength?: number;
  /** Apply to this many matching requests, then forget the fault (default: unlimited). */
  times?: number;
}

export interface OriginRequestRecord {
  method: string;
  /** Request target exactly as received (path + query). */
  url: string;
  /** `url` without the query string, not decoded. */
  path: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  remoteAddress: string;
  /** Client port of the connection that carried the request: tells connections apart. */
  remotePort: number;
  at: number;
  /** When the response closed (complete or cut short); null while it is open. */
  closedAt: number | null;
  /** True when the whole response was handed to the socket before it closed. */
  finished: boolean;
  /** When the connection that carried the request closed; null while it is open. */
  connectionClosedAt: number | null;
}

/** string: exact `path`; RegExp: tested against `url`; function: anything. */
export type OriginRequestMatcher = string | RegExp | ((req: OriginRequestRecord) => boolean);

export interface TestOrigin {
  readonly url: string;
  readonly port: number;
  readonly requests: OriginRequestRecord[];
  readonly streams: TsStreamRecord[];
  activeConnections(): number;
  /** Adds a fault; returns a function removing it. First matching fault wins. */
  setFault(match: OriginRequestMatcher, fault: OriginFault): () => void;
  clearFaults(): void;
  /** Clears `requests` and `streams` (running streams keep updating their detached records). */
  reset(): void;
  /** Current EXT-X-MEDIA-SEQUENCE of the media playlists (synthetic, or the mediaDir live window). */
  mediaSequence(): number;
  /** Exact bytes this origin serves (200, no range) for a file path, e.g. `/play/ch/v1/seg-3.ts`. */
  expectedBytes(path: string): Buffer;
  /** Destroys all sockets and stops listening. Idempotent. */
  close(): Promise<void>;
}

interface RealMedia {
  /** URIs are the served names (`.ts`). */
  segments: PlaylistSegment[];
  files: Map<string, Buffer>;
  tsLoop: Buffer;
}

/** Reads a generated channel; segments stored as `.m2t` (see media.ts) are served as `.ts`. */
async function loadMedia(dir: string): Promise<RealMedia> {
  const listed = parseMediaSegments(await readFile(path.join(dir, 'index.m3u8'), 'utf8'));
  if (listed.length === 0) throw new Error(`startTestOrigin: no segments in ${dir}/index.m3u8`);
  const files = new Map<string, Buffer>();
  const segments: PlaylistSegment[] = [];
  for (const s of listed) {
    const name = path.basename(s.uri.split('?')[0] ?? s.uri);
    const served = name.replace(/\.m2t$/, '.ts');
    files.set(served, await readFile(path.join(dir, name)));
    segments.push({ durationS: s.durationS, uri: served });
  }
  return { segments, files, tsLoop: Buffer.concat([...files.values()]) };
}

function contentTypeOf(p: string): string {
  if (p.endsWith('.m3u8')) return M3U8_CONTENT_TYPE;
  if (p.endsWith('.ts')) return 'video/mp2t';
  if (p.endsWith('.mp4') || p.endsWith('.m4s')) return 'video/mp4';
  return 'application/octet-stream';
}

function matches(m: OriginRequestMatcher, r: OriginRequestRecord): boolean {
  if (typeof m === 'string') return r.path === m;
  if (m instanceof RegExp) return m.test(r.url);
  return m(r);
}

export async function startTestOrigin(opts: TestOriginOptions = {}): Promise<TestOrigin> {
  const now = opts.now ?? Date.now;
  const epochMs = opts.epochMs ?? now();
  const targetDurationS = opts.targetDurationS ?? 2;
  const segmentBytes = opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
  const bodyChunks = opts.bodyChunks ?? 4;
  const media = opts.mediaDir !== undefined ? await loadMedia(opts.mediaDir) : null;
  const faults: { match: OriginRequestMatcher; fault: OriginFault; left: number }[] = (opts.faults ?? []).map((f) => ({
    ...f,
    left: f.fault.times ?? Infinity,
  }));
  const requests: OriginRequestRecord[] = [];
  const streams: TsStreamRecord[] = [];
  const sockets = new Set<Socket>();
  /** Requests per open connection, to stamp connectionClosedAt when it closes. */
  const socketRecords = new Map<Socket, OriginRequestRecord[]>();
  let closing = false;
  let port = 0;

  const mediaSequence = (): number =>
    media ? liveWindowSequence(media.segments, now() - epochMs) : Math.max(0, Math.floor((now() - epochMs) / (targetDurationS * 1000)));
  const sizeOf = (p: string): number => (p.endsWith('/key.bin') ? 16 : segmentBytes);
  const fileBody = (p: string): Buffer | null => {
    if (!media) return expectedBytes(p, sizeOf(p));
    const name = /^\/play\/[^/]+\/([A-Za-z0-9._-]+)$/.exec(p)?.[1];
    return name !== undefined ? (media.files.get(name) ?? null) : null;
  };

  function takeFault(r: OriginRequestRecord): OriginFault | null {
    const i = faults.findIndex((f) => matches(f.match, r));
    const f = faults[i];
    if (!f) return null;
    if (--f.left <= 0) faults.splice(i, 1);
    return f.fault;
  }

  async function sendBody(req: IncomingMessage, res: ServerResponse, status: number, headers: Record<string, string>, full: Buffer, fault: OriginFault | null): Promise<void> {
    let body = full;
    const range = status === 200 ? parseRange(req.headers.range, full.length) : null;
    if (range === 'unsatisfiable') {
      res.writeHead(416, { 'content-range': `bytes */${full.length}`, 'content-length': '0' }).end();
      return;
    }
    if (range) {
      status = 206;
      body = full.subarray(range.start, range.end + 1);
      headers['content-range'] = `bytes ${range.start}-${range.end}/${full.length}`;
    }
    res.writeHead(status, { ...headers, ...fault?.headers, 'accept-ranges': 'bytes', 'content-length': String(fault?.declaredLength ?? body.length) });
    if (req.method === 'HEAD') return void res.end();
    if (fault?.declaredLength !== undefined && fault.declaredLength !== body.length) {
      // Node would refuse to write more than the declared length through `res`: the raw socket does.
      res.flushHeaders();
      req.socket.write(body);
      if (fault.declaredLength > body.length) return destroyAfterFlush(res, req.socket, fault.rst);
      return;
    }
    if (fault?.resetMidBody !== undefined && fault.resetMidBody !== false) {
      const cut = fault.resetMidBody === true ? Math.floor(body.length / 2) : Math.min(fault.resetMidBody, body.length);
      res.flushHeaders();
      await writeInPieces(res, body.subarray(0, cut), bodyChunks);
      return destroyAfterFlush(res, req.socket, fault.rst);
    }
    if (await writeInPieces(res, body, bodyChunks)) res.end();
  }

  async function streamTs(req: IncomingMessage, res: ServerResponse, channel: string, fault: OriginFault | null): Promise<void> {
    res.setHeader('content-type', 'video/mp2t');
    res.setHeader('cache-control', 'no-cache');
    for (const [k, v] of Object.entries(fault?.headers ?? {})) res.setHeader(k, v);
    if ((opts.tsFraming ?? 'close') === 'close') {
      res.setHeader('connection', 'close');
      res.removeHeader('content-length');
      res.removeHeader('transfer-encoding');
    }
    res.writeHead(200);
    if (req.method === 'HEAD') return void res.end();
    res.flushHeaders();
    const record: TsStreamRecord = { id: streams.length + 1, channel, url: req.url ?? '', startedAt: Date.now(), bytesWritten: 0, drainWaits: 0, closedAt: null, closedByClient: false, endReason: null };
    streams.push(record);
    const reset = fault?.resetMidBody;
    await pumpTsStream(req, res, {
      record,
      packets: media ? loopingPackets(media.tsLoop) : syntheticTsPackets,
      packetsPerWrite: opts.tsChunkPackets ?? 7,
      bytesPerSecond: opts.tsBytesPerSecond ?? 256 * 1024,
      maxDurationMs: opts.tsMaxDurationMs ?? 120_000,
      resetAfterBytes: reset === true ? 64 * 1024 : typeof reset === 'number' ? reset : Infinity,
      rst: fault?.rst ?? false,
      isShuttingDown: () => closing,
    });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const record: OriginRequestRecord = { method: req.method ?? '', url, path: url.split('?')[0] ?? url, headers: req.headers, rawHeaders: req.rawHeaders, remoteAddress: req.socket.remoteAddress ?? '', remotePort: req.socket.remotePort ?? 0, at: Date.now(), closedAt: null, finished: false, connectionClosedAt: null };
    requests.push(record);
    socketRecords.get(req.socket)?.push(record);
    res.once('close', () => {
      record.closedAt = Date.now();
      record.finished = res.writableFinished;
    });
    const fault = takeFault(record);
    if (fault?.delayHeadersMs) {
      await sleep(fault.delayHeadersMs);
      if (res.destroyed || req.socket.destroyed || closing) return;
    }
    if (fault?.resetBeforeHeaders) return void (fault.rst ? req.socket.resetAndDestroy() : req.socket.destroy());
    const text = (status: number, msg: string): Promise<void> => sendBody(req, res, status, { 'content-type': 'text/plain' }, Buffer.from(`${msg}\n`), fault);
    if (fault?.body !== undefined) return sendBody(req, res, fault.status ?? 200, { 'content-type': contentTypeOf(record.path) }, Buffer.from(fault.body), fault);
    if (fault?.status !== undefined) return text(fault.status, `fault ${fault.status}`);
    if (req.method !== 'GET' && req.method !== 'HEAD') return text(405, 'method not allowed');
    const m = /^\/play\/([^/]+)(\/.*)?$/.exec(record.path);
    const channel = m?.[1];
    const rest = m?.[2];
    if (channel === undefined) return text(404, 'not found');
    if (rest === undefined) return streamTs(req, res, channel, fault);
    const playlist = (body: string): Promise<void> => sendBody(req, res, 200, { 'content-type': M3U8_CONTENT_TYPE, 'cache-control': 'no-cache' }, Buffer.from(body), fault);
    if (rest === '/index.m3u8') {
      if (media) return playlist(liveWindowPlaylist({ segments: media.segments, elapsedMs: now() - epochMs, windowSize: opts.windowSize ?? 5 }));
      return playlist(masterPlaylist(channel));
    }
    if (rest.endsWith('.m3u8') && !media) {
      const dirPath = record.path.slice(0, record.path.lastIndexOf('/') + 1);
      return playlist(syntheticMediaPlaylist({ dirPath, origin: `http://127.0.0.1:${port}`, mediaSequence: mediaSequence(), targetDurationS, windowSize: opts.windowSize ?? 3, key: opts.key ?? true, map: opts.map ?? true }));
    }
    const body = rest.endsWith('/') ? null : fileBody(record.path);
    if (!body) return text(404, 'not found');
    return sendBody(req, res, 200, { 'content-type': contentTypeOf(record.path) }, body, fault);
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(err));
      else res.destroy();
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    socketRecords.set(s, []);
    s.on('close', () => {
      sockets.delete(s);
      const closedAt = Date.now();
      for (const r of socketRecords.get(s) ?? []) r.connectionClosedAt = closedAt;
      socketRecords.delete(s);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  let closed: Promise<void> | null = null;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    streams,
    activeConnections: () => sockets.size,
    setFault(match, fault) {
      const entry = { match, fault, left: fault.times ?? Infinity };
      faults.push(entry);
      return () => {
        const i = faults.indexOf(entry);
        if (i >= 0) faults.splice(i, 1);
      };
    },
    clearFaults: () => void faults.splice(0),
    reset() {
      requests.splice(0);
      streams.splice(0);
    },
    mediaSequence,
    expectedBytes(p) {
      const body = fileBody(p);
      if (!body) throw new Error(`origin serves no file at ${p}`);
      return body;
    },
    close() {
      if (!closed) {
        closing = true;
        closed = new Promise((resolve) => server.close(() => resolve()));
        for (const s of sockets) s.destroy();
      }
      return closed;
    },
  };
}
