/**
 * The "HTTP Request" backend, exactly as Cesbo Astra calls it (PROTOCOLS §1):
 * `GET <backend URL>` + the client's whole query string byte for byte, with
 * X-Session-ID, X-Channel-ID, X-Real-IP, X-Real-Path, X-Real-UA, X-Real-Host.
 * 2xx allows, 4xx denies (X-Location turns the deny into a redirect), 5xx and
 * transport failures mean "unavailable" and are thrown.
 */
import { EdgeError } from '../../errors.js';
import type { AuthRequest, BackendVerdict, CallAbort } from '../types.js';
import { runCheck, type MiddlewareBackend, type PlannedCheck } from './call.js';
import { appendQuery, MiddlewareClient, type MiddlewareAnswer, type MiddlewareClientOptions } from './client.js';
import { rejectServerError, verdictFromAnswer } from './response.js';

export class HttpBackend implements MiddlewareBackend {
  readonly type = 'http';
  readonly name: string;
  private readonly client: MiddlewareClient;

  constructor(options: MiddlewareClientOptions & { name?: string }) {
    this.name = options.name ?? 'http';
    this.client = new MiddlewareClient(options);
  }

  describeRequest(request: AuthRequest): PlannedCheck {
    return {
      call: {
        method: 'GET',
        origin: this.client.origin,
        path: appendQuery(this.client.basePath, request.query),
        headers: [
          'x-session-id', request.sessionId,
          'x-channel-id', request.channel,
          'x-real-ip', request.clientIp,
          'x-real-path', request.path,
          'x-real-ua', request.userAgent,
          'x-real-host', request.host,
        ],
        readBody: false,
      },
    };
  }

  interpret(answer: MiddlewareAnswer): BackendVerdict {
    const { status } = answer;
    rejectServerError(status);
    if (status < 200 || (status >= 300 && status < 400)) {
      throw new EdgeError('EDGE_ERR_BACKEND_INVALID', `middleware answered ${status}: expected 2xx or 4xx`);
    }
    return verdictFromAnswer(status < 300, `backend_${status}`, answer);
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
