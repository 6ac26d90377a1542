/**
 * The admin listener (default 127.0.0.1:9901): the sessions API, Prometheus
 * metrics and the health probes. /api/* needs the admin bearer token when one
 * is configured (it must be when the listener is not on loopback); /metrics,
 * /healthz and /readyz stay open for Prometheus and probes and carry no
 * secrets.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { errorBody } from '../errors.js';
import type { SessionRegistry } from '../session/registry.js';
import { handleApi } from './api.js';

export interface AdminDeps {
  readonly registry: Registry;
  readonly sessions: SessionRegistry;
  readonly adminToken: string | undefined;
  /** False while draining, before the public listener is up, or (if configured) while the upstream does not answer. */
  readonly isReady: () => Promise<boolean>;
}

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

export function createAdminHandler(deps: AdminDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return function handleAdmin(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://admin');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (path.startsWith('/api/')) {
      if (deps.adminToken !== undefined && !tokenMatches(bearer(req), deps.adminToken)) {
        send(res, 401, 'application/json', errorBody('EDGE_ERR_UNAUTHORIZED'), { 'www-authenticate': 'Bearer realm="astra-auth-edge"' });
        return;
      }
      const answer = handleApi(method, path, url.searchParams, deps.sessions);
      send(res, answer.status, 'application/json', `${JSON.stringify(answer.body)}\n`, answer.status === 405 ? { allow: 'GET, DELETE' } : undefined);
      return;
    }
    if (method !== 'GET' && method !== 'HEAD') {
      send(res, 405, 'application/json', errorBody('EDGE_ERR_METHOD_NOT_ALLOWED'), { allow: 'GET, HEAD' });
      return;
    }
    switch (path) {
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
