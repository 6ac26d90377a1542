/** Reading a middleware's answer, shared by the backends' interpret (pure). */
import { EdgeError } from '../../errors.js';
import type { BackendVerdict } from '../types.js';
import type { MiddlewareAnswer } from './client.js';

/**
 * A 5xx is no decision from any middleware type: the middleware is
 * unavailable and the default action applies (PROTOCOLS §1, §5, §7).
 */
export function rejectServerError(status: number): void {
  if (status >= 500) throw new EdgeError('EDGE_ERR_BACKEND_HTTP_5XX', `middleware answered ${status}`);
}

/**
 * Decision TTL the middleware asked for: `X-AuthDuration: <seconds>` (Flussonic
 * and Ministra, PROTOCOLS §2, §5) wins over `Cache-Control: max-age=<seconds>`.
 * Malformed values are ignored (the configured TTL applies).
 */
export function parseMiddlewareTtlMs(authDuration: string | undefined, cacheControl: string | undefined): number | undefined {
  if (authDuration !== undefined && /^\s*\d+\s*$/.test(authDuration)) return Number(authDuration) * 1000;
  if (cacheControl !== undefined) {
    const m = /(?:^|[,\s])(?:s-maxage|max-age)\s*=\s*"?(\d+)"?/i.exec(cacheControl);
    if (m !== null) return Number(m[1]) * 1000;
  }
  return undefined;
}

/** The per-user fields Ministra and Flussonic-style middlewares send with an allow (PROTOCOLS §2, §5). */
export interface UserFields {
  userId?: string;
  maxSessions?: number;
  unique?: boolean;
}

export function parseUserFields(header: (name: string) => string | undefined): UserFields {
  const out: UserFields = {};
  const userId = header('x-userid')?.trim();
  if (userId !== undefined && userId !== '') out.userId = userId;
  const max = header('x-max-sessions');
  if (max !== undefined && /^\s*\d+\s*$/.test(max)) out.maxSessions = Number(max);
  const unique = header('x-unique')?.trim().toLowerCase();
  if (unique === 'true' || unique === '1' || unique === 'yes') out.unique = true;
  return out;
}

/**
 * The verdict an allow or deny answer describes: its status (kept on the
 * session: the admin API shows why it was allowed or denied), and in its
 * headers X-AuthDuration / Cache-Control (TTL), X-Session-Name, X-UserId,
 * X-Max-Sessions, X-Unique on an allow; X-Location (redirect) on a deny.
 */
export function verdictFromAnswer(allow: boolean, reason: string, answer: Pick<MiddlewareAnswer, 'status' | 'header'>): BackendVerdict {
  const { status, header } = answer;
  const ttlMs = parseMiddlewareTtlMs(header('x-authduration'), header('cache-control'));
  if (allow) {
    const sessionName = header('x-session-name');
    return { allow, reason, status, ...(ttlMs !== undefined && { ttlMs }), ...(sessionName !== undefined && sessionName !== '' && { sessionName }), ...parseUserFields(header) };
  }
  const location = header('x-location');
  return { allow, reason, status, ...(ttlMs !== undefined && { ttlMs }), ...(location !== undefined && location !== '' && { location }) };
}

/**
 * Portal scripts (Stalker, Smarty, IPTVportal) answer 200 or 4xx; anything
 * else (a redirect to a login page, a 204 from a proxy) is no answer at all.
 */
export function expect200Or4xx(status: number, who: string): void {
  if (status !== 200 && status < 400) throw new EdgeError('EDGE_ERR_BACKEND_INVALID', `${who} answered ${status}: expected 200 or 4xx`);
}
