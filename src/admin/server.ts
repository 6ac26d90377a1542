/**
 * The admin listener (default 127.0.0.1:9901): the status page, the sessions
 * API, Prometheus metrics and the health probes. `/` and /api/* need the
 * admin token when one is configured (it must be when the listener is not on
 * loopback): as a bearer token, or, for a browser, in the `edge_admin`
 * cookie that `GET /?token=…` sets; /metrics, /healthz and /readyz stay open
 * for Prometheus and probes and carry no secrets.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { errorBody } from '../errors.js';
import type { SessionRegistry } from '../session/registry.js';
import { handleApi } from './api.js';
import type { StatusSampler } from './sampler.js';
import { STATUS_PAGE, loginPage } from './status-page.js';

export interface AdminDeps {
  readonly registry: Registry;
  readonly sessions: SessionRegistry;
  readonly adminToken: string | undefined;
  /** False while draining, before the public listener is up, or (if configured) while the upstream does not answer. */
  readonly isReady: () => Promise<boolean>;
  /** The status page's time series (owned and closed by the app). */
  readonly sampler: StatusSampler;
}

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

export function createAdminHandler(deps: AdminDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return function handleAdmin(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://admin');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (path.startsWith('/api/')) {
      if (!authorized(req, deps.adminToken)) {
        send(res, 401, 'application/json', errorBody('EDGE_ERR_UNAUTHORIZED'), UNAUTHORIZED_HEADERS);
        return;
      }
      const answer = handleApi(method, path, url.searchParams, deps);
      send(res, answer.status, 'application/json', `${JSON.stringify(answer.body)}\n`, answer.status === 405 ? { allow: 'GET, DELETE' } : undefined);
      return;
    }
    if (method !== 'GET' && method !== 'HEAD') {
      send(res, 405, 'application/json', errorBody('EDGE_ERR_METHOD_NOT_ALLOWED'), { allow: 'GET, HEAD' });
      return;
    }
    switch (path) {
      case '/':
        answerStatusPage(req, res, url.searchParams, deps.adminToken);
        return;
      case '/healthz':
        send(res, 200, 'text/plain', 'ok\n');
        return;
      case '/readyz':
        void answerReadiness(res, deps.isReady);
        return;
      case '/metrics':
        deps.registry.metrics().then(
          (text) => send(res, 200, deps.registry.contentType, text),
          (err: unknown) => send(res, 500, 'text/plain', `metrics collection failed: ${(err as Error).message}\n`),
        );
        return;
      default:
        send(res, 404, 'application/json', errorBody('EDGE_ERR_NOT_FOUND'));
    }
  };
}

/** /readyz, shared by the admin and (optionally) the public listener. */
export async function answerReadiness(res: ServerResponse, isReady: () => Promise<boolean>): Promise<void> {
  const ready = await isReady().catch(() => false);
  if (ready) send(res, 200, 'text/plain', 'ready\n');
  else send(res, 503, 'text/plain', 'not ready\n');
}

export function send(res: ServerResponse, status: number, contentType: string, body: string, extra?: Record<string, string>): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', ...extra });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
