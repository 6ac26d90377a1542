/**
 * IPTVportal "arescrypt" (PROTOCOLS §4): `GET <address>/auth/arescrypt/?<the
 * client's original query>`. The token is encrypted by the portal and opaque
 * to us, so the query goes through byte for byte. `200` grants (inferred from
 * the Flussonic-compatible use), 4xx denies, 5xx and transport failures are
 * "unavailable" (thrown by the client).
 */
import type { AuthRequest, BackendVerdict, CallAbort } from '../types.js';
import { MIDDLEWARE_USER_AGENT, runCheck, type MiddlewareBackend, type PlannedCheck } from './call.js';
import { appendQuery, joinPath, MiddlewareClient, type MiddlewareAnswer, type MiddlewareClientOptions } from './client.js';
import { expect200Or4xx, rejectServerError, verdictFromAnswer } from './response.js';

/** The check endpoint, relative to the configured address (`https://go.iptvportal.cloud`). */
export const IPTVPORTAL_CHECK_PATH = 'auth/arescrypt/';

/**
 * How long a grant holds when the portal sends no TTL header. ARESSTREAM keys
 * rotate hourly and a token stays valid about 3 × the key period (≈ 3 h,
 * PROTOCOLS §4), so re-checking after one hour re-validates the session while
 * its token is still good, and a revoked viewer is cut within the hour.
 */
export const IPTVPORTAL_DEFAULT_TTL_MS = 3_600_000;

export class IptvportalBackend implements MiddlewareBackend {
  readonly type = 'iptvportal';
  readonly name: string;
  private readonly client: MiddlewareClient;
  private readonly checkPath: string;

  constructor(options: MiddlewareClientOptions & { name?: string }) {
    this.name = options.name ?? 'iptvportal';
    this.client = new MiddlewareClient(options);
    this.checkPath = joinPath(this.client.basePath, IPTVPORTAL_CHECK_PATH);
  }

  describeRequest(request: AuthRequest): PlannedCheck {
    return { call: { method: 'GET', origin: this.client.origin, path: appendQuery(this.checkPath, request.query), headers: ['user-agent', MIDDLEWARE_USER_AGENT], readBody: false } };
  }

  interpret(answer: MiddlewareAnswer): BackendVerdict {
    const { status } = answer;
    rejectServerError(status);
    expect200Or4xx(status, 'portal');
    const verdict = verdictFromAnswer(status === 200, `backend_${status}`, answer);
    return verdict.allow && verdict.ttlMs === undefined ? { ...verdict, ttlMs: IPTVPORTAL_DEFAULT_TTL_MS } : verdict;
  }

  check(request: AuthRequest, signal: AbortSignal): Promise<BackendVerdict> {
    return runCheck(this, this.client, request, signal);
  }

  checkAbortable(request: AuthRequest, abort: CallAbort): Promise<BackendVerdict> {
    return runCheck(this, this.client, request, abort);
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
