/**
 * Microimpulse Smarty, `StreamServiceTokenCheck` (PROTOCOLS §3):
 * `GET <address>/tvmiddleware/api/streamservice/token/check/?token=<t>&name=<channel>&ip=<client ip>`.
 * Every value is percent-encoded here: the token (decoded from the client's
 * query, so Smarty reads the same token the edge's rules saw), `name`
 * (checked against the token's content) and `ip` (checked when the service
 * has IP checking on), both optional. Nothing a client sends can add, change
 * or cut off a parameter (a raw `#` used to drop `name` and `ip`).
 *
 * The answer is JSON with `error`: 0 valid, 1 expired, 2 other content,
 * 3 other IP. Smarty documents no status codes, so (inference, PROTOCOLS §3)
 * we allow only on `200` and, when the body is JSON, `error === 0`; whatever
 * the status, a non-zero `error` is the deny reason. A `200` whose body is not
 * JSON, or is JSON without `error`, is allowed: the status decides, as it does
 * for Flussonic and Astra, which read nothing but the status from this same
 * endpoint.
 */
import { EdgeError } from '../../errors.js';
import type { AuthRequest, BackendVerdict, CallAbort } from '../types.js';
import { MIDDLEWARE_USER_AGENT, runCheck, type MiddlewareBackend, type PlannedCheck } from './call.js';
import { joinPath, MiddlewareClient, type MiddlewareAnswer, type MiddlewareClientOptions } from './client.js';
import { expect200Or4xx, rejectServerError, verdictFromAnswer } from './response.js';

/** Smarty's tokens are one-time tokens in the stream URL: without one there is nothing to check. */
const NO_TOKEN: PlannedCheck = Object.freeze({ verdict: Object.freeze({ allow: false, reason: 'no_token' }) });

/** The check endpoint, relative to the configured address (`http://host`). Its trailing slash is Smarty's (Django) URL. */
export const SMARTY_CHECK_PATH = 'tvmiddleware/api/streamservice/token/check/';

export interface SmartyOptions {
  /** Send `name=<channel>` so Smarty checks the token's content (default true). Smarty's content ids must then equal the edge's channel ids. */
  readonly sendName?: boolean;
  /** Send `ip=<client ip>` so Smarty checks the viewer's address, if the service has IP checking on (default true). */
  readonly sendIp?: boolean;
}

/** Smarty's documented `error` codes → deny reasons; other codes become `error_<n>`. */
const ERROR_REASONS: Readonly<Record<number, string>> = { 1: 'expired', 2: 'other_content', 3: 'other_ip' };

/**
 * The `error` field of a Smarty body: `undefined` when the body is not JSON,
 * not an object, or has no `error` (or `error: null`); the integer when it is
 * one (a numeric string counts); `NaN` when `error` is something else.
 */
export function smartyErrorCode(body: string): number | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
  const error = (parsed as { error?: unknown }).error;
  if (error === undefined || error === null) return undefined;
  if (typeof error === 'number' && Number.isInteger(error)) return error;
  if (typeof error === 'string' && /^\s*-?\d+\s*$/.test(error)) return Number(error);
  return Number.NaN;
}

function errorReason(code: number): string {
  if (Number.isNaN(code)) return 'error_malformed';
  return ERROR_REASONS[code] ?? `error_${code}`;
}

export class SmartyBackend implements MiddlewareBackend {
  readonly type = 'smarty';
  readonly name: string;
  private readonly client: MiddlewareClient;
  private readonly checkPath: string;
  private readonly sendName: boolean;
  private readonly sendIp: boolean;

  constructor(options: MiddlewareClientOptions & { name?: string }, smarty: SmartyOptions = {}) {
    this.name = options.name ?? 'smarty';
    this.client = new MiddlewareClient(options);
    this.checkPath = joinPath(this.client.basePath, SMARTY_CHECK_PATH);
    this.sendName = smarty.sendName ?? true;
    this.sendIp = smarty.sendIp ?? true;
  }

  describeRequest(request: AuthRequest): PlannedCheck {
    if (request.token === undefined || request.token === '') return NO_TOKEN;
    let query = `token=${encodeURIComponent(request.token)}`;
    if (this.sendName) query += `&name=${encodeURIComponent(request.channel)}`;
    if (this.sendIp) query += `&ip=${encodeURIComponent(request.clientIp)}`;
    return { call: { method: 'GET', origin: this.client.origin, path: `${this.checkPath}?${query}`, headers: ['user-agent', MIDDLEWARE_USER_AGENT], readBody: true } };
  }

  check(request: AuthRequest, signal: AbortSignal): Promise<BackendVerdict> {
    return runCheck(this, this.client, request, signal);
  }

  checkAbortable(request: AuthRequest, abort: CallAbort): Promise<BackendVerdict> {
    return runCheck(this, this.client, request, abort);
  }

  interpret(answer: MiddlewareAnswer): BackendVerdict {
    const { status, body } = answer;
    rejectServerError(status);
    expect200Or4xx(status, 'Smarty');
    if (body === undefined && status === 200) {
      // Over maxBodyBytes or cut short: it may have been `{"error":1}`, so this is no grant.
      throw new EdgeError('EDGE_ERR_BACKEND_INVALID', 'Smarty answered 200 with a body that could not be read');
    }
    const code = body === undefined ? undefined : smartyErrorCode(body);
    if (status === 200 && (code === undefined || code === 0)) return verdictFromAnswer(true, 'backend_200', answer);
    // A 4xx saying `error: 0` is still a deny: the status is what Flussonic and Astra would go by.
    const reason = code === undefined || code === 0 ? `backend_${status}` : errorReason(code);
    return verdictFromAnswer(false, reason, answer);
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
