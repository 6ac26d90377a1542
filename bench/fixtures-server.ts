// Bench fixtures in their own process: an Astra-like origin (a live media playlist and a 1 MiB
// segment, both pre-built so the origin costs as little as possible) and an always-allow
// middleware. Prints one JSON line {"origin": url, "middleware": url} when listening.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

const SEGMENT = Buffer.alloc(1024 * 1024, 0x47);
const PLAYLIST = Buffer.from(
  [
    '#EXTM3U',
    '#EXT-X-VERSION:3',
    '#EXT-X-TARGETDURATION:2',
    '#EXT-X-MEDIA-SEQUENCE:1000',
    ...Array.from({ length: 6 }, (_, i) => `#EXTINF:2.000,\nseg-${1000 + i}.ts`),
    '',
  ].join('\n'),
);

const origin = createServer((req, res) => {
  const path = (req.url ?? '/').split('?', 1)[0]!;
  if (path.endsWith('.m3u8')) {
    res.writeHead(200, { 'content-type': 'application/vnd.apple.mpegurl', 'content-length': PLAYLIST.length });
    res.end(PLAYLIST);
  } else if (path.endsWith('.ts')) {
    res.writeHead(200, { 'content-type': 'video/mp2t', 'content-length': SEGMENT.length });
    res.end(SEGMENT);
  } else {
    res.writeHead(404, { 'content-length': 0 });
    res.end();
  }
});

const middleware = createServer((_req, res) => {
  res.writeHead(200, { 'x-session-name': 'bench', 'content-length': 0 });
  res.end();
});

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

const [originUrl, middlewareUrl] = await Promise.all([listen(origin), listen(middleware)]);
process.stdout.write(`${JSON.stringify({ origin: originUrl, middleware: middlewareUrl })}\n`);
process.on('SIGTERM', () => process.exit(0));
