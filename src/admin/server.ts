/**
 * The admin listener (default 127.0.0.1:9901): Prometheus metrics and the
 * health probes. Bound to loopback by default: nothing here is for players.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { errorBody } from '../errors.js';

export interface AdminDeps {
  readonly registry: Registry;
  /** False while draining or before the public listener is up. */
  readonly isReady: () => boolean;
}

export function createAdminHandler(deps: AdminDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return function handleAdmin(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'application/json', errorBody('EDGE_ERR_METHOD_NOT_ALLOWED'), { allow: 'GET, HEAD' });
      return;
    }
    switch (path) {
      case '/healthz':
        send(res, 200, 'text/plain', 'ok\n');
        return;
      case '/readyz':
        if (deps.isReady()) send(res, 200, 'text/plain', 'ready\n');
        else send(res, 503, 'text/plain', 'not ready\n');
        return;
      case '/metrics':
        deps.registry.metrics().then(
          (text) => send(res, 200, deps.registry.contentType, text),
          (err: unknown) => send(res, 500, 'text/plain', `metrics collection failed: ${(err as Error).message}\n`),
        );
        return;
      default:
        send(res, 404, 'application/json', '{"error":"EDGE_ERR_NOT_FOUND"}\n');
    }
  };
}

function send(res: ServerResponse, status: number, contentType: string, body: string, extra?: Record<string, string>): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', ...extra });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
