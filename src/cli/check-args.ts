/**
 * `astra-auth-edge check [--config FILE | setting flags] URL [--ip A]
 * [--user-agent UA] [--header 'Name: value']... [--json] [--show-secrets]
 * [--recheck-probe[=DURATION]]`. Pure: argv in, what to check out. The
 * setting flags are the edge's own (cli/args.ts), so `check` runs on the
 * configuration the edge would run on.
 */
import { isIP } from 'node:net';
import { parseDurationMs } from '../config/units.js';
import { EdgeError } from '../errors.js';
import { readSettingFlag, type SettingFlags } from './args.js';

/** How long `--recheck-probe` waits before asking again: past the 5 s a Ministra token lives (PROTOCOLS §2). */
export const DEFAULT_RECHECK_PROBE_MS = 6_000;
/** The longest `--recheck-probe=DURATION` the check waits. */
const MAX_RECHECK_PROBE_MS = 600_000;

export interface CheckArgs extends SettingFlags {
  /** The viewer's URL (or just its path and query) as typed. */
  readonly url: string;
  /** The address the request comes from (the socket peer the edge would see). */
  readonly ip: string | undefined;
  readonly userAgent: string | undefined;
  /** Extra request headers, in order, as typed (`Referer`, `X-Forwarded-For`, a second `Host`…). */
  readonly headers: readonly (readonly [string, string])[];
  readonly json: boolean;
  readonly showSecrets: boolean;
  /** Ask the middleware again after this long, to spot one-shot tokens; undefined: don't. */
  readonly recheckProbeMs: number | undefined;
  readonly help: boolean;
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** An argument that is the URL, not the value of a boolean flag before it. */
function looksLikeUrl(arg: string): boolean {
  return arg.startsWith('/') || /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(arg);
}

function usage(message: string): EdgeError {
  return new EdgeError('EDGE_ERR_CONFIG', `check: ${message} (see astra-auth-edge check --help)`);
}

export function parseCheckArgs(argv: readonly string[]): CheckArgs {
  const settings: SettingFlags = { configFile: undefined, flags: {} };
  let url: string | undefined;
  let ip: string | undefined;
  let userAgent: string | undefined;
  const headers: [string, string][] = [];
  let json = false;
  let showSecrets = false;
  let recheckProbeMs: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    const value = (): string => {
      if (eq !== -1) return arg.slice(eq + 1);
      const next = argv[++i];
      if (next === undefined) throw usage(`${flag} needs a value`);
      return next;
    };
    if (flag === '--help' || flag === '-h') return { ...settings, url: '', ip, userAgent, headers, json, showSecrets, recheckProbeMs, help: true };
    if (flag === '--ip') {
      const v = value().trim();
      if (isIP(v) === 0) throw usage(`--ip ${JSON.stringify(v)} is not an IP address`);
      ip = v;
    } else if (flag === '--user-agent' || flag === '-A') {
      userAgent = value();
    } else if (flag === '--header' || flag === '-H') {
      const v = value();
      const colon = v.indexOf(':');
      const name = colon === -1 ? '' : v.slice(0, colon).trim();
      if (!HEADER_NAME.test(name)) throw usage(`--header ${JSON.stringify(v)}: expected "Name: value"`);
      headers.push([name, v.slice(colon + 1).trim()]);
    } else if (flag === '--json') {
      json = true;
    } else if (flag === '--show-secrets') {
      showSecrets = true;
    } else if (flag === '--recheck-probe') {
      // `--recheck-probe` alone, `--recheck-probe=3s`, or `--recheck-probe 3s` (a duration, not the URL).
      const next = argv[i + 1];
      const raw = eq !== -1 ? arg.slice(eq + 1) : next !== undefined && /^\d+(\.\d+)?(ms|s|m)?$/.test(next) ? argv[++i]! : undefined;
      const ms = raw === undefined ? DEFAULT_RECHECK_PROBE_MS : parseDurationMs(raw);
      if (ms === undefined || ms > MAX_RECHECK_PROBE_MS) throw usage(`--recheck-probe ${JSON.stringify(raw)}: expected a duration up to 10m, such as 6s`);
      recheckProbeMs = ms;
    } else if (!arg.startsWith('-') || arg === '-') {
      if (url !== undefined) throw usage(`one URL only (got ${JSON.stringify(url)} and ${JSON.stringify(arg)})`);
      url = arg;
    } else {
      i = readSettingFlag(argv, i, settings, (next) => !next.startsWith('-') && !looksLikeUrl(next));
    }
  }
  if (url === undefined) throw usage("which request? give the viewer's URL, e.g. 'http://edge/play/a001/index.m3u8?token=123'");
  return { ...settings, url, ip, userAgent, headers, json, showSecrets, recheckProbeMs, help: false };
}

export function checkHelpText(): string {
  return `${[
    'Usage: astra-auth-edge check [--config FILE | setting flags] URL [options]',
    '',
    "Runs what the edge would do for one viewer's request, without serving it: which channel and",
    'token it reads, the local rules in order, the securetoken verdict, then the exact request to each',
    'middleware (DNS, TCP connect, TLS and HTTP as separate steps), its answer, and the verdict with',
    'what the default action does. Uses the same configuration as the edge (file, environment, flags).',
    '',
    '  URL                      the viewer\'s URL, e.g. \'http://edge/play/a001/index.m3u8?token=123\'',
    '                           (only its path and query matter; its host is the Host header)',
    '  --ip ADDRESS             the address the request comes from (default 127.0.0.1); with',
    '                           --trusted-proxy and --header X-Forwarded-For the edge reads it as it would',
    '  --user-agent UA, -A UA   the player\'s User-Agent (default: none)',
    "  --header 'Name: value', -H  another request header (repeatable): Referer, X-Forwarded-For, Host…",
    '  --recheck-probe[=DURATION]  ask the middleware again after DURATION (default 6s) and warn when',
    '                           an allowed token is then denied (one-shot tokens)',
    '  --json                   the same facts as JSON',
    '  --show-secrets           show the token, URL credentials and middleware URL query values',
    '',
    'Exit codes: 0 allowed; 1 denied (by a rule, securetoken or the middleware, or a request the edge',
    'refuses outright: 400 or 404); 2 bad arguments or configuration; 3 the middleware is unavailable',
    '(whatever the default action then does: the report says).',
  ].join('\n')}\n`;
}
