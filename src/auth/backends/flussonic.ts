/**
 * The Flussonic "authorization backend" dialect (PROTOCOLS §5), which many
 * middlewares speak: `GET <url>?name=&proto=&ip=&token=&request_type=&
 * request_number=&session_id=&stream_clients=&total_clients=&qs=&user_agent=&
 * referer=&host=`, after any query the configured URL has of its own.
 *
 * Every value is percent-encoded once: `token` is the decoded value (what the
 * edge's rules saw), and `qs`, the client's raw query, is encoded once so it
 * survives as one value. `200` and `302` allow (the
 * redirect is not followed, as Flussonic does not), `403` and any other
 * status below 500 deny, 5xx and transport failures are "unavailable" (thrown
 * by the client). Answer headers: X-AuthDuration, X-UserId, X-Max-Sessions,
 * X-Unique, as from Ministra.
 */
import type { AuthRequest, BackendVerdict, CallAbort } from '../types.js';
import { MIDDLEWARE_USER_AGENT, runCheck, type MiddlewareBackend, type PlannedCheck } from './call.js';
import { appendQuery, MiddlewareClient, type MiddlewareAnswer, type MiddlewareClientOptions } from './client.js';
import { rejectServerError, verdictFromAnswer } from './response.js';

/** The query Flussonic sends, in its order; every value encoded here. */
export function flussonicQuery(request: AuthRequest): string {
  const e = encodeURIComponent;
  return [
    `name=${e(request.channel)}`,
    `proto=${e(request.kind)}`,
    `ip=${e(request.clientIp)}`,
    // No token: sent empty, so a backend that allows by IP or referer still gets its fixed parameter set.
    `token=${e(request.token ?? '')}`,
    `request_type=${request.requestType === 'new' ? 'new_session' : 'update_session'}`,
    `request_number=${request.requestNumber}`,
    `session_id=${e(request.sessionId)}`,
    `stream_clients=${request.streamClients}`,
    `total_clients=${request.totalClients}`,
    `qs=${e(request.query)}`,
    `user_agent=${e(request.userAgent)}`,
    `referer=${e(request.referer)}`,
    `host=${e(request.host)}`,
  ].join('&');
}

export class FlussonicBackend implements MiddlewareBackend {
  readonly type = 'flussonic';
  readonly name: string;
  private readonly client: MiddlewareClient;

  constructor(options: MiddlewareClientOptions & { name?: string }) {
    this.name = options.name ?? 'flussonic';
    this.client = new MiddlewareClient(options);
  }

  describeRequest(request: AuthRequest): PlannedCheck {
    return {
      call: { method: 'GET', origin: this.client.origin, path: appendQuery(this.client.basePath, flussonicQuery(request)), headers: ['user-agent', MIDDLEWARE_USER_AGENT], readBody: false },
    };
  }

  interpret(answer: MiddlewareAnswer): BackendVerdict {
    const { status } = answer;
    rejectServerError(status);
    // Flussonic grants on exactly 200 and 302 and denies on every other answer (auth_http_backend.erl).
    return verdictFromAnswer(status === 200 || status === 302, `backend_${status}`, answer);
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
