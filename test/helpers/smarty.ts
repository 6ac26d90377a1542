// A fake Microimpulse Smarty token service (PROTOCOLS §3), as a handler for the generic test
// middleware: `startTestMiddleware({ behavior: smarty.handler })`. It keeps a token table
// (token → content, IP, expiry) and answers GET /tvmiddleware/api/streamservice/token/check/
// with `{"error":0|1|2|3}`. Smarty documents no status codes, so the status of an invalid
// token's answer is a parameter: 200 (JSON decides) or a 4xx (status decides). The generic
// middleware's other behaviours (5xx, hang, close, garbage, bigBody) stay available through
// queueBehavior.
import type { MiddlewareBehavior, MiddlewareHandler } from './middleware.js';

export const SMARTY_PATH = '/tvmiddleware/api/streamservice/token/check/';

export interface SmartyToken {
  /** Content id the token was issued for (checked against `name`). */
  readonly content: string;
  /** Address the token was issued to (checked against `ip` when ipCheck is on and the entry has one). */
  readonly ip?: string;
  readonly expiresAt: number;
}

export interface SmartyServiceOptions {
  /** Status of the answer for an invalid token (default 200). */
  invalidStatus?: number;
  /** The service's "check IP" setting (default true). */
  ipCheck?: boolean;
  /** Token lifetime (default 60 s). */
  ttlMs?: number;
  /** Clock for expiry (default Date.now). */
  now?: () => number;
}

export interface SmartyService {
  readonly tokens: Map<string, SmartyToken>;
  /** Adds `token` (decoded form, as Smarty stores it) to the table; returns it. */
  issue(token: string, entry: { content: string; ip?: string; ttlMs?: number }): string;
  setInvalidStatus(status: number): void;
  readonly handler: MiddlewareHandler;
}

const JSON_TYPE = { 'content-type': 'application/json' };

export function createSmartyService(opts: SmartyServiceOptions = {}): SmartyService {
  const now = opts.now ?? Date.now;
  const ipCheck = opts.ipCheck ?? true;
  let invalidStatus = opts.invalidStatus ?? 200;
  const tokens = new Map<string, SmartyToken>();

  function errorFor(params: URLSearchParams): number {
    const token = params.get('token');
    const entry = token === null ? undefined : tokens.get(token);
    if (entry === undefined || now() >= entry.expiresAt) return 1;
    const name = params.get('name');
    if (name !== null && name !== entry.content) return 2;
    const ip = params.get('ip');
    if (ipCheck && ip !== null && entry.ip !== undefined && ip !== entry.ip) return 3;
    return 0;
  }

  const handler: MiddlewareHandler = (rec): MiddlewareBehavior => {
    if (rec.method !== 'GET' || rec.path !== SMARTY_PATH) return { kind: 'deny', status: 404, body: 'not found' };
    const error = errorFor(new URLSearchParams(rec.rawQuery));
    const body = JSON.stringify({ error });
    // The generic middleware's 'deny' writes any status: 200 with an error body included.
    return { kind: 'deny', status: error === 0 ? 200 : invalidStatus, headers: JSON_TYPE, body };
  };

  return {
    tokens,
    issue(token, entry) {
      tokens.set(token, { content: entry.content, ...(entry.ip !== undefined && { ip: entry.ip }), expiresAt: now() + (entry.ttlMs ?? opts.ttlMs ?? 60_000) });
      return token;
    },
    setInvalidStatus(status) {
      invalidStatus = status;
    },
    handler,
  };
}
