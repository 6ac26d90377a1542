/**
 * Playlist rewrite cost: the old regex rewriter (bench/legacy-playlist.ts) vs
 * compile + render (src/proxy/playlist.ts), per playlist, in-process, no I/O.
 *
 *   npx tsx bench/playlist-rewrite.ts            # ~20 s, prints markdown, writes bench/results/playlist-rewrite.json
 *   npx tsx bench/playlist-rewrite.ts --quick    # smoke test, figures meaningless, writes *.quick.json
 *
 * Each operation starts from the upstream body as bytes and ends with the
 * client body as bytes, as forward.ts does:
 * - legacy:          utf8 decode → rewritePlaylist (string) → utf8 encode (what forward.ts did per request);
 * - compile:         parse once into a template (per upstream fetch once the live micro-cache exists);
 * - render:          one session's body from the template (per request then);
 * - compile+render:  what forward.ts does per request until the cache exists.
 * Every loop is bounded by a count and a deadline. Figures: µs per op, median and best of the rounds,
 * in process CPU time (process.cpuUsage: robust to other load on a shared box; wall time is in the JSON).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compilePlaylist, renderPlaylist, type PlaylistContext } from '../src/proxy/playlist.js';
import { legacyRewritePlaylist } from './legacy-playlist.js';

const QUICK = process.argv.includes('--quick');
const ROUNDS = QUICK ? 3 : 9;
const OPS_PER_ROUND = QUICK ? 2_000 : 40_000;
const DEADLINE_MS = QUICK ? 5_000 : 120_000;

const ORIGIN = 'http://127.0.0.1:8000';
const ctx: PlaylistContext = { upstreamOrigin: ORIGIN, param: 'edge_session' };
const SESSION_ID = 'AAECAwQFBgcICQoLDA0ODw'; // 22 characters, like a real one

/** A live media playlist as Astra writes it: 10 segments, a key and an init segment, one absolute URI. */
function livePlaylist(): Buffer {
  const lines = ['#EXTM3U', '#EXT-X-VERSION:6', '#EXT-X-TARGETDURATION:2', '#EXT-X-MEDIA-SEQUENCE:1041', '#EXT-X-KEY:METHOD=AES-128,URI="key.bin?token=abc",IV=0x00000000000000000000000000000411', '#EXT-X-MAP:URI="init.mp4"'];
  for (let i = 0; i < 10; i++) {
    lines.push(`#EXT-X-PROGRAM-DATE-TIME:2026-11-28T10:00:${String(i * 2).padStart(2, '0')}.000Z`, '#EXTINF:2.000,');
    lines.push(i === 9 ? `${ORIGIN}/play/a001/seg-${1041 + i}.ts?token=abc` : `seg-${1041 + i}.ts?token=abc`);
  }
  return Buffer.from(`${lines.join('\n')}\n`);
}

/** A master playlist: 3 video renditions, an audio group of two, 3 I-frame playlists. */
function masterPlaylist(): Buffer {
  const lines = ['#EXTM3U', '#EXT-X-VERSION:6', '#EXT-X-INDEPENDENT-SEGMENTS'];
  lines.push('#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="English",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,URI="audio/en/index.m3u8"');
  lines.push('#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="Deutsch",LANGUAGE="de",DEFAULT=NO,AUTOSELECT=YES,URI="audio/de/index.m3u8"');
  for (const [i, [bw, res]] of [[800_000, '640x360'], [1_600_000, '1280x720'], [4_000_000, '1920x1080']].entries()) {
    lines.push(`#EXT-X-STREAM-INF:BANDWIDTH=${bw},AVERAGE-BANDWIDTH=${Number(bw) * 0.9},CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=${res},FRAME-RATE=25.000,AUDIO="aud"`, `v${i + 1}/index.m3u8?token=abc`);
    lines.push(`#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=${Number(bw) / 10},CODECS="avc1.64001f",RESOLUTION=${res},URI="v${i + 1}/iframes.m3u8"`);
  }
  return Buffer.from(`${lines.join('\n')}\n`);
}

interface Figure {
  /** CPU time per op (user + system of the whole process). */
  readonly medianUs: number;
  readonly bestUs: number;
  readonly wallMedianUs: number;
  readonly rounds: number;
  readonly opsPerRound: number;
}

let sink = 0; // keeps results alive so the work is not optimised away

function measure(op: () => { length: number }, deadline: number): Figure {
  for (let i = 0; i < Math.min(OPS_PER_ROUND, 5_000); i++) sink += op().length; // warm-up (JIT)
  const cpu: number[] = [];
  const wall: number[] = [];
  for (let r = 0; r < ROUNDS && performance.now() < deadline; r++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    for (let i = 0; i < OPS_PER_ROUND; i++) sink += op().length;
    const c = process.cpuUsage(c0);
    wall.push(((performance.now() - t0) * 1000) / OPS_PER_ROUND);
    cpu.push((c.user + c.system) / OPS_PER_ROUND);
  }
  const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);
  const median = (xs: number[]): number => sorted(xs)[Math.floor(xs.length / 2)]!;
  const round = (x: number): number => Math.round(x * 100) / 100;
  return { medianUs: round(median(cpu)), bestUs: round(sorted(cpu)[0]!), wallMedianUs: round(median(wall)), rounds: cpu.length, opsPerRound: OPS_PER_ROUND };
}

function main(): void {
  const deadline = performance.now() + DEADLINE_MS;
  const fixtures = { 'live media, 10 segments': livePlaylist(), 'master, 3 renditions': masterPlaylist() };
  const results: Record<string, Record<string, Figure | number>> = {};
  for (const [name, body] of Object.entries(fixtures)) {
    const legacy = (): Buffer => Buffer.from(legacyRewritePlaylist(body.toString('utf8'), { ...ctx, sessionId: SESSION_ID }), 'utf8');
    const template = compilePlaylist(body, ctx);
    // The fixtures hold nothing the old rewriter got wrong: both must give the same bytes.
    if (!renderPlaylist(template, SESSION_ID).equals(legacy())) throw new Error(`${name}: compile + render differs from the old rewriter`);
    results[name] = {
      bytes: body.length,
      uris: template.pieces.length - 1,
      legacy: measure(legacy, deadline),
      compile: measure(() => compilePlaylist(body, ctx).pieces, deadline),
      render: measure(() => renderPlaylist(template, SESSION_ID), deadline),
      'compile+render': measure(() => renderPlaylist(compilePlaylist(body, ctx), SESSION_ID), deadline),
    };
  }
  const load = os.loadavg().map((l) => Math.round(l * 100) / 100);
  console.log(`# Playlist rewrite, CPU µs per playlist (median / best of ${ROUNDS} rounds of ${OPS_PER_ROUND})${QUICK ? ' — QUICK: figures meaningless' : ''}\n`);
  console.log(`Node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} ×${os.cpus().length}, load average ${load.join(' / ')}\n`);
  console.log('| playlist | bytes | URIs | old rewriter | compile | render | compile + render | render vs old |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const [name, r] of Object.entries(results)) {
    const f = (k: string): string => `${(r[k] as Figure).medianUs} / ${(r[k] as Figure).bestUs}`;
    const speedup = (r['legacy'] as Figure).medianUs / (r['render'] as Figure).medianUs;
    console.log(`| ${name} | ${r['bytes']} | ${r['uris']} | ${f('legacy')} | ${f('compile')} | ${f('render')} | ${f('compile+render')} | ${speedup.toFixed(1)}× faster |`);
  }
  const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, QUICK ? 'playlist-rewrite.quick.json' : 'playlist-rewrite.json');
  writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), node: process.version, cpus: os.cpus().length, loadavg: load, quick: QUICK, sessionIdLength: SESSION_ID.length, results }, null, 2)}\n`);
  console.log(`\nwritten: ${path.relative(process.cwd(), file)} (checksum ${sink % 1000})`);
}

main();
