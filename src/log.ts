/**
 * Logging: pino JSON lines on stdout. Callers never put tokens, session IDs
 * or admin keys in a log object, and pass every query, URL or error text that
 * may quote one through redact.ts; the `redact` paths here are a second line
 * of defence for headers and fields named after secrets.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from './config/schema.js';

export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'astra-auth-edge' },
      redact: {
        paths: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'token', '*.token', 'sessionId', '*.sessionId'],
        censor: '<redacted>',
      },
    },
    destination,
  );
}

/** Lets one line through per interval and counts what it held back. */
export class RateLimitedLog {
  private last = -Infinity;
  private suppressed = 0;

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number,
  ) {}

  maybe(emit: (suppressed: number) => void): void {
    const t = this.now();
    if (t - this.last < this.intervalMs) {
      this.suppressed++;
      return;
    }
    this.last = t;
    const held = this.suppressed;
    this.suppressed = 0;
    emit(held);
  }
}
