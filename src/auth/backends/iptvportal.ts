/**
 * IPTVportal "arescrypt" (PROTOCOLS §4): `GET <address>/auth/arescrypt/?<the
 * client's original query>`. The token is encrypted by the portal and opaque
 * to us, so the query goes through byte for byte. `200` grants (inferred from
 * the Flussonic-compatible use), 4xx denies, 5xx and transport failures are
 * "unavailable" (thrown by the client).
 */
import type { AuthBackend, AuthRequest, BackendVerdict } from '../types.js';
import { appendQuery, joinPath, MiddlewareClient, type MiddlewareClientOptions } from './client.js';
import { expect200Or4xx, verdictFromHeaders } from './response.js';

/** The check endpoint, relative to the configured address (`https://go.iptvportal.cloud`). */
export const IPTVPORTAL_CHECK_PATH = 'auth/arescrypt/';

/**
 * How long a grant holds when the portal sends no TTL header. ARESSTREAM keys
 * rotate hourly and a token stays valid about 3 × the key period (≈ 3 h,
 * PROTOCOLS §4), so re-checking after one hour re-validates the session while
 * its token is still good, and a revoked viewer is cut within the hour.
 */
export const IPTVPORTAL_DEFAULT_TTL_MS = 3_600_000;

export class IptvportalBackend implements AuthBackend {
  readonly name: string;
  private readonly client: MiddlewareClient;
  private readonly checkPath: string;

  constructor(options: MiddlewareClientOptions & { name?: string }) {
    this.name = options.name ?? 'iptvportal';
    this.client = new MiddlewareClient(options);
    this.checkPath = joinPath(this.client.basePath, IPTVPORTAL_CHECK_PATH);
  }

  async check(request: AuthRequest, signal: AbortSignal): Promise<BackendVerdict> {
    const answer = await this.client.get(appendQuery(this.checkPath, request.query), ['user-agent', 'astra-auth-edge'], signal);
    const { status } = answer;
    expect200Or4xx(status, 'portal');
    const verdict = verdictFromHeaders(status === 200, `backend_${status}`, answer.header);
    return verdict.allow && verdict.ttlMs === undefined ? { ...verdict, ttlMs: IPTVPORTAL_DEFAULT_TTL_MS } : verdict;
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
