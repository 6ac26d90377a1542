/**
 * What the demo prints: the first screen (URLs and commands to copy), the
 * edge's log lines made readable, and the goodbye. Pure text; main.ts
 * writes it.
 */
import type { MiddlewareCounts } from './middleware.js';
import { DENIED_TOKEN, SLOW_TOKEN } from './middleware.js';

export const FFMPEG_MISSING = 'ffmpeg not found: the demo serves placeholder segments (install ffmpeg for playable video)';
/** The line that tells a script (and the integration test) the demo is ready. */
export const READY_LINE = 'The demo is running. Ctrl-C stops everything.';
/** Example viewer tokens: any token starting with "demo-" is allowed. */
const ALICE = 'demo-alice';
const BOB = 'demo-bob';

export interface BannerInput {
  /** Browsable base URL of the edge's public listener (0.0.0.0 shown as 127.0.0.1). */
  readonly edgeUrl: string;
  readonly adminUrl: string;
  readonly media: 'ffmpeg' | 'placeholder';
  /** Where ffmpeg writes the live channel (removed on exit). */
  readonly mediaDir: string | undefined;
}

function q(url: string): string {
  return `'${url}'`;
}

export function banner(b: BannerInput): string {
  const hls = `${b.edgeUrl}/play/news/index.m3u8?token=${ALICE}`;
  const ts = `${b.edgeUrl}/play/sports?token=${BOB}`;
  const media =
    b.media === 'ffmpeg'
      ? `live test pattern + 440 Hz tone from ffmpeg, 2 s segments (in ${b.mediaDir ?? '?'})`
      : 'placeholder segments: valid MPEG-TS framing, no picture (install ffmpeg for playable video)';
  return [
    '',
    'astra-auth-edge demo',
    `  edge (players)     ${b.edgeUrl}`,
    `  admin              ${b.adminUrl}   (loopback, no token)`,
    `  origin             simulated Astra: channels news, sports, movies (any name works); ${media}`,
    '  middleware         demo: any token starting with "demo-" is allowed, asked once per viewing session',
    '',
    'Watch (HLS: the edge adds edge_session=… to every URI of the playlist):',
    `  ${hls}`,
    `  ffplay ${q(hls)}`,
    `  vlc ${q(hls)}`,
    `  curl -s ${q(hls)}`,
    '',
    'Watch (HTTP MPEG-TS: one continuous body, one connection = one session):',
    `  ${ts}`,
    `  ffplay ${q(ts)}`,
    `  vlc ${q(ts)}`,
    `  curl -s ${q(ts)} | head -c 2000000 > sports.ts`,
    '',
    'Try:',
    `  curl -i ${q(`${b.edgeUrl}/play/news/index.m3u8?token=${DENIED_TOKEN}`)}   # 403: the middleware says no`,
    `  curl -i ${q(`${b.edgeUrl}/play/news/index.m3u8?token=${SLOW_TOKEN}`)}     # 200 after 1 s: the middleware is too slow, the default action (allow) decides`,
    `  curl -i ${q(`${b.edgeUrl}/play/news/index.m3u8`)}                     # 403: no token`,
    '',
    'Look inside:',
    `  status page        ${b.adminUrl}/`,
    `  sessions           curl -s ${b.adminUrl}/api/sessions`,
    `  metrics            curl -s ${b.adminUrl}/metrics | grep ^edge_auth`,
    '',
    READY_LINE,
    '',
  ].join('\n');
}

export function goodbye(counts: MiddlewareCounts): string {
  return `middleware: ${counts.checks} check${counts.checks === 1 ? '' : 's'} (${counts.allowed} allowed, ${counts.denied} denied, ${counts.slow} too slow)\ndemo stopped\n`;
}

/** Edge log messages the banner already says. */
const SKIPPED = new Set(['astra-auth-edge listening']);
const LEVEL_NAMES: Readonly<Record<number, string>> = { 40: 'WARN ', 50: 'ERROR ', 60: 'FATAL ' };
const NOT_FIELDS = new Set(['level', 'time', 'pid', 'hostname', 'service', 'msg']);

/** One pino JSON line → `edge: <msg>  key=value …` (objects are left out, `err` shows its code), or undefined to skip. */
export function humanLogLine(json: string): string | undefined {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.trim() === '' ? undefined : `edge: ${json.trim()}`;
  }
  const msg = String(entry['msg'] ?? '');
  if (SKIPPED.has(msg)) return undefined;
  const fields: string[] = [];
  for (const [key, value] of Object.entries(entry)) {
    if (NOT_FIELDS.has(key) || value === undefined || value === null || (key === 'suppressed' && value === 0)) continue;
    if (key === 'err' && typeof value === 'object') {
      const err = value as { code?: unknown; message?: unknown };
      fields.push(`err=${String(err.code ?? err.message)}`);
    } else if (typeof value !== 'object') {
      fields.push(`${key}=${String(value)}`);
    }
  }
  const level = LEVEL_NAMES[Number(entry['level'])] ?? '';
  return `edge: ${level}${msg}${fields.length > 0 ? `  ${fields.join(' ')}` : ''}`;
}

/** A pino destination that writes {@link humanLogLine}s. */
export function humanLog(write: (text: string) => void): { write(chunk: string): void } {
  return {
    write(chunk) {
      for (const line of chunk.split('\n')) {
        const text = humanLogLine(line);
        if (text !== undefined) write(`${text}\n`);
      }
    },
  };
}
