/**
 * What a response served by the edge (forwarded, from the cache, or from a
 * shared MPEG-TS channel) reports back to the request handler: the session's
 * byte count and the request metrics live there, not in each serving path.
 */
export interface ResponseObserver {
  /** Response headers are out (time to first byte). */
  started(status: number): void;
  /** Body bytes handed to the client socket. */
  sent(n: number): void;
  /** The response is over: complete (true) or cut (false). */
  finished(status: number, complete: boolean): void;
  /** Nothing was written and the serving path cannot answer: the caller does (an error, or its own upstream request). */
  failedBeforeHead(error: Error): void;
}
