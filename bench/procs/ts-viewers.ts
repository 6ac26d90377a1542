// The MPEG-TS viewers of scenario (e), in one process on the load core: N viewers spread over the
// channels, each a plain HTTP GET of /play/<channel>?token=ok-… read as fast as it arrives, bytes
// counted per 1-s window. One of them (`stallIndex`) stops reading after `stallAfterS`: its socket
// is left unread, and its kernel TCP state is polled (/proc/net/tcp: CLOSE_WAIT or gone = the
// server dropped it). Prints one JSON line with the result; ends after `durationS` at the latest.
//   node --import tsx bench/procs/ts-viewers.ts '<json options>'
import { get, type ClientRequest } from 'node:http';
import { readFileSync } from 'node:fs';

interface Options {
  base: string;
  viewers: number;
  channels: string[];
  durationS: number;
  rampS: number;
  warmupS: number;
  stallIndex: number;
  stallAfterS: number;
  bitsPerSecond: number;
  tokenPrefix: string;
}

const o = JSON.parse(process.argv[2]!) as Options;
const t0 = Date.now();
const windows = Math.ceil(o.durationS);

interface Viewer {
  index: number;
  channel: string;
  req?: ClientRequest;
  status?: number;
  bytes: number;
  perSecond: number[];
  connectedAt?: number;
  endedAt?: number;
  error?: string;
  localPort?: number;
  serverPort?: number;
}

const viewers: Viewer[] = [];
const stalled = { stoppedReadingAt: undefined as number | undefined, droppedAt: undefined as number | undefined, lastState: '' };

function start(v: Viewer): void {
  const url = `${o.base}/play/${v.channel}?token=${o.tokenPrefix}-${v.index}`;
  const req = get(url, { agent: false }, (res) => {
    v.status = res.statusCode;
    v.connectedAt = Date.now();
    v.localPort = res.socket.localPort;
    v.serverPort = res.socket.remotePort;
    res.on('data', (chunk: Buffer) => {
      v.bytes += chunk.length;
      const w = Math.floor((Date.now() - t0) / 1000);
      if (w < windows) v.perSecond[w]! += chunk.length;
    });
    res.on('close', () => (v.endedAt ??= Date.now()));
    res.on('error', (err) => (v.error ??= err.message));
    if (v.index === o.stallIndex) {
      setTimeout(() => {
        res.pause();
        res.socket.pause();
        stalled.stoppedReadingAt = Date.now();
      }, Math.max(0, o.stallAfterS * 1000 - (Date.now() - t0)));
    }
  });
  req.on('error', (err) => {
    v.error ??= err.message;
    v.endedAt ??= Date.now();
  });
  v.req = req;
}

/** TCP state (hex, 01 = ESTABLISHED) of the server's end of the connection from `localPort`; '' when gone. */
function serverState(localPort: number, serverPort: number): string {
  const hex = (p: number): string => `:${p.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      const f = line.trim().split(/\s+/);
      if (f[1]?.endsWith(hex(serverPort)) && f[2]?.endsWith(hex(localPort))) return f[3]!;
    }
  }
  return '';
}

for (let i = 0; i < o.viewers; i++) {
  const v: Viewer = { index: i, channel: o.channels[i % o.channels.length]!, bytes: 0, perSecond: new Array<number>(windows).fill(0) };
  viewers.push(v);
  setTimeout(() => start(v), (i / o.viewers) * o.rampS * 1000);
}

const poll = setInterval(() => {
  const v = viewers[o.stallIndex];
  if (v?.localPort === undefined || v.serverPort === undefined || stalled.stoppedReadingAt === undefined || stalled.droppedAt !== undefined) return;
  const state = serverState(v.localPort, v.serverPort);
  stalled.lastState = state;
  if (state !== '01') stalled.droppedAt = Date.now();
}, 500);

setTimeout(finish, o.durationS * 1000);
setTimeout(() => process.exit(3), (o.durationS + 30) * 1000).unref();

function finish(): void {
  clearInterval(poll);
  const threshold = (0.5 * o.bitsPerSecond) / 8;
  const first = Math.ceil(o.warmupS);
  const last = windows - 1; // the last window is cut short by the end of the run
  let dipWindows = 0;
  let viewersWithDip = 0;
  let measuredBytes = 0;
  let worstRatio = Infinity;
  const statuses: Record<string, number> = {};
  for (const v of viewers) {
    statuses[String(v.status ?? v.error ?? 'none')] = (statuses[String(v.status ?? v.error ?? 'none')] ?? 0) + 1;
    for (let w = first; w < last; w++) measuredBytes += v.perSecond[w]!;
    if (v.index === o.stallIndex) continue;
    let dips = 0;
    for (let w = first; w < last; w++) {
      worstRatio = Math.min(worstRatio, v.perSecond[w]! / (o.bitsPerSecond / 8));
      if (v.perSecond[w]! < threshold) dips++;
    }
    dipWindows += dips;
    if (dips > 0) viewersWithDip++;
  }
  const stalledViewer = viewers[o.stallIndex];
  const out = {
    viewers: o.viewers,
    connected: viewers.filter((v) => v.status === 200).length,
    statuses,
    endedEarly: viewers.filter((v) => v.index !== o.stallIndex && v.endedAt !== undefined).length,
    measuredS: last - first,
    aggregateBytesPerSecond: measuredBytes / Math.max(1, last - first),
    bytesTotal: viewers.reduce((a, v) => a + v.bytes, 0),
    viewersWithDip,
    dipWindows,
    worstWindowRatio: Number.isFinite(worstRatio) ? worstRatio : null,
    stalled: {
      index: o.stallIndex,
      stoppedReadingAfterS: stalled.stoppedReadingAt === undefined ? null : (stalled.stoppedReadingAt - t0) / 1000,
      dropped: stalled.droppedAt !== undefined,
      droppedAfterStallS: stalled.droppedAt === undefined || stalled.stoppedReadingAt === undefined ? null : (stalled.droppedAt - stalled.stoppedReadingAt) / 1000,
      tcpState: stalled.droppedAt === undefined ? stalled.lastState : stalled.lastState === '' ? 'gone' : stalled.lastState,
      bytes: stalledViewer?.bytes ?? 0,
    },
  };
  process.stdout.write(`VIEWERS_JSON ${JSON.stringify(out)}\n`);
  for (const v of viewers) v.req?.destroy();
  setTimeout(() => process.exit(0), 100);
}
