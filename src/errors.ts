/**
 * One error class and one table of stable codes (STYLE §3).
 *
 * Every error the edge reports to a client, an operator or a log carries a
 * code from {@link ERROR_CODES}. The README lists the same table; a unit test
 * keeps both in step. Transport errors from Node and undici are mapped to ours
 * in {@link classifyTransportError}, in one place, so "refused" always means
 * the same thing whether it came from the middleware or the upstream.
 */

export const ERROR_CODES = {
  EDGE_ERR_CONFIG: { status: 500, text: 'invalid configuration' },
  EDGE_ERR_NO_CHANNEL: { status: 404, text: 'path does not name a channel' },
  EDGE_ERR_METHOD_NOT_ALLOWED: { status: 405, text: 'only GET and HEAD are served' },
  EDGE_ERR_BAD_REQUEST: { status: 400, text: 'malformed request' },
  EDGE_ERR_HEADERS_TOO_LARGE: { status: 431, text: 'request line or headers exceed proxy.maxHeaderBytes' },
  EDGE_ERR_REQUEST_TIMEOUT: { status: 408, text: 'request head or body not received in time' },
  EDGE_ERR_AUTH_DENIED: { status: 403, text: 'access denied' },
  EDGE_ERR_AUTH_UNAVAILABLE: { status: 403, text: 'middleware unavailable and the default action refuses new sessions' },
  EDGE_ERR_SESSION_ENDED: { status: 403, text: 'session ended' },
  EDGE_ERR_SESSION_LIMIT: { status: 403, text: 'too many concurrent sessions for this user' },
  EDGE_ERR_NOT_FOUND: { status: 404, text: 'not found' },
  EDGE_ERR_SESSION_NOT_FOUND: { status: 404, text: 'no such session' },
  EDGE_ERR_BAD_SESSION_ID: { status: 400, text: 'malformed session ID' },
  EDGE_ERR_UNAUTHORIZED: { status: 401, text: 'missing or wrong admin token' },
  EDGE_ERR_HOST_NOT_ALLOWED: { status: 403, text: 'without an admin token the admin API answers only loopback Host names' },
  EDGE_ERR_UPSTREAM_REFUSED: { status: 502, text: 'upstream refused the connection' },
  EDGE_ERR_UPSTREAM_RESET: { status: 502, text: 'upstream closed the connection before answering' },
  EDGE_ERR_UPSTREAM_INVALID: { status: 502, text: 'upstream sent an invalid response' },
  EDGE_ERR_UPSTREAM_TIMEOUT: { status: 504, text: 'upstream did not answer in time' },
  EDGE_ERR_STREAM_CAPACITY: { status: 503, text: 'upstream.streamConnections MPEG-TS streams are open; retry later' },
  EDGE_ERR_PLAYLIST_TOO_LARGE: { status: 502, text: 'upstream playlist exceeds hls.maxPlaylistBytes' },
  EDGE_ERR_CACHE_OBJECT_TOO_LARGE: { status: 502, text: 'upstream body exceeds cache.maxObjectSize' },
  EDGE_ERR_BACKEND_TIMEOUT: { status: 503, text: 'middleware did not answer in time' },
  EDGE_ERR_BACKEND_REFUSED: { status: 503, text: 'middleware refused the connection' },
  EDGE_ERR_BACKEND_RESET: { status: 503, text: 'middleware closed the connection' },
  EDGE_ERR_BACKEND_HTTP_5XX: { status: 503, text: 'middleware answered with a server error' },
  EDGE_ERR_BACKEND_INVALID: { status: 503, text: 'middleware sent a malformed response' },
  EDGE_ERR_OVERLOADED: { status: 503, text: 'too many new sessions waiting for the middleware: retry after Retry-After seconds' },
  EDGE_ERR_WORKERS_UNAVAILABLE: { status: 503, text: 'no worker answered in time' },
  EDGE_ERR_INTERNAL: { status: 500, text: 'internal error' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class EdgeError extends Error {
  readonly code: ErrorCode;
  readonly status: number;

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? ERROR_CODES[code].text, options);
    this.name = 'EdgeError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
  }
}

/** What went wrong on a connection, independent of which peer it was. */
export type TransportFailure = 'timeout' | 'refused' | 'reset' | 'invalid';

/**
 * Node (`ECONN*`) and undici (`UND_ERR_*`) codes → our failure kinds.
 * Anything unknown counts as `reset`: we could not get an answer, and the
 * caller treats it as unavailable, never as a decision.
 */
const TRANSPORT_TABLE: Readonly<Record<string, TransportFailure>> = {
  ECONNREFUSED: 'refused',
  EHOSTUNREACH: 'refused',
  ENETUNREACH: 'refused',
  ENOTFOUND: 'refused',
  EAI_AGAIN: 'refused',
  EADDRNOTAVAIL: 'refused',
  ECONNRESET: 'reset',
  EPIPE: 'reset',
  ECONNABORTED: 'reset',
  UND_ERR_SOCKET: 'reset',
  UND_ERR_CLOSED: 'reset',
  UND_ERR_DESTROYED: 'reset',
  UND_ERR_ABORTED: 'reset',
  ETIMEDOUT: 'timeout',
  UND_ERR_CONNECT_TIMEOUT: 'timeout',
  UND_ERR_HEADERS_TIMEOUT: 'timeout',
  UND_ERR_BODY_TIMEOUT: 'timeout',
  TimeoutError: 'timeout',
  UND_ERR_INVALID_ARG: 'invalid',
  HTTPParserError: 'invalid',
  // TLS: the middleware's certificate is not one we can trust (see backend.ca).
  DEPTH_ZERO_SELF_SIGNED_CERT: 'invalid',
  SELF_SIGNED_CERT_IN_CHAIN: 'invalid',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'invalid',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'invalid',
  CERT_HAS_EXPIRED: 'invalid',
  ERR_TLS_CERT_ALTNAME_INVALID: 'invalid',
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: 'invalid',
  UND_ERR_RES_EXCEEDED_MAX_SIZE: 'invalid',
  HPE_INVALID_CONSTANT: 'invalid',
  HPE_INVALID_STATUS: 'invalid',
  HPE_INVALID_HEADER_TOKEN: 'invalid',
  HPE_INVALID_VERSION: 'invalid',
  HPE_UNEXPECTED_CONTENT_LENGTH: 'invalid',
  HPE_INVALID_CHUNK_SIZE: 'invalid',
  HPE_CR_EXPECTED: 'invalid',
  HPE_LF_EXPECTED: 'invalid',
};

/** Walks `err`, its `code`, `name` and `cause` chain to find a known transport failure. */
export function classifyTransportError(err: unknown): TransportFailure {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current !== null && typeof current === 'object'; depth++) {
    const e = current as { code?: unknown; name?: unknown; cause?: unknown };
    if (typeof e.code === 'string' && TRANSPORT_TABLE[e.code] !== undefined) return TRANSPORT_TABLE[e.code]!;
    if (typeof e.name === 'string' && TRANSPORT_TABLE[e.name] !== undefined) return TRANSPORT_TABLE[e.name]!;
    current = e.cause;
  }
  return 'reset';
}

/** The JSON body sent to clients for an error: small, stable, no internals. */
export function errorBody(code: ErrorCode, reason?: string): string {
  return reason === undefined ? `{"error":"${code}"}\n` : `{"error":"${code}","reason":${JSON.stringify(reason)}}\n`;
}
