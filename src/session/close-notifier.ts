/**
 * Astra's "Sessions Backend": a URL told about every session that closes.
 * Fire-and-forget: the stream never waits for it; each notification has a
 * timeout, and at most MAX_IN_FLIGHT are pending (more are dropped and
 * logged, rate-limited) so a dead webhook cannot pile up memory.
 */
import { Pool } from 'undici';
import type { Logger } from 'pino';
import type { WebhookMethod } from '../config/schema.js';
import { RateLimitedLog } from '../log.js';
import { redactText } from '../redact.js';
import type { SessionView } from './table.js';

const MAX_IN_FLIGHT = 1000;
const FAILURE_LOG_INTERVAL_MS = 10_000;

export interface CloseNotification extends SessionView {
  readonly event: 'close';
  readonly reason: string;
  readonly closedAt: string;
  /** This open period (since the session was opened or last resumed: one MPEG-TS connection). */
  readonly durationMs: number;
  readonly bytes: number;
  /** The whole session, every open period. */
  readonly sessionDurationMs: number;
  readonly sessionBytes: number;
  /** How many times the session was resumed (an MPEG-TS reconnect, an HLS player back from idling). */
  readonly resumes: number;
}

export class CloseNotifier {
  private readonly pool: Pool;
  private readonly path: string;
  private inFlight = 0;
  private readonly failures: RateLimitedLog;

  constructor(
    private readonly options: { url: string; method: WebhookMethod; timeoutMs: number },
    private readonly log: Logger,
  ) {
    const url = new URL(options.url);
    this.path = `${url.pathname}${url.search}`;
    this.pool = new Pool(url.origin, { connections: 16, headersTimeout: options.timeoutMs, bodyTimeout: options.timeoutMs, connectTimeout: options.timeoutMs });
    this.failures = new RateLimitedLog(FAILURE_LOG_INTERVAL_MS, Date.now);
  }

  notify(n: CloseNotification): void {
    if (this.inFlight >= MAX_IN_FLIGHT) {
      this.failures.maybe((suppressed) => this.log.warn({ suppressed, inFlight: this.inFlight }, 'sessions backend: too many pending notifications, dropping'));
      return;
    }
    this.inFlight++;
    void this.send(n).finally(() => this.inFlight--);
  }

  private async send(n: CloseNotification): Promise<void> {
    const signal = AbortSignal.timeout(this.options.timeoutMs);
    try {
      const res =
        this.options.method === 'POST'
          ? await this.pool.request({ method: 'POST', path: this.path, headers: { 'content-type': 'application/json' }, body: JSON.stringify(n), signal })
          : await this.pool.request({ method: 'GET', path: `${this.path}${this.path.includes('?') ? '&' : '?'}${queryOf(n)}`, signal });
      await res.body.dump({ limit: 64 * 1024 });
      if (res.statusCode >= 400) throw new Error(`answered ${res.statusCode}`);
    } catch (err) {
      this.failures.maybe((suppressed) => this.log.warn({ err: redactText((err as Error).message), suppressed }, 'sessions backend notification failed'));
    }
  }

  async close(): Promise<void> {
    await this.pool.close().catch(() => undefined);
  }
}

/** Flat fields as query parameters (the decision as decision_result, decision_reason, …). */
function queryOf(n: CloseNotification): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(n)) {
    if (value === null) continue;
    if (typeof value === 'object') {
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) if (v !== null) params.set(`${key}_${k}`, String(v));
    } else {
      params.set(key, String(value));
    }
  }
  return params.toString();
}
