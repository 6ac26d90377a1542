/**
 * `astra-auth-edge check`: what the edge would do for one viewer's request,
 * without serving it (operator issue, part 1). Every decision is made by the
 * edge's own code: identify (check/identify.ts, the handler's functions),
 * decideLocally (the Authorizer's rules and securetoken), each backend's
 * describeRequest and interpret, and defaultActionMeans. Only the HTTP
 * exchange is `check`'s own, split in steps (check/exchange.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { localPolicy } from '../app.js';
import { decideLocally, defaultActionMeans, REASON_NO_BACKEND, REASON_UNAVAILABLE, type LocalOutcome } from '../auth/authorizer.js';
import type { MiddlewareBackend, MiddlewareCall } from '../auth/backends/call.js';
import { createBackend } from '../auth/backends/index.js';
import { parseMiddlewareTtlMs } from '../auth/backends/response.js';
import { RULE_ORDER } from '../auth/rules.js';
import type { AuthRequest, BackendVerdict } from '../auth/types.js';
import { cidrList } from '../config/cidr.js';
import type { BackendEntry, DefaultAction, EdgeConfig } from '../config/schema.js';
import { EdgeError, ERROR_CODES, type ErrorCode } from '../errors.js';
import { QueryRedactor, REDACTED, redactUrl } from '../redact.js';
import { newSessionId } from '../session/session.js';
import { exchange, type LookupAll, type ResponseFacts, type Step } from './exchange.js';
import { identify, parseViewerUrl, type Identified, type Refused } from './identify.js';
import { formatDuration } from './report.js';

/** What `check` uses when no --ip is given. */
export const DEFAULT_CHECK_IP = '127.0.0.1';

export const CHECK_EXIT = { allow: 0, deny: 1, usage: 2, unavailable: 3 } as const;

export type Result = 'allow' | 'deny' | 'unavailable';

export interface CheckInput {
  readonly url: string;
  readonly ip: string | undefined;
  readonly userAgent: string | undefined;
  readonly headers: readonly (readonly [string, string])[];
  readonly showSecrets: boolean;
  readonly recheckProbeMs: number | undefined;
}

export interface CheckDeps {
  readonly lookup?: LookupAll;
  readonly now?: () => number;
}

export interface RuleStep {
  readonly order: number;
  readonly flag: string;
  readonly entries: number;
  readonly result: 'off' | 'no_match' | 'match' | 'not_reached';
  readonly reason: string;
  readonly allow: boolean;
}

export interface Outcome {
  readonly result: Result;
  /** The verdict's reason, or the failure's code for `unavailable`. */
  readonly reason: string;
  readonly status?: number;
  readonly code?: ErrorCode;
  readonly message?: string;
  readonly ttlMs?: number;
  readonly sessionName?: string;
  readonly userId?: string;
  readonly maxSessions?: number;
  readonly unique?: boolean;
  readonly location?: string;
}

export interface BackendReport {
  readonly name: string;
  readonly type: string;
  /** The configured URL, secrets redacted unless --show-secrets. */
  readonly url: string;
  /** The exact request, or null when the backend decides without one (no token to check). */
  readonly request: { readonly method: string; readonly url: string; readonly headers: readonly (readonly [string, string])[] } | null;
  readonly steps: readonly Step[];
  readonly response: (Omit<ResponseFacts, 'rawHeaders' | 'snippet'> & { readonly headers: readonly (readonly [string, string])[]; readonly body: string }) | null;
  readonly outcome: Outcome;
  /** --recheck-probe: the same request asked again later. */
  readonly recheck?: { readonly afterMs: number; readonly steps: readonly Step[]; readonly outcome: Outcome; readonly oneShot: boolean };
}

export interface Verdict {
  readonly result: Result;
  /** What decided: the request refused outright, a local rule, securetoken, the middleware, or the default action. */
  readonly decidedBy: 'refused' | 'rule' | 'securetoken' | 'backend' | 'default';
  readonly reason: string;
  readonly backend?: string;
  /** What the viewer gets from the edge. */
  readonly viewerGets: string;
  /** When the middleware could not decide, or none is configured. */
  readonly defaultAction?: { readonly action: DefaultAction; readonly newViewer: 'allow' | 'deny'; readonly means: string };
  /** How long the edge keeps the decision before asking again, and from which setting or header. */
  readonly keptMs?: number;
  readonly keptBecause?: string;
  readonly summary: string;
}

export interface CheckReport {
  readonly request: {
    readonly url: string;
    readonly host: string;
    readonly peerIp: string;
    readonly peerIpFrom: '--ip' | 'default';
    readonly userAgent: string;
    readonly headers: readonly (readonly [string, string])[];
  };
  readonly identify:
    | (Omit<Identified, 'token' | 'query' | 'upstreamQuery' | 'marker'> & { readonly query: string; readonly upstreamQuery: string; readonly token: string | null; readonly tokenLength: number | null; readonly marker: boolean })
    | Refused;
  readonly rules: readonly RuleStep[];
  readonly securetoken: { readonly configured: boolean; readonly reason: string | null; readonly allow: boolean | null; readonly decides: boolean };
  readonly backends: readonly BackendReport[];
  readonly verdict: Verdict;
  readonly notes: readonly string[];
  readonly warnings: readonly string[];
  readonly exitCode: number;
}

/** Stands in for a secret inside values the backends encode: unreserved characters only, so every encoding keeps it whole. */
const PLACEHOLDER = '__EDGE_CHECK_REDACTED__';

/** Response headers worth showing: what the verdict reads, and what says what the body is. */
const SHOWN_RESPONSE_HEADERS = new Set(['x-authduration', 'cache-control', 'x-session-name', 'x-userid', 'x-max-sessions', 'x-unique', 'x-location', 'location', 'content-type', 'content-length', 'transfer-encoding', 'server', 'www-authenticate']);

class Redactor {
  private readonly query: QueryRedactor;
  private readonly placeholderQuery: QueryRedactor;
  private readonly secrets: string[];

  constructor(
    private readonly show: boolean,
    config: EdgeConfig,
    token: string | undefined,
  ) {
    const names = [config.session.tokenParam, config.session.param, ...config.log.redactParams];
    this.query = new QueryRedactor(names);
    this.placeholderQuery = new QueryRedactor(names, PLACEHOLDER);
    // A token of a few characters would blank out unrelated text: those are caught by name only.
    this.secrets = token !== undefined && token.length >= 4 ? [token, encodeURIComponent(token)] : [];
  }

  /** The client's query: the token (and marker) values hidden. */
  clientQuery(query: string): string {
    return this.show ? query : this.query.redact(query);
  }

  /** Free text that may quote the token (a body, a redirect target). */
  text(text: string): string {
    if (this.show) return text;
    let out = text;
    for (const s of this.secrets) out = out.split(s).join(REDACTED);
    return out;
  }

  /** The AuthRequest a backend builds the shown request from: the same, with the secrets as placeholders. */
  request(request: AuthRequest): AuthRequest {
    if (this.show) return request;
    return { ...request, token: request.token === undefined || request.token === '' ? request.token : PLACEHOLDER, query: this.placeholderQuery.redact(request.query) };
  }

  /** The configured URL's own query values and credentials (API keys) hidden, then the placeholders shown as `<redacted>`. */
  call(call: MiddlewareCall, configuredUrl: string): { method: string; url: string; headers: [string, string][] } {
    let path = call.path;
    const headers: [string, string][] = [['host', new URL(call.origin).host], ['connection', 'keep-alive']];
    for (let i = 0; i + 1 < call.headers.length; i += 2) headers.push([call.headers[i]!, call.headers[i + 1]!]);
    if (!this.show) {
      const q = configuredUrl.indexOf('?');
      const pq = path.indexOf('?');
      if (q !== -1 && pq !== -1) {
        const own = configuredUrl.slice(q + 1).split('#')[0]!;
        if (own !== '' && path.startsWith(own, pq + 1)) path = `${path.slice(0, pq + 1)}${redactUrl(`?${own}`).slice(1)}${path.slice(pq + 1 + own.length)}`;
      }
      path = path.split(PLACEHOLDER).join(REDACTED);
      for (const h of headers) h[1] = this.text(h[1].split(PLACEHOLDER).join(REDACTED));
    }
    return { method: call.method, url: `${call.origin}${path}`, headers };
  }

  configuredUrl(url: string): string {
    return this.show ? url : redactUrl(url);
  }
}

function outcomeOf(verdict: BackendVerdict): Outcome {
  return {
    result: verdict.allow ? 'allow' : 'deny',
    reason: verdict.reason,
    ...(verdict.status !== undefined && { status: verdict.status }),
    ...(verdict.ttlMs !== undefined && { ttlMs: verdict.ttlMs }),
    ...(verdict.sessionName !== undefined && { sessionName: verdict.sessionName }),
    ...(verdict.userId !== undefined && { userId: verdict.userId }),
    ...(verdict.maxSessions !== undefined && { maxSessions: verdict.maxSessions }),
    ...(verdict.unique !== undefined && { unique: verdict.unique }),
    ...(verdict.location !== undefined && { location: verdict.location }),
  };
}

/** One backend asked once: the steps, the response, and its verdict by the backend's own interpret. */
async function ask(backend: MiddlewareBackend, entry: BackendEntry, request: AuthRequest, deps: CheckDeps): Promise<{ call: MiddlewareCall | undefined; steps: readonly Step[]; response: ResponseFacts | undefined; outcome: Outcome }> {
  const planned = backend.describeRequest(request);
  if (planned.call === undefined) return { call: undefined, steps: [], response: undefined, outcome: outcomeOf(planned.verdict) };
  const result = await exchange(planned.call, { timeoutMs: entry.timeoutMs, maxBodyBytes: entry.maxBodyBytes, caFile: entry.ca, ...(deps.lookup !== undefined && { lookup: deps.lookup }) });
  if (result.answer === undefined) {
    const failure = result.failure!;
    return { call: planned.call, steps: result.steps, response: result.response, outcome: { result: 'unavailable', reason: failure.code, code: failure.code, message: failure.message } };
  }
  try {
    return { call: planned.call, steps: result.steps, response: result.response, outcome: outcomeOf(backend.interpret(result.answer)) };
  } catch (err) {
    const code: ErrorCode = err instanceof EdgeError ? err.code : 'EDGE_ERR_BACKEND_INVALID';
    return { call: planned.call, steps: result.steps, response: result.response, outcome: { result: 'unavailable', reason: code, code, message: (err as Error).message } };
  }
}

function shownResponse(response: ResponseFacts | undefined, redact: Redactor): BackendReport['response'] {
  if (response === undefined) return null;
  const headers: [string, string][] = [];
  for (let i = 0; i + 1 < response.rawHeaders.length; i += 2) {
    if (SHOWN_RESPONSE_HEADERS.has(response.rawHeaders[i]!.toLowerCase())) headers.push([response.rawHeaders[i]!, redact.text(response.rawHeaders[i + 1]!)]);
  }
  const { rawHeaders: _raw, snippet, ...facts } = response;
  return { ...facts, headers, body: redact.text(snippet) };
}

/** How long the edge keeps a decision (SessionRegistry's TTL rule), and why that long. */
function kept(config: EdgeConfig, allow: boolean, ttlMs: number | undefined, because: string | undefined): { keptMs: number; keptBecause: string } {
  if (ttlMs === undefined) return allow ? { keptMs: config.auth.allowTtlMs, keptBecause: '--allow-ttl' } : { keptMs: config.auth.denyTtlMs, keptBecause: '--deny-ttl' };
  if (ttlMs > config.auth.maxTtlMs) return { keptMs: config.auth.maxTtlMs, keptBecause: `${because ?? 'the verdict'}, capped by --max-ttl` };
  return { keptMs: ttlMs, keptBecause: because ?? 'the verdict' };
}

function ttlSource(response: ResponseFacts | undefined, type: string): string {
  const header = (name: string): string | undefined => {
    const raw = response?.rawHeaders ?? [];
    for (let i = 0; i + 1 < raw.length; i += 2) if (raw[i]!.toLowerCase() === name) return raw[i + 1];
    return undefined;
  };
  const authDuration = header('x-authduration');
  if (authDuration !== undefined && parseMiddlewareTtlMs(authDuration, undefined) !== undefined) return 'X-AuthDuration from the middleware';
  if (parseMiddlewareTtlMs(undefined, header('cache-control')) !== undefined) return 'Cache-Control max-age from the middleware';
  return `the ${type} backend's default`;
}

function ruleSteps(config: EdgeConfig, local: LocalOutcome): RuleStep[] {
  const matched = local.rule === undefined ? -1 : RULE_ORDER.findIndex((r) => r.reason === local.rule!.reason);
  return RULE_ORDER.map((r, i) => {
    const entries = config.rules[r.list].length;
    const result = entries === 0 ? 'off' : i === matched ? 'match' : matched !== -1 && i > matched ? 'not_reached' : 'no_match';
    return { order: i + 1, flag: r.flag, entries, result, reason: r.reason, allow: r.allow };
  });
}

function unavailableVerdict(config: EdgeConfig, reason: string, failure: string): Verdict {
  const action = config.auth.defaultAction;
  const newViewer = action === 'allow' ? 'allow' : 'deny';
  const means = defaultActionMeans(action);
  const noBackend = reason === REASON_NO_BACKEND;
  const why = noBackend ? 'no middleware is configured (--backend)' : `no middleware could decide (${failure})`;
  const consequence =
    action === 'allow'
      ? noBackend
        ? 'EVERYONE GETS IN: every new viewer is allowed without any check'
        : 'EVERYONE GETS IN while the middleware is down: every new viewer is allowed without any check (Astra\'s "Unexpected access")'
      : action === 'deny'
        ? 'NOBODY NEW GETS IN: every new viewer is refused, and sessions are ended at their re-check'
        : 'new viewers are refused; sessions already granted keep playing';
  return {
    result: noBackend ? newViewer : 'unavailable',
    decidedBy: 'default',
    reason,
    viewerGets: newViewer === 'allow' ? '200: served' : `403 EDGE_ERR_AUTH_UNAVAILABLE (${reason})`,
    defaultAction: { action, newViewer, means },
    keptMs: config.auth.unavailableTtlMs,
    keptBecause: '--unavailable-ttl',
    summary: `${why}, and --default-action is ${action}: ${consequence}`,
  };
}

/** The decision of several middlewares asked at once (auth/parallel.ts): any allow wins, else the first deny, else unavailable. */
function combined(reports: readonly BackendReport[]): BackendReport | undefined {
  return reports.find((r) => r.outcome.result === 'allow') ?? reports.find((r) => r.outcome.result === 'deny');
}

export async function runCheckReport(config: EdgeConfig, input: CheckInput, deps: CheckDeps = {}): Promise<CheckReport> {
  const now = deps.now ?? Date.now;
  const notes: string[] = [];
  const warnings: string[] = [];
  const parsed = parseViewerUrl(input.url);
  if ('error' in parsed) throw new EdgeError('EDGE_ERR_CONFIG', `check: ${parsed.error}`);
  if (parsed.droppedFragment) notes.push('the URL\'s #fragment is not part of a request: players never send it');
  const peerIp = input.ip ?? DEFAULT_CHECK_IP;
  if (input.ip === undefined) notes.push(`no --ip: the request is checked as coming from ${DEFAULT_CHECK_IP}; IP rules, securetoken with --securetoken-bind-ip and the middleware's own IP checks depend on it: pass the viewer's address`);
  const rawHeaders: string[] = [];
  const extra = input.headers.filter(([n]) => n.toLowerCase() !== 'user-agent');
  // The URL's host is the Host header, unless --header Host replaces it (a second one is the duplicate the edge refuses).
  const hostGiven = extra.some(([n]) => n.toLowerCase() === 'host');
  if (parsed.host !== undefined && !hostGiven) rawHeaders.push('Host', parsed.host);
  const userAgent = input.userAgent ?? input.headers.find(([n]) => n.toLowerCase() === 'user-agent')?.[1];
  if (userAgent !== undefined) rawHeaders.push('User-Agent', userAgent);
  for (const [n, v] of extra) rawHeaders.push(n, v);

  const trusted = cidrList(config.proxy.trustedProxies);
  const who = identify({ target: parsed.target, rawHeaders, peerIp }, config, trusted);
  const token = who.ok ? who.token : undefined;
  const redact = new Redactor(input.showSecrets, config, token);
  const q = parsed.target.indexOf('?');
  const shownTarget = q === -1 ? parsed.target : `${parsed.target.slice(0, q + 1)}${redact.clientQuery(parsed.target.slice(q + 1))}`;
  const request: CheckReport['request'] = {
    url: parsed.host === undefined ? shownTarget : `${/^https:/i.test(input.url) ? 'https' : 'http'}://${parsed.host}${shownTarget}`,
    host: who.ok ? who.host : (parsed.host ?? ''),
    peerIp,
    peerIpFrom: input.ip === undefined ? 'default' : '--ip',
    userAgent: userAgent ?? '',
    headers: extra.map(([n, v]) => [n, redact.text(v)] as const),
  };
  const base = { request, notes, warnings };
  const off = { configured: config.securetoken.secret !== undefined, reason: null, allow: null, decides: false };

  if (!who.ok) {
    const reason = who.reason ?? ERROR_CODES[who.code].text;
    return {
      ...base,
      identify: who,
      rules: [],
      securetoken: off,
      backends: [],
      verdict: {
        result: 'deny',
        decidedBy: 'refused',
        reason,
        viewerGets: `${who.status} ${who.code}${who.reason === undefined ? '' : ` (${who.reason})`}`,
        summary: `the edge refuses this request outright (${who.step}: ${reason}): neither the middleware nor the origin is asked`,
      },
      exitCode: CHECK_EXIT.deny,
    };
  }
  if (who.marker !== undefined) {
    notes.push(`the URL carries a session marker (${config.session.param}=): the edge would serve it from its store while that session lives (see astra-auth-edge sessions); check cannot see the store and checks it as a new session`);
  }
  const shownIdentify: CheckReport['identify'] = {
    ...who,
    query: redact.clientQuery(who.query),
    upstreamQuery: redact.clientQuery(who.upstreamQuery),
    token: who.token === undefined ? null : input.showSecrets ? who.token : REDACTED,
    tokenLength: who.token === undefined ? null : who.token.length,
    marker: who.marker !== undefined,
  };
  const hasBackend = config.backends.length > 0;
  const local = decideLocally(localPolicy(config), who, hasBackend, now());
  const rules = ruleSteps(config, local);
  const st = local.securetoken;
  const securetoken = st === undefined ? off : { configured: true, reason: st.reason, allow: st.allow, decides: local.rule === undefined && local.decided !== undefined };
  if (local.decided !== undefined) {
    const bySecuretoken = local.rule === undefined;
    const { keptMs, keptBecause } = kept(config, local.decided.allow, local.decided.ttlMs, bySecuretoken ? 'the securetoken\'s end time' : undefined);
    const what = bySecuretoken ? 'securetoken' : `local rule ${RULE_ORDER.find((r) => r.reason === local.decided!.reason)?.flag ?? ''}`;
    return {
      ...base,
      identify: shownIdentify,
      rules,
      securetoken,
      backends: [],
      verdict: {
        result: local.decided.allow ? 'allow' : 'deny',
        decidedBy: bySecuretoken ? 'securetoken' : 'rule',
        reason: local.decided.reason,
        viewerGets: local.decided.allow ? '200: served' : `403 EDGE_ERR_AUTH_DENIED (${local.decided.reason})`,
        keptMs,
        keptBecause,
        summary: `${local.decided.allow ? 'allowed' : 'denied'} by the ${what} (${local.decided.reason}): the middleware is not asked`,
      },
      exitCode: local.decided.allow ? CHECK_EXIT.allow : CHECK_EXIT.deny,
    };
  }
  if (!hasBackend) {
    const verdict = unavailableVerdict(config, REASON_NO_BACKEND, REASON_NO_BACKEND);
    return { ...base, identify: shownIdentify, rules, securetoken, backends: [], verdict, exitCode: verdict.result === 'allow' ? CHECK_EXIT.allow : CHECK_EXIT.deny };
  }

  const authRequest: AuthRequest = {
    sessionId: newSessionId(),
    channel: who.channel,
    clientIp: who.clientIp,
    path: who.path,
    query: who.upstreamQuery,
    userAgent: who.userAgent,
    host: who.host,
    kind: who.sessionKind,
    requestType: 'new',
    token: who.token,
    requestNumber: 0,
    // check cannot see the edge's table: Flussonic's stream_clients and total_clients are sent as 0.
    streamClients: 0,
    totalClients: 0,
    referer: who.referer,
  };
  const backends: MiddlewareBackend[] = [];
  try {
    for (const entry of config.backends) {
      try {
        backends.push(createBackend(entry));
      } catch (err) {
        throw new EdgeError('EDGE_ERR_CONFIG', `backend ${entry.name}: ${(err as Error).message} (the edge would not start either)`);
      }
    }
    const asked = await Promise.all(backends.map((b, i) => ask(b, config.backends[i]!, authRequest, deps)));
    const reports: BackendReport[] = asked.map((a, i) => {
      const entry = config.backends[i]!;
      if (/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(entry.url)) {
        warnings.push(`backend ${entry.name}: its URL carries credentials (user:password@): the edge does not send them (no Authorization header), so a middleware that needs them refuses every viewer`);
      }
      const planned = a.call === undefined ? undefined : redact.call(backends[i]!.describeRequest(redact.request(authRequest)).call!, entry.url);
      return { name: entry.name, type: entry.type, url: redact.configuredUrl(entry.url), request: planned ?? null, steps: a.steps, response: shownResponse(a.response, redact), outcome: a.outcome };
    });

    if (input.recheckProbeMs !== undefined) await probeRecheck(reports, backends, config, authRequest, input.recheckProbeMs, deps, warnings);

    const decider = combined(reports);
    let verdict: Verdict;
    if (decider === undefined) {
      const failures = reports.map((r) => `${r.name}: ${r.outcome.message ?? r.outcome.reason}`).join('; ');
      verdict = unavailableVerdict(config, REASON_UNAVAILABLE, failures);
    } else {
      const o = decider.outcome;
      const allow = o.result === 'allow';
      const { keptMs, keptBecause } = kept(config, allow, o.ttlMs, o.ttlMs === undefined ? undefined : ttlSource(asked[reports.indexOf(decider)]!.response, decider.type));
      const several = reports.length > 1 ? (allow ? ' (the first allow of several wins)' : ' (none allowed: the first deny decides)') : '';
      verdict = {
        result: allow ? 'allow' : 'deny',
        decidedBy: 'backend',
        reason: o.reason,
        backend: decider.name,
        viewerGets: allow ? '200: served' : o.location !== undefined ? `302 to the middleware's X-Location` : `403 EDGE_ERR_AUTH_DENIED (${o.reason})`,
        keptMs,
        keptBecause,
        summary: `${allow ? 'allowed' : 'denied'} by the middleware ${decider.name}${o.status === undefined ? '' : ` (it answered ${o.status})`}: ${o.reason}${several}`,
      };
      if (allow && o.ttlMs === undefined && decider.recheck === undefined) {
        notes.push(
          `the middleware sent no X-AuthDuration: the edge re-checks this session after ${formatDuration(config.auth.allowTtlMs)} (--allow-ttl) with the same token; if its tokens are one-shot or short-lived (Ministra: 5 s), that re-check ends the session: run again with --recheck-probe to find out`,
        );
      }
    }
    const exitCode = verdict.result === 'allow' ? CHECK_EXIT.allow : verdict.result === 'deny' ? CHECK_EXIT.deny : CHECK_EXIT.unavailable;
    return { ...base, identify: shownIdentify, rules, securetoken, backends: reports, verdict, exitCode };
  } finally {
    await Promise.all(backends.map((b) => b.close()));
  }
}

/**
 * --recheck-probe: each middleware that allowed is asked the same request
 * again `delayMs` later, as the edge's re-check would ask (request_type
 * update). An allow then a deny is the sign of one-shot tokens (Smarty) or
 * tokens that die within seconds (Ministra: 5 s), which end every session at
 * its first re-check.
 */
async function probeRecheck(reports: BackendReport[], backends: readonly MiddlewareBackend[], config: EdgeConfig, first: AuthRequest, delayMs: number, deps: CheckDeps, warnings: string[]): Promise<void> {
  const allowed = reports.map((r, i) => i).filter((i) => reports[i]!.outcome.result === 'allow' && reports[i]!.request !== null);
  if (allowed.length === 0) return;
  await sleep(delayMs);
  const again: AuthRequest = { ...first, requestType: 'update', requestNumber: 1 };
  await Promise.all(
    allowed.map(async (i) => {
      const entry = config.backends[i]!;
      const a = await ask(backends[i]!, entry, again, deps);
      const oneShot = a.outcome.result === 'deny';
      reports[i] = { ...reports[i]!, recheck: { afterMs: delayMs, steps: a.steps, outcome: a.outcome, oneShot } };
      if (oneShot) {
        warnings.push(
          `backend ${entry.name}: it allowed this token, then denied the same request ${formatDuration(delayMs)} later (${a.outcome.reason}): this middleware issues one-shot tokens (or tokens that die within seconds), and the edge's re-check after ${formatDuration(config.auth.allowTtlMs)} (--allow-ttl) would end every session. Fix: have it send X-AuthDuration with its allow (Ministra does: --backend-type stalker), or turn re-checks off with --recheck never`,
        );
      }
    }),
  );
}
