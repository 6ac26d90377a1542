/**
 * The "HTTP Request" backend, exactly as Cesbo Astra calls it (PROTOCOLS §1):
 * `GET <backend URL>` + the client's whole query string byte for byte, with
 * X-Session-ID, X-Channel-ID, X-Real-IP, X-Real-Path, X-Real-UA, X-Real-Host.
 * 2xx allows, 4xx denies (X-Location turns the deny into a redirect), 5xx and
 * transport failures mean "unavailable" and are thrown.
 */
import { EdgeError } from '../../errors.js';
import type { AuthBackend, AuthRequest, BackendVerdict } from '../types.js';
import { appendQuery, MiddlewareClient, type MiddlewareClientOptions } from './client.js';
import { verdictFromHeaders } from './response.js';

export class HttpBackend implements AuthBackend {
  readonly name: string;
  private readonly client: MiddlewareClient;

  constructor(options: MiddlewareClientOptions & { name?: string }) {
    this.name = options.name ?? 'http';
    this.client = new MiddlewareClient(options);
  }

  async check(request: AuthRequest, signal: AbortSignal): Promise<BackendVerdict> {
    const answer = await this.client.get(
      appendQuery(this.client.basePath, request.query),
      [
        'x-session-id', request.sessionId,
        'x-channel-id', request.channel,
        'x-real-ip', request.clientIp,
        'x-real-path', request.path,
        'x-real-ua', request.userAgent,
        'x-real-host', request.host,
      ],
      signal,
    );
    const { status } = answer;
    if (status < 200 || (status >= 300 && status < 400)) {
      throw new EdgeError('EDGE_ERR_BACKEND_INVALID', `middleware answered ${status}: expected 2xx or 4xx`);
    }
    return verdictFromHeaders(status < 300, `backend_${status}`, answer.header);
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
