/**
 * Ministra / Stalker portal, "Temporary URL → Flussonic support" (PROTOCOLS §2):
 * `GET <address>/server/api/chk_flussonic_tmp_link.php?token=<token>`, the
 * token as PHP will read it (the decoded value, percent-encoded again here,
 * so nothing in it can add or cut a parameter). The portal reads nothing else, so no
 * X-Real-* headers. `200` allows with X-AuthDuration (36000 s), X-UserId,
 * X-Max-Sessions and X-Unique; a missing or unknown token gets `403`.
 *
 * The portal forgets a token 5 s after issuing it (`tv_tmp_link_ttl`) and a
 * re-check then gets `403`: the grant must be kept from our own cache for
 * X-AuthDuration, which the authorizer does with the verdict's ttlMs.
 */
import type { AuthRequest, BackendVerdict, CallAbort } from '../types.js';
import { MIDDLEWARE_USER_AGENT, runCheck, type MiddlewareBackend, type PlannedCheck } from './call.js';
import { joinPath, MiddlewareClient, type MiddlewareAnswer, type MiddlewareClientOptions } from './client.js';
import { expect200Or4xx, rejectServerError, verdictFromAnswer } from './response.js';

/** The portal answers 403 to a missing token: the edge saves the round trip. */
const NO_TOKEN: PlannedCheck = Object.freeze({ verdict: Object.freeze({ allow: false, reason: 'no_token' }) });

/** The portal script, relative to the configured address (`http://host/stalker_portal`). */
export const STALKER_CHECK_PATH = 'server/api/chk_flussonic_tmp_link.php';

export class StalkerBackend implements MiddlewareBackend {
  readonly type = 'stalker';
  readonly name: string;
  private readonly client: MiddlewareClient;
  private readonly checkPath: string;

  constructor(options: MiddlewareClientOptions & { name?: string }) {
    this.name = options.name ?? 'stalker';
    this.client = new MiddlewareClient(options);
    this.checkPath = joinPath(this.client.basePath, STALKER_CHECK_PATH);
  }

  describeRequest(request: AuthRequest): PlannedCheck {
    if (request.token === undefined || request.token === '') return NO_TOKEN;
    // request.token is decoded: encoded once here, $_GET['token'] is exactly it.
    return { call: { method: 'GET', origin: this.client.origin, path: `${this.checkPath}?token=${encodeURIComponent(request.token)}`, headers: ['user-agent', MIDDLEWARE_USER_AGENT], readBody: false } };
  }

  interpret(answer: MiddlewareAnswer): BackendVerdict {
    const { status } = answer;
    rejectServerError(status);
    // The script only ever says 200 or 403.
    expect200Or4xx(status, 'portal');
    return verdictFromAnswer(status === 200, `backend_${status}`, answer);
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
