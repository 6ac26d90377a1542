/**
 * The edge's own error answers (the JSON body of errors.ts with its status),
 * serialized once per code and reason and reused (STYLE §11): a denied
 * player retrying, a flood of bad tokens, get the same bytes and the same
 * header array every time, with nothing built per request.
 *
 * Reasons come from a small set (our refusal reasons, a backend's reason
 * codes: `backend_403`, Smarty's `expired`…), but a middleware could send
 * many: past MAX_CACHED_REASONS the answer is built per request instead of
 * cached, so the cache stays bounded whatever the middleware says.
 */
import { errorBody, ERROR_CODES, type ErrorCode } from '../errors.js';

/** Distinct (code, reason) answers kept at most; the rest are built when needed. */
export const MAX_CACHED_REASONS = 256;

export interface ErrorAnswer {
  readonly status: number;
  readonly body: Buffer;
  /** Content-Type, Content-Length, Cache-Control: shared, never modified (copy it to add headers). */
  readonly headers: readonly string[];
}

export class ErrorAnswers {
  private readonly fixed = new Map<ErrorCode, ErrorAnswer>();
  private readonly withReason = new Map<ErrorCode, Map<string, ErrorAnswer>>();
  private cachedReasons = 0;

  constructor() {
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) this.fixed.set(code, build(code, undefined));
  }

  get(code: ErrorCode, reason: string | undefined): ErrorAnswer {
    if (reason === undefined) return this.fixed.get(code)!;
    let byReason = this.withReason.get(code);
    const known = byReason?.get(reason);
    if (known !== undefined) return known;
    const answer = build(code, reason);
    if (this.cachedReasons < MAX_CACHED_REASONS) {
      if (byReason === undefined) this.withReason.set(code, (byReason = new Map()));
      byReason.set(reason, answer);
      this.cachedReasons++;
    }
    return answer;
  }
}

function build(code: ErrorCode, reason: string | undefined): ErrorAnswer {
  const body = Buffer.from(errorBody(code, reason));
  return { status: ERROR_CODES[code].status, body, headers: Object.freeze(['content-type', 'application/json', 'content-length', String(body.length), 'cache-control', 'no-store']) };
}
