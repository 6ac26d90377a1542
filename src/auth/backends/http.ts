/**
 * The "HTTP Request" backend, exactly as Cesbo Astra calls it (PROTOCOLS §1):
 * `GET <backend URL>` + the client's whole query string byte for byte, with
 * X-Session-ID, X-Channel-ID, X-Real-IP, X-Real-Path, X-Real-UA, X-Real-Host.
 * 2xx allows, 4xx denies (X-Location turns the deny into a redirect), 5xx and
 * transport failures mean "unavailable" and are thrown.
 */
import { Pool } from 'undici';
import { EdgeError, classifyTransportError, type ErrorCode } from '../../errors.js';
import type { AuthBackend, AuthRequest, BackendVerdict } from '../types.js';
import { parseMiddlewareTtlMs, parseUserFields } from './response.js';

export interface HttpBackendOptions {
  readonly url: string;
  readonly timeoutMs: number;
  readonly maxBodyBytes: number;
  readonly connections: number;
}

const FAILURE_CODE: Readonly<Record<string, ErrorCode>> = {
  timeout: 'EDGE_ERR_BACKEND_TIMEOUT',
  refused: 'EDGE_ERR_BACKEND_REFUSED',
  reset: 'EDGE_ERR_BACKEND_RESET',
  invalid: 'EDGE_ERR_BACKEND_INVALID',
};

/** Base path + the client's raw query; merged with `&` when the base has a query of its own. */
export function middlewarePath(basePathAndQuery: string, clientQuery: string): string {
  if (clientQuery === '') return basePathAndQuery;
  const q = basePathAndQuery.indexOf('?');
  if (q === -1) return `${basePathAndQuery}?${clientQuery}`;
  if (q === basePathAndQuery.length - 1 || basePathAndQuery.endsWith('&')) return basePathAndQuery + clientQuery;
  return `${basePathAndQuery}&${clientQuery}`;
}

export class HttpBackend implements AuthBackend {
  readonly name = 'http';
  private readonly pool: Pool;
  /** Path and query of the configured URL, kept as written. */
  private readonly basePath: string;
  private readonly options: HttpBackendOptions;

  constructor(options: HttpBackendOptions) {
    this.options = options;
    const url = new URL(options.url);
    // Keep the operator's own path and query bytes: URL.pathname/search would re-encode them.
    const slash = options.url.indexOf('/', options.url.indexOf('//') + 2);
    const pathAndQuery = slash === -1 ? '/' : options.url.slice(slash).split('#')[0]!;
    this.basePath = pathAndQuery === '' ? '/' : pathAndQuery;
    this.pool = new Pool(url.origin, {
      connections: options.connections,
      connectTimeout: options.timeoutMs,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      keepAliveTimeout: 30_000,
    });
  }

  async check(request: AuthRequest, signal: AbortSignal): Promise<BackendVerdict> {
    let response;
    try {
      response = await this.pool.request({
        method: 'GET',
        path: middlewarePath(this.basePath, request.query),
        headers: [
          'x-session-id', request.sessionId,
          'x-channel-id', request.channel,
          'x-real-ip', request.clientIp,
          'x-real-path', request.path,
          'x-real-ua', request.userAgent,
          'x-real-host', request.host,
        ],
        signal,
      });
    } catch (err) {
      if (signal.aborted) throw new EdgeError('EDGE_ERR_BACKEND_TIMEOUT', `middleware did not answer within ${this.options.timeoutMs} ms`, { cause: err });
      const kind = classifyTransportError(err);
      throw new EdgeError(FAILURE_CODE[kind]!, `middleware ${kind}: ${(err as Error).message}`, { cause: err });
    }
    const { statusCode, headers, body } = response;
    // Read and discard the body, at most maxBodyBytes: keeps the connection reusable without trusting its size.
    try {
      await body.dump({ limit: this.options.maxBodyBytes, signal });
    } catch {
      // A body cut short does not change the status we already have.
    }
    if (statusCode >= 500) throw new EdgeError('EDGE_ERR_BACKEND_HTTP_5XX', `middleware answered ${statusCode}`);
    if (statusCode < 200 || (statusCode >= 300 && statusCode < 400)) {
      throw new EdgeError('EDGE_ERR_BACKEND_INVALID', `middleware answered ${statusCode}: expected 2xx or 4xx`);
    }
    const header = (name: string): string | undefined => {
      const v = headers[name];
      return Array.isArray(v) ? v[0] : v;
    };
    const ttlMs = parseMiddlewareTtlMs(header('x-authduration'), header('cache-control'));
    const sessionName = header('x-session-name');
    if (statusCode < 300) {
      return {
        allow: true,
        reason: `backend_${statusCode}`,
        ...(ttlMs !== undefined && { ttlMs }),
        ...(sessionName !== undefined && { sessionName }),
        ...parseUserFields(header),
      };
    }
    const location = header('x-location');
    return { allow: false, reason: `backend_${statusCode}`, ...(ttlMs !== undefined && { ttlMs }), ...(location !== undefined && location !== '' && { location }) };
  }

  async close(): Promise<void> {
    await this.pool.close().catch(() => undefined);
  }
}
