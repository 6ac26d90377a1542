// The bench's authorization middleware, in its own process (on the load core): an Astra
// "HTTP Request" endpoint that answers after ~1 ms (a timer: a real middleware looks the token up
// somewhere), 200 for tokens starting with "ok", 403 for any other, with no X-AuthDuration or
// Cache-Control (so the edge and nginx both fall back to their configured TTLs: 60 s / 10 s).
// Counts its calls: GET /__stats. Prints {"port": N} when listening; exits when stdin closes.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const DELAY_MS = Number(process.env['BENCH_MIDDLEWARE_DELAY_MS'] ?? 1);
const stats = { calls: 0, allowed: 0, denied: 0 };

function tokenOf(url: string): string {
  const q = url.indexOf('?');
  if (q === -1) return '';
  for (const pair of url.slice(q + 1).split('&')) {
    if (pair.startsWith('token=')) return pair.slice(6);
  }
  return '';
}

const server = createServer((req, res) => {
  const url = req.url ?? '/';
  if (url === '/__stats') {
    const body = JSON.stringify(stats);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  stats.calls++;
  const allow = tokenOf(url).startsWith('ok');
  if (allow) stats.allowed++;
  else stats.denied++;
  setTimeout(() => {
    res.writeHead(allow ? 200 : 403, { 'content-length': 0 });
    res.end();
  }, DELAY_MS);
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`));
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
