// The scenarios of the performance issue, and the ONE place where a scenario passes extra flags
// to the edge (EDGE_FLAGS): the edge runs on its defaults (edge cache and MPEG-TS fan-out on)
// except where a scenario says otherwise below.
import { FIRST_SEQUENCE, LIVE_CHANNEL, STATIC_CHANNELS } from './fixtures.js';

export type ScenarioId = 'a' | 'b' | 'c' | 'd' | 'e' | 'f';
export const ALL_SCENARIOS: readonly ScenarioId[] = ['a', 'b', 'c', 'd', 'e', 'f'];

/**
 * Extra edge flags per scenario, appended after the bench's own
 * (`--listen --admin-listen --upstream --backend --log-level warn`), so they win.
 * e: a 30 s run must see the stalled viewer dropped: the stall clock starts only once the kernel's
 * socket buffers on the way are full (several MiB, ~20 s at 2 Mbit/s), so 5 s instead of 30 s.
 */
export const EDGE_FLAGS: Readonly<Record<ScenarioId, readonly string[]>> = {
  a: [],
  b: [],
  c: [],
  d: [],
  e: ['--client-stall-timeout', '5s'],
  f: [],
};

/**
 * edge-w2: the same edge with `--workers 2` (bench --workers-ab: harness/workers.ts).
 * edge+redis: the same edge with `--store redis://` on a private redis-server on the load core
 * (the fleet issue: the cost of Redis on a new session, as a ratio against the memory store).
 */
export type TargetName = 'direct' | 'N1' | 'N2' | 'edge' | 'edge+malloc' | 'edge+redis' | 'edge-w2';

/** The flags that make `edge-w2`, appended after the scenario's EDGE_FLAGS. */
export const TWO_WORKERS_FLAGS: readonly string[] = ['--workers', '2'];

/** What wrk hammers in a throughput scenario. */
export interface ThroughputScenario {
  readonly id: 'a' | 'b' | 'c' | 'd';
  readonly title: string;
  /** Interleaving order of one round. */
  readonly targets: readonly TargetName[];
  /** Path (and query) for nginx and the direct origin; for the edge, see `edgeSession`. */
  readonly path: string;
  /**
   * The edge: open a session first with `path` (?token=ok…), read the marker from the rewritten
   * playlist, and hammer `edgeSession` with `?edge_session=<marker>` (a player's follow-up
   * requests). Unset: the edge gets `path` as is (c: a denied token joins the denied session by its
   * join key; d: a new token per request).
   */
  readonly edgeSession?: { readonly open: string; readonly hammer: string };
  /** A new token on every request (wrk Lua script): every request is a new session. */
  readonly uniqueToken?: boolean;
  /** Expected status of every response, per target (anything else marks the run invalid). */
  expectedStatus(target: TargetName): number;
  readonly note: string;
}

const CH = STATIC_CHANNELS[0];
const PLAYLIST = `/play/${CH}/index.m3u8`;
const SEGMENT = `/play/${CH}/seg-${FIRST_SEQUENCE}.ts`;

export const THROUGHPUT: Readonly<Record<'a' | 'b' | 'c' | 'd', ThroughputScenario>> = {
  a: {
    id: 'a',
    title: '(a) playlist of a live session, decision cached',
    targets: ['N1', 'N2', 'edge', 'direct'],
    path: `${PLAYLIST}?token=ok-bench-a`,
    edgeSession: { open: `${PLAYLIST}?token=ok-bench-a`, hammer: PLAYLIST },
    expectedStatus: () => 200,
    note: 'edge: the session marker from its own rewritten playlist; nginx: the token (auth subrequest cached).',
  },
  b: {
    id: 'b',
    title: '(b) 1 MiB segment of a live session',
    targets: ['N1', 'N2', 'edge', 'edge+malloc', 'direct'],
    path: `${SEGMENT}?token=ok-bench-b`,
    edgeSession: { open: `${PLAYLIST}?token=ok-bench-b`, hammer: SEGMENT },
    expectedStatus: () => 200,
    note: 'edge+malloc: the same edge with MALLOC_TRIM_THRESHOLD_=536870912 MALLOC_TOP_PAD_=67108864 MALLOC_MMAP_THRESHOLD_=4194304.',
  },
  c: {
    id: 'c',
    title: '(c) denied (cached 403)',
    targets: ['N1', 'N2', 'edge', 'direct'],
    path: `${PLAYLIST}?token=bad`,
    expectedStatus: (t) => (t === 'direct' ? 200 : 403),
    note: 'direct: no authorization, the origin answers the same URL with 200 (a ceiling, not a peer).',
  },
  d: {
    id: 'd',
    title: '(d) a new session on every request (middleware call)',
    targets: ['N1', 'N2', 'edge', 'edge+redis', 'direct'],
    path: PLAYLIST,
    uniqueToken: true,
    expectedStatus: () => 200,
    note:
      'token=ok-<run nonce>-<thread>-<counter>: one middleware call per request (direct: no middleware, a ceiling). ' +
      'edge+redis: the same edge with --store redis:// (a private redis-server on the load core, no persistence): every new session is published to Redis; ' +
      'the middleware sends no per-user limit, so no request waits for Redis (with a limit the admission script is awaited: npm run bench:fleet measures that latency).',
  },
};

export interface TsScenarioSettings {
  viewers: number;
  channels: string[];
  durationS: number;
  rampS: number;
  warmupS: number;
  stallAfterS: number;
  bitsPerSecond: number;
}

export interface HlsScenarioSettings {
  viewers: number;
  channel: string;
  durationS: number;
  rampS: number;
  targetDurationS: number;
}

export const TS_TITLE = '(e) MPEG-TS viewers on 5 channels, one stalled';
export const HLS_TITLE = '(f) HLS viewers of one live channel';
export const HLS_CHANNEL = LIVE_CHANNEL;
