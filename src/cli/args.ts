/**
 * Command-line parsing, driven by the settings table (config/options.ts).
 * Pure: argv in, a description of what to do out; main.ts acts on it.
 */
import { EdgeError } from '../errors.js';
import { OPTIONS, OPTIONS_BY_FLAG } from '../config/options.js';

export type Command = 'run' | 'check-config' | 'help' | 'version';

export interface ParsedArgs {
  readonly command: Command;
  readonly configFile: string | undefined;
  /** Setting values by option path, as given on the command line. */
  readonly flags: Readonly<Record<string, unknown>>;
}

const COMMANDS: readonly Command[] = ['run', 'check-config'];

export function parseArgs(argv: readonly string[]): ParsedArgs {
  let command: Command = 'run';
  const settings: SettingFlags = { configFile: undefined, flags: {} };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') return { command: 'help', ...settings };
    if (arg === '--version' || arg === '-V') return { command: 'version', ...settings };
    if (!arg.startsWith('-')) {
      if (i === 0 && (COMMANDS as readonly string[]).includes(arg)) {
        command = arg as Command;
        continue;
      }
      throw new EdgeError('EDGE_ERR_CONFIG', `unexpected argument "${arg}" (see --help)`);
    }
    i = readSettingFlag(argv, i, settings);
  }
  return { command, ...settings };
}

/** `--config` and the setting flags, as the edge and `check` read them. */
export interface SettingFlags {
  configFile: string | undefined;
  /** Setting values by option path. */
  readonly flags: Record<string, unknown>;
}

/**
 * Reads the flag at argv[i] (`--config FILE` or a setting of the options
 * table, `--flag value` or `--flag=value`) into `into`; returns the index of
 * the last argument used. A boolean flag takes the next argument as its value
 * unless `isOwnValue` says it is not one (default: it starts with `-`).
 */
export function readSettingFlag(argv: readonly string[], i: number, into: SettingFlags, isOwnValue: (next: string) => boolean = (next) => !next.startsWith('-')): number {
  const arg = argv[i]!;
  const eq = arg.indexOf('=');
  const name = eq === -1 ? arg : arg.slice(0, eq);
  let last = i;
  const takeValue = (): string => {
    if (eq !== -1) return arg.slice(eq + 1);
    const next = argv[i + 1];
    if (next === undefined || (next.startsWith('--') && next.length > 2)) throw new EdgeError('EDGE_ERR_CONFIG', `option ${name} needs a value (see --help)`);
    last = i + 1;
    return next;
  };
  if (name === '--config' || name === '-c') {
    into.configFile = takeValue();
    return last;
  }
  const spec = OPTIONS_BY_FLAG.get(name);
  if (spec === undefined) throw new EdgeError('EDGE_ERR_CONFIG', `unknown option ${name} (see --help)`);
  // A boolean flag without a value means true: `--soft-limits`.
  const next = argv[i + 1];
  const value = spec.kind === 'bool' && eq === -1 && (next === undefined || !isOwnValue(next)) ? 'true' : takeValue();
  if (spec.kind === 'list') {
    const previous = (into.flags[spec.path] as string[] | undefined) ?? [];
    into.flags[spec.path] = [...previous, ...value.split(',').map((v) => v.trim()).filter(Boolean)];
  } else {
    into.flags[spec.path] = value;
  }
  return last;
}

export function helpText(version: string): string {
  const lines = [
    `astra-auth-edge ${version}: session-aware authorization edge for Cesbo Astra and other HLS / MPEG-TS origins`,
    '',
    'Usage:',
    '  astra-auth-edge [--config FILE] [options]       run the edge',
    '  astra-auth-edge check-config [--config FILE]    validate and print the effective config (secrets redacted)',
    "  astra-auth-edge check [--config FILE] [options] URL [--ip A] [--user-agent UA] [--header 'N: v'] [--json]",
    '                                                  what the edge would do for one request, step by step,',
    '                                                  middleware exchange included (check --help)',
    '  astra-auth-edge sessions [--admin URL] [--token T] [--channel C] [--name N] [--limit N] [--json]',
    '                                                  list open sessions, oldest first, all or the first N, with why each is in',
    '                                                  and its next check (admin API; env EDGE_ADMIN_URL, EDGE_ADMIN_TOKEN)',
    '  astra-auth-edge sessions <id> [--admin URL] [--token T] [--json]',
    '                                                  one session in full: why it was allowed or denied, next check',
    '  astra-auth-edge kick <id> [--admin URL] [--token T] [--json]',
    '                                                  end a session: HLS gets 403, MPEG-TS is cut',
    '  astra-auth-edge --help | --version',
    '',
    'Every option can also be set in the YAML config file (path in brackets) or',
    'an environment variable. Precedence: flags > environment > file > defaults.',
    '',
    '  --config FILE, -c FILE   YAML config file (env EDGE_CONFIG)',
  ];
  let group = '';
  for (const o of OPTIONS) {
    if (o.group !== group) {
      group = o.group;
      lines.push('', `${group}:`);
    }
    const flag = o.flag === undefined ? `  (file: ${o.path}, or env)` : `  ${o.flag} ${o.metavar ?? placeholder(o.kind, o.values)}`;
    const def = o.default === undefined ? '' : ` (default: ${Array.isArray(o.default) ? (o.default.length === 0 ? 'none' : o.default.join(',')) : String(o.default)})`;
    lines.push(`${flag.padEnd(40)} ${o.help}${def}`);
    lines.push(`${''.padEnd(40)} [${o.path}] env ${o.env}`);
  }
  lines.push(
    '',
    'Exit codes: 0 stopped cleanly (SIGTERM/SIGINT), config valid, or admin command done;',
    '1 runtime failure (port in use, admin API unreachable or refusing the token);',
    '2 invalid configuration or command line; 3 kick: no such live session.',
    'check: 0 allowed, 1 denied or refused, 2 bad arguments, 3 middleware unavailable.',
  );
  return `${lines.join('\n')}\n`;
}

function placeholder(kind: string, values?: readonly string[]): string {
  switch (kind) {
    case 'enum':
      return values!.join('|');
    case 'hostport':
      return 'HOST:PORT';
    case 'url':
      return 'URL';
    case 'store':
      return 'memory|URL';
    case 'duration':
      return 'DURATION';
    case 'size':
      return 'SIZE';
    case 'int':
    case 'count':
      return 'N';
    case 'intOrAuto':
      return 'N|auto';
    case 'ratio':
      return '0..1';
    case 'bool':
      return '[true|false]';
    case 'list':
      return 'A[,B]';
    case 'regex':
      return 'REGEX';
    default:
      return 'VALUE';
  }
}
