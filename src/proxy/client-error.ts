/**
 * What the public listener answers when Node's HTTP parser gives up on a
 * request (`clientError`: oversized head, control bytes, CL+TE, two
 * Content-Lengths, a broken chunked body, a head that never finishes) and to
 * a `CONNECT` (Node hands it to a 'connect' listener, or silently drops the
 * connection when there is none). Neither has a request/response object: the
 * answer is written to the socket as raw bytes, and the connection is closed
 * after it, since the parser can no longer tell where the next request starts.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { errorBody, ERROR_CODES, type ErrorCode } from '../errors.js';

/** Parser failure → our code; anything else is a plain malformed request. */
const PARSER_ERRORS: Readonly<Record<string, ErrorCode>> = {
  HPE_HEADER_OVERFLOW: 'EDGE_ERR_HEADERS_TOO_LARGE',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 'EDGE_ERR_HEADERS_TOO_LARGE',
  ERR_HTTP_REQUEST_TIMEOUT: 'EDGE_ERR_REQUEST_TIMEOUT',
};

const REASON_PHRASES: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
};

/** A whole HTTP/1.1 response that closes the connection. */
function rawResponse(code: ErrorCode, reason: string | undefined, extraHeaders = ''): string {
  const status = ERROR_CODES[code].status;
  const body = errorBody(code, reason);
  return (
    `HTTP/1.1 ${status} ${REASON_PHRASES[status] ?? 'Error'}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\n${extraHeaders}Connection: close\r\n\r\n${body}`
  );
}

/** The response Node attached to the socket for the request being answered, if any (the same check Node's own default clientError handler makes). */
function responseInFlight(socket: Duplex): { headersSent: boolean; writableEnded: boolean } | undefined {
  return (socket as { _httpMessage?: { headersSent: boolean; writableEnded: boolean } | null })._httpMessage ?? undefined;
}

/** 'clientError' of the public listener: a 4xx with a stable code when nothing else was said on the socket yet. */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const inFlight = responseInFlight(socket);
  if (inFlight?.headersSent === true) {
    // The request was answered before the parser failed on what followed its head (a body it
    // could not frame): a second response would corrupt the stream. A complete answer is let
    // out (end() flushes it), a partial one is cut.
    if (inFlight.writableEnded) socket.end();
    else socket.destroy();
    return;
  }
  socket.end(rawResponse(PARSER_ERRORS[err.code ?? ''] ?? 'EDGE_ERR_BAD_REQUEST', err.code ?? 'bad_request'));
}

/** 'connect' of the public listener: the edge is no tunnel. */
export function refuseConnect(_req: IncomingMessage, socket: Duplex): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(rawResponse('EDGE_ERR_METHOD_NOT_ALLOWED', 'CONNECT is not served: the edge is no proxy', 'Allow: GET, HEAD\r\n'));
}
