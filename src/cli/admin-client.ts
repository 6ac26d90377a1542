/**
 * `astra-auth-edge sessions [<id>]` and `astra-auth-edge kick <id>`: the admin
 * API from a terminal. Human tables by default, JSON with --json. `sessions`
 * follows the API's pages (`nextCursor`) to the end, or to --limit; with an
 * ID it shows that one session, why it was allowed or denied included.
 */
import { EdgeError } from '../errors.js';
import { isWellFormedSessionId } from '../session/session.js';
import type { SessionView } from '../session/table.js';

export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:9901';

/** A session as an edge of any version sends it: `why`, `nextCheckAt` and `edge` are absent from edges older than them. */
export type RemoteSessionView = Omit<SessionView, 'why' | 'nextCheckAt'> & Partial<Pick<SessionView, 'why' | 'nextCheckAt'>> & { readonly edge?: string };

/** Sessions per request when following the pages: the API's maximum. */
const PAGE_LIMIT = 1000;
/** Each request of a command gets this long. */
const REQUEST_TIMEOUT_MS = 5000;

/** Exit codes of the admin commands (documented in --help and the README). */
export const EXIT = { ok: 0, failed: 1, usage: 2, notFound: 3 } as const;

export interface AdminCommand {
  readonly command: 'sessions' | 'kick';
  readonly adminUrl: string;
  readonly token: string | undefined;
  readonly json: boolean;
  readonly channel?: string;
  readonly name?: string;
  /** `sessions`: list at most this many (default: all). */
  readonly limit?: number;
  readonly id?: string;
}

export function parseAdminArgs(command: 'sessions' | 'kick', argv: readonly string[], env: Readonly<Record<string, string | undefined>>): AdminCommand {
  let adminUrl = env['EDGE_ADMIN_URL'] ?? DEFAULT_ADMIN_URL;
  let token = env['EDGE_ADMIN_TOKEN'];
  let json = false;
  let channel: string | undefined;
  let name: string | undefined;
  let limit: number | undefined;
  let id: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new EdgeError('EDGE_ERR_CONFIG', `option ${flag} needs a value`);
      return v;
    };
    // A session ID may begin with "-" (base64url): take it as the ID before trying it as a flag.
    if (id === undefined && isWellFormedSessionId(arg)) id = arg;
    else if (arg === '--' && command === 'kick' && id === undefined && argv[i + 1] !== undefined) id = argv[++i];
    else if (flag === '--admin') adminUrl = value();
    else if (flag === '--token') token = value();
    else if (flag === '--json') json = true;
    else if (flag === '--channel' && command === 'sessions') channel = value();
    else if (flag === '--name' && command === 'sessions') name = value();
    else if (flag === '--limit' && command === 'sessions') {
      const v = value();
      limit = /^\d{1,9}$/.test(v) ? Number(v) : 0;
      if (limit < 1) throw new EdgeError('EDGE_ERR_CONFIG', `invalid --limit: ${JSON.stringify(v)}: expected a whole number of sessions, at least 1`);
    }
    else if (!flag.startsWith('-') && id === undefined) id = flag;
    else throw new EdgeError('EDGE_ERR_CONFIG', `unexpected argument "${arg}" for "${command}" (see --help)`);
  }
  if (command === 'kick' && id === undefined) throw new EdgeError('EDGE_ERR_CONFIG', 'kick needs a session ID: astra-auth-edge kick <id>');
  if (id !== undefined && command === 'sessions' && (channel !== undefined || name !== undefined || limit !== undefined)) {
    throw new EdgeError('EDGE_ERR_CONFIG', 'sessions <id> shows one session: --channel, --name and --limit are for the list');
  }
  try {
    new URL(adminUrl);
  } catch {
    throw new EdgeError('EDGE_ERR_CONFIG', `invalid --admin: ${JSON.stringify(adminUrl)}: expected a URL such as ${DEFAULT_ADMIN_URL}`);
  }
  return { command, adminUrl: adminUrl.replace(/\/+$/, ''), token, json, channel, name, limit, id };
}

export interface Output {
  out(text: string): void;
  err(text: string): void;
}

/** One admin API request: the answer, or the exit code after saying what went wrong. */
async function call(cmd: AdminCommand, url: string, method: 'GET' | 'DELETE', io: Output): Promise<{ status: number; text: string } | number> {
  const headers: Record<string, string> = cmd.token === undefined ? {} : { authorization: `Bearer ${cmd.token}` };
  let res: Response;
  try {
    res = await fetch(url, { method, headers, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  } catch (err) {
    io.err(`admin API unreachable at ${cmd.adminUrl} (${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}): is the edge running? check --admin or EDGE_ADMIN_URL\n`);
    return EXIT.failed;
  }
  const text = await res.text();
  if (res.status === 401) {
    io.err('the admin API refused the token: pass --token or set EDGE_ADMIN_TOKEN to the edge\'s admin.token\n');
    return EXIT.failed;
  }
  if (res.status === 404 && cmd.id !== undefined) {
    io.err(`no ${cmd.command === 'kick' ? 'live ' : ''}session ${cmd.id}: list them with "astra-auth-edge sessions"\n`);
    return EXIT.notFound;
  }
  if (res.status >= 400) {
    io.err(`admin API answered ${res.status}: ${text.trim()}\n`);
    return res.status === 400 ? EXIT.usage : EXIT.failed;
  }
  return { status: res.status, text };
}

interface SessionsPage {
  readonly sessions: RemoteSessionView[];
  readonly total?: number;
  readonly nextCursor?: string | null;
}

/**
 * Every page from the first to the last (or to --limit). Sessions that open
 * while the pages are read may be missed and closed ones may be listed: each
 * page is exact when it is read; none is listed twice.
 */
async function listSessions(cmd: AdminCommand, io: Output): Promise<{ sessions: RemoteSessionView[]; total: number } | number> {
  const sessions: RemoteSessionView[] = [];
  let cursor: string | undefined;
  const wanted = cmd.limit ?? Infinity;
  for (;;) {
    const query = new URLSearchParams({ limit: String(Math.min(PAGE_LIMIT, wanted - sessions.length)) });
    if (cmd.channel !== undefined) query.set('channel', cmd.channel);
    if (cmd.name !== undefined) query.set('name', cmd.name);
    if (cursor !== undefined) query.set('cursor', cursor);
    const answer = await call(cmd, `${cmd.adminUrl}/api/sessions?${query.toString()}`, 'GET', io);
    if (typeof answer === 'number') return answer;
    const page = JSON.parse(answer.text) as SessionsPage;
    sessions.push(...page.sessions);
    // An edge from before paging sends no cursor: its one answer is the whole table.
    if (typeof page.nextCursor !== 'string' || page.nextCursor === cursor || sessions.length >= wanted) return { sessions, total: page.total ?? sessions.length };
    cursor = page.nextCursor;
  }
}

export async function runAdminCommand(cmd: AdminCommand, io: Output): Promise<number> {
  if (cmd.command === 'kick') {
    const answer = await call(cmd, `${cmd.adminUrl}/api/sessions/${encodeURIComponent(cmd.id!)}`, 'DELETE', io);
    if (typeof answer === 'number') return answer;
    io.out(cmd.json ? (answer.text.endsWith('\n') ? answer.text : `${answer.text}\n`) : `kicked ${cmd.id}\n`);
    return EXIT.ok;
  }
  if (cmd.id !== undefined) {
    const answer = await call(cmd, `${cmd.adminUrl}/api/sessions/${encodeURIComponent(cmd.id)}`, 'GET', io);
    if (typeof answer === 'number') return answer;
    io.out(cmd.json ? (answer.text.endsWith('\n') ? answer.text : `${answer.text}\n`) : formatSession(JSON.parse(answer.text) as RemoteSessionView, Date.now()));
    return EXIT.ok;
  }
  const list = await listSessions(cmd, io);
  if (typeof list === 'number') return list;
  if (cmd.json) {
    io.out(`${JSON.stringify(list)}\n`);
    return EXIT.ok;
  }
  io.out(formatSessionTable(list.sessions, Date.now(), list.total));
  return EXIT.ok;
}

/** `in 42s`, `now`, or `-` when no check is scheduled. */
function formatNextCheck(at: string | null | undefined, now: number): string {
  if (at === null || at === undefined) return '-';
  const ms = Date.parse(at) - now;
  return ms <= 0 ? 'due' : `in ${formatAge(ms)}`;
}

/** A plain-text table, widths fitted to the content. */
export function formatSessionTable(sessions: readonly RemoteSessionView[], now: number, total = sessions.length): string {
  const header = ['ID', 'CHANNEL', 'KIND', 'NAME', 'IP', 'AGE', 'BYTES', 'REQS', 'WHY', 'NEXT CHECK', 'EDGE'];
  // `why` is absent in an edge from before it: the decision's source then; `edge` (the node holding it) before fleets.
  const rows = sessions.map((s) => [s.id, s.channel, s.kind, s.name ?? '-', s.ip, formatAge(now - Date.parse(s.openedAt)), formatBytes(s.bytes), String(s.requests), s.why?.short ?? s.decision.source ?? '-', formatNextCheck(s.nextCheckAt, now), s.edge ?? '-']);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  const count = total > sessions.length ? `${sessions.length} of ${total} sessions (--limit)` : `${sessions.length} session${sessions.length === 1 ? '' : 's'}`;
  return `${[line(header), ...rows.map(line)].join('\n')}\n${count}\n`;
}

/** One session, every field on its line, the why in words. */
export function formatSession(s: RemoteSessionView, now: number): string {
  const lines: [string, string][] = [
    ['id', s.id],
    ['edge', s.edge ?? '-'],
    ['channel', `${s.channel} (${s.kind})`],
    ['state', s.state],
    ['name', s.name ?? '-'],
    ['user', s.userId ?? '-'],
    ['ip', s.ip],
    ['user-agent', s.userAgent === '' ? '-' : s.userAgent],
    ['opened', `${s.openedAt} (${formatAge(now - Date.parse(s.openedAt))} ago)`],
    ['last seen', s.lastSeenAt],
    ['traffic', `${formatBytes(s.bytes)} in ${s.requests} requests`],
    ['decision', `${s.decision.result}${s.decision.reason === null ? '' : ` (${s.decision.reason})`}${s.decision.decidedAt === null ? '' : ` at ${s.decision.decidedAt}`}`],
    ['why', s.why?.text ?? s.decision.source ?? '-'],
  ];
  if (s.why?.backend !== undefined && s.why.backend !== null) lines.push(['middleware', `${s.why.backend}${s.why.status === null ? '' : `, answered ${s.why.status}`}${s.why.reason === null ? '' : ` (${s.why.reason})`}`]);
  if (s.why?.defaultAction !== undefined && s.why.defaultAction !== null) lines.push(['default action', `${s.why.defaultAction}, because ${s.why.failure ?? '-'}`]);
  lines.push(['next check', s.nextCheckAt === null || s.nextCheckAt === undefined ? 'none scheduled' : `${s.nextCheckAt} (${formatNextCheck(s.nextCheckAt, now)})`]);
  const width = Math.max(...lines.map(([k]) => k.length));
  return `${lines.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n')}\n`;
}

function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}
