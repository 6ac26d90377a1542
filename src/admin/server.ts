/**
 * The admin listener (default 127.0.0.1:9901): the status page, the sessions
 * API, Prometheus metrics and the health probes. `/` and /api/* need the
 * admin token when one is configured (it must be when the listener is not on
 * loopback): as a bearer token, or, for a browser, in the `edge_admin`
 * cookie that `GET /?token=…` sets. Without a token they answer only
 * requests whose Host is loopback (DNS rebinding: admin/request.ts).
 * /metrics, /healthz and /readyz stay open for Prometheus and probes, with
 * any Host, and carry no secrets.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errorBody } from '../errors.js';
import { answerReadiness, send } from '../respond.js';
import type { SessionRegistry } from '../session/registry.js';
import { handleApi, type ApiResponse } from './api.js';
import { checkAdminHost, parseAdminTarget } from './request.js';
import { readableRegistry, type RegistrySource, type StatusSampler } from './sampler.js';
import { writeSessionPage } from './session-list.js';
import { STATUS_PAGE, loginPage } from './status-page.js';

interface AdminCommon {
  readonly registry: RegistrySource;
  readonly adminToken: string | undefined;
  /** False while draining, before the public listener is up, or (if configured) while the upstream does not answer. */
  readonly isReady: () => Promise<boolean>;
  /** The status page's time series (owned and closed by the app). */
  readonly sampler: StatusSampler;
}

/** The admin API's answers: this process's session registry (api.ts), or another source (the primary of `--workers N`: cluster/admin-api.ts). */
export type ApiHandler = (method: string, path: string, query: URLSearchParams) => Promise<ApiResponse>;

export type AdminDeps = AdminCommon & ({ readonly sessions: SessionRegistry } | { readonly api: ApiHandler });

/** The cookie a browser keeps the admin token in (HttpOnly: the page's scripts never see it). */
export const ADMIN_COOKIE = 'edge_admin';
const UNAUTHORIZED_HEADERS = { 'www-authenticate': 'Bearer realm="astra-auth-edge"' };
const HTML = 'text/html; charset=utf-8';

/** Constant-time comparison of the presented token with ours (hashes first: equal lengths, no length leak). */
export function tokenMatches(presented: string | undefined, expected: string): boolean {
  if (presented === undefined) return false;
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

function bearer(req: IncomingMessage): string | undefined {
  const h = req.headers.authorization;
  if (h === undefined) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m === null ? undefined : m[1];
}

function cookieToken(req: IncomingMessage): string | undefined {
  const header = req.headers.cookie;
  if (header === undefined) return undefined;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq < 0 || pair.slice(0, eq).trim() !== ADMIN_COOKIE) continue;
    try {
      return decodeURIComponent(pair.slice(eq + 1).trim());
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** No token configured (loopback): open. Otherwise the bearer token or the cookie must match. */
function authorized(req: IncomingMessage, token: string | undefined): boolean {
  if (token === undefined) return true;
  return tokenMatches(bearer(req), token) || tokenMatches(cookieToken(req), token);
}

/**
 * `GET /`: the status page. `/?token=<t>` is the login form's submit: a right
 * token is moved into the cookie and the browser sent to plain `/`, so the
 * token leaves the URL bar (and what is bookmarked or shared from it).
 */
function answerStatusPage(req: IncomingMessage, res: ServerResponse, query: URLSearchParams, token: string | undefined): void {
  const presented = query.get('token');
  if (token !== undefined && presented !== null) {
    if (!tokenMatches(presented, token)) {
      const login = loginPage(true);
      send(res, 401, HTML, login.body, { ...login.headers, ...UNAUTHORIZED_HEADERS });
      return;
    }
    // SameSite=Strict: no other site can make the browser send it. (Another port of this host is the
    // same site, but its kick would be a cross-origin DELETE: a CORS preflight we never answer.)
    const cookie = `${ADMIN_COOKIE}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/`;
    send(res, 303, 'text/plain', 'signed in: see /\n', { location: '/', 'set-cookie': cookie, 'referrer-policy': 'no-referrer' });
    return;
  }
  if (!authorized(req, token)) {
    const login = loginPage(false);
    send(res, 401, HTML, login.body, { ...login.headers, ...UNAUTHORIZED_HEADERS });
    return;
  }
  send(res, 200, HTML, STATUS_PAGE.body, STATUS_PAGE.headers);
}

/** Open to anyone who reaches the listener, whatever Host they used: Prometheus and kubelet probes send arbitrary ones, and these carry no secret. */
const OPEN_PATHS: ReadonlySet<string> = new Set(['/metrics', '/healthz', '/readyz']);

/**
 * The admin listener's handler. Every bad input is a 4xx before any routing:
 * a target that is not a path, a missing Host, and (without a token) a Host
 * that is not loopback. Returns a promise when the answer is asynchronous,
 * so app.ts's crash guard sees its failures too.
 */
export function createAdminHandler(deps: AdminDeps): (req: IncomingMessage, res: ServerResponse) => void | Promise<void> {
  return function handleAdmin(req: IncomingMessage, res: ServerResponse): void | Promise<void> {
    const target = parseAdminTarget(req.url);
    if (!target.ok) {
      send(res, 400, 'application/json', errorBody('EDGE_ERR_BAD_REQUEST', target.reason));
      return;
    }
    const { path, query } = target;
    const method = req.method ?? 'GET';
    const host = checkAdminHost(req.headers.host);
    // HTTP/1.1 requires Host (RFC 9112 §3.2); the server is created with requireHostHeader off so this answer carries our code.
    if (host === 'missing' && (req.httpVersionMajor > 1 || req.httpVersionMinor >= 1)) {
      send(res, 400, 'application/json', errorBody('EDGE_ERR_BAD_REQUEST', 'Host header required'));
      return;
    }
    if (OPEN_PATHS.has(path)) return answerOpenPath(res, path, method, deps);
    if (deps.adminToken === undefined && host !== 'ok') {
      if (host === 'missing') send(res, 400, 'application/json', errorBody('EDGE_ERR_BAD_REQUEST', 'Host header required'));
      else send(res, 403, 'application/json', errorBody('EDGE_ERR_HOST_NOT_ALLOWED', 'use 127.0.0.1, [::1] or localhost, or set admin.token'));
      return;
    }
    if (path.startsWith('/api/')) {
      if (!authorized(req, deps.adminToken)) {
        send(res, 401, 'application/json', errorBody('EDGE_ERR_UNAUTHORIZED'), UNAUTHORIZED_HEADERS);
        return;
      }
      if ('api' in deps) return deps.api(method, path, query).then((a) => answerApi(res, a));
      const answer = handleApi(method, path, query, deps);
      return answer instanceof Promise ? answer.then((a) => answerApi(res, a)) : answerApi(res, answer);
    }
    if (method !== 'GET' && method !== 'HEAD') {
      send(res, 405, 'application/json', errorBody('EDGE_ERR_METHOD_NOT_ALLOWED'), { allow: 'GET, HEAD' });
      return;
    }
    if (path === '/') {
      answerStatusPage(req, res, query, deps.adminToken);
      return;
    }
    send(res, 404, 'application/json', errorBody('EDGE_ERR_NOT_FOUND'));
  };
}

function answerApi(res: ServerResponse, answer: ApiResponse): void | Promise<void> {
  if (res.destroyed) return;
  if ('page' in answer) return writeSessionPage(res, answer.page);
  send(res, answer.status, 'application/json', `${JSON.stringify(answer.body)}\n`, answer.status === 405 ? { allow: 'GET, DELETE' } : undefined);
}

/** /metrics, /healthz, /readyz. */
function answerOpenPath(res: ServerResponse, path: string, method: string, deps: AdminDeps): void | Promise<void> {
  if (method !== 'GET' && method !== 'HEAD') {
    send(res, 405, 'application/json', errorBody('EDGE_ERR_METHOD_NOT_ALLOWED'), { allow: 'GET, HEAD' });
    return;
  }
  if (path === '/healthz') {
    send(res, 200, 'text/plain', 'ok\n');
    return;
  }
  if (path === '/readyz') return answerReadiness(res, deps.isReady);
  return readableRegistry(deps.registry)
    .then(async (registry) => ({ type: registry.contentType, text: await registry.metrics() }))
    .then(
      ({ type, text }) => send(res, 200, type, text),
      (err: unknown) => send(res, 500, 'text/plain', `metrics collection failed: ${(err as Error).message}\n`),
    );
}
