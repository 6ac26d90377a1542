/**
 * The demo middleware, speaking the edge's `http` backend protocol (Astra's
 * "HTTP Request"): `GET /auth?<the player's query>`; 2xx allows, 403 denies.
 * Quiet: it prints nothing per request, it counts, and the demo prints the
 * counts when it stops (one check per viewing session is the point).
 *
 *   token=demo-<anything>   200, X-Session-Name and X-UserId: the token
 *   token=demo-denied       403
 *   token=demo-slow         answers (200) after 3 s: longer than the edge's
 *                           backend timeout, so the edge's default action decides
 *   no token, other tokens  403
 */
import type { ServerResponse } from 'node:http';
import { startLoopbackServer } from './serve.js';

export const DEMO_TOKEN_PREFIX = 'demo-';
export const DENIED_TOKEN = 'demo-denied';
export const SLOW_TOKEN = 'demo-slow';
/** The slow token's answer time: three times the edge's default backend timeout (1 s). */
export const SLOW_ANSWER_MS = 3000;
export const CHECK_PATH = '/auth';

export type Verdict = 'allow' | 'deny' | 'slow';

export interface MiddlewareCounts {
  checks: number;
  allowed: number;
  denied: number;
  slow: number;
}

export interface DemoMiddleware {
  /** The URL to configure as the edge's backend. */
  readonly checkUrl: string;
  counts(): Readonly<MiddlewareCounts>;
  close(): Promise<void>;
}

export function verdictFor(token: string | null): Verdict {
  if (token === DENIED_TOKEN) return 'deny';
  if (token === SLOW_TOKEN) return 'slow';
  return token !== null && token.startsWith(DEMO_TOKEN_PREFIX) && token.length > DEMO_TOKEN_PREFIX.length ? 'allow' : 'deny';
}

/** A header value from a decoded token: anything outside visible ASCII becomes "_" (a token may carry %0A). */
function headerSafe(token: string): string {
  return token.replace(/[^\x21-\x7e]/g, '_').slice(0, 128);
}

export async function startDemoMiddleware(): Promise<DemoMiddleware> {
  const counts: MiddlewareCounts = { checks: 0, allowed: 0, denied: 0, slow: 0 };
  const timers = new Set<NodeJS.Timeout>();

  function allow(res: ServerResponse, token: string): void {
    const name = headerSafe(token);
    res.writeHead(200, { 'content-type': 'text/plain', 'x-session-name': name, 'x-userid': name }).end('allowed\n');
  }

  const server = await startLoopbackServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://middleware');
    if (url.pathname !== CHECK_PATH) return void res.writeHead(404).end();
    const token = url.searchParams.get('token');
    counts.checks++;
    switch (verdictFor(token)) {
      case 'allow':
        counts.allowed++;
        return allow(res, token!);
      case 'deny':
        counts.denied++;
        return void res.writeHead(403, { 'content-type': 'text/plain' }).end('denied\n');
      case 'slow': {
        counts.slow++;
        const timer = setTimeout(() => {
          timers.delete(timer);
          if (!res.destroyed) allow(res, token!);
        }, SLOW_ANSWER_MS);
        timers.add(timer);
        // The edge gives up after its backend timeout and closes the connection.
        res.once('close', () => {
          clearTimeout(timer);
          timers.delete(timer);
        });
      }
    }
  }, () => {
    for (const timer of timers) clearTimeout(timer);
    timers.clear();
  });
  return {
    checkUrl: `${server.url}${CHECK_PATH}`,
    counts: () => ({ ...counts }),
    close: () => server.close(),
  };
}
