/**
 * Astra securetoken, verified locally (PROTOCOLS §6): no middleware call.
 *
 *   token = <hash>-<salt>-<end>-<start>
 *   hash  = hex(sha1(channel + ip + start + end + secret + salt))
 *
 * `start` and `end` are unix seconds, hashed as the decimal strings written in
 * the token (so `0170…` and `170…` hash differently, as they do in Astra).
 * `ip` is the client address in dotted form, or '' when the hash is not bound
 * to the client (securetoken.bindIp false). The token is valid from
 * `start` (less {@link SECURETOKEN_CLOCK_SKEW_MS}) until, not including, `end`.
 *
 * Checks run in this order, so a reason means one thing: malformed (cannot be
 * parsed) → invalid (the hash does not match: forged or tampered, whatever
 * its times say) → not yet valid / expired (a genuine token outside its window).
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export interface SecureTokenConfig {
  /** Shared with whoever issues the tokens. Must not be empty. */
  readonly secret: string;
  /** When false, the hash carries '' in place of the client IP. */
  readonly bindIp: boolean;
}

export type SecureTokenResult =
  | { allow: true; reason: 'securetoken_valid'; /** Until `end`. */ ttlMs: number }
  | { allow: false; reason: 'securetoken_malformed' | 'securetoken_expired' | 'securetoken_not_yet_valid' | 'securetoken_invalid' };

export interface SecureTokenInput {
  readonly channel: string;
  readonly clientIp: string;
}

/**
 * How far ahead of our clock a token's `start` may be: the portal that issues
 * it and the edge rarely agree to the second, and a player starts at once.
 */
export const SECURETOKEN_CLOCK_SKEW_MS = 5_000;

/** Longest token looked at: a real one is ~40+1+32+1+10+1+10 characters. */
export const SECURETOKEN_MAX_LENGTH = 512;

const SHA1_HEX = /^[0-9a-fA-F]{40}$/;
/** Unix seconds: 12 digits reach the year 33658 and stay a safe integer. */
const SECONDS = /^\d{1,12}$/;
/** Salts makeSecureToken writes: URL-unreserved characters except the separator. */
const SALT = /^[A-Za-z0-9._~]+$/;

const MALFORMED = Object.freeze({ allow: false, reason: 'securetoken_malformed' } as const);
const INVALID = Object.freeze({ allow: false, reason: 'securetoken_invalid' } as const);
const EXPIRED = Object.freeze({ allow: false, reason: 'securetoken_expired' } as const);
const NOT_YET_VALID = Object.freeze({ allow: false, reason: 'securetoken_not_yet_valid' } as const);

function digest(input: SecureTokenInput, config: SecureTokenConfig, start: string, end: string, salt: string): Buffer {
  if (config.secret === '') throw new RangeError('securetoken secret must not be empty: anyone could forge tokens');
  // Successive update() calls hash the concatenation without building it.
  return createHash('sha1')
    .update(input.channel)
    .update(config.bindIp ? input.clientIp : '')
    .update(start)
    .update(end)
    .update(config.secret)
    .update(salt)
    .digest();
}

/**
 * Verifies `token`, the query value already decoded (proxy/query.ts: the
 * value a middleware would read, so `%2D` is `-` and decoding happens once,
 * there). A missing token is malformed. Throws only on an empty secret (a
 * config error).
 */
export function verifySecureToken(token: string | undefined, input: SecureTokenInput, config: SecureTokenConfig, nowMs: number): SecureTokenResult {
  if (token === undefined || token.length > SECURETOKEN_MAX_LENGTH) return MALFORMED;
  const parts = token.split('-');
  if (parts.length !== 4) return MALFORMED;
  const [hash, salt, end, start] = parts as [string, string, string, string];
  if (!SHA1_HEX.test(hash) || salt === '' || !SECONDS.test(end) || !SECONDS.test(start)) return MALFORMED;
  const startMs = Number(start) * 1000;
  const endMs = Number(end) * 1000;
  // A window that closes before it opens comes from no generator.
  if (endMs < startMs) return MALFORMED;

  // Both 20 bytes (the hex was checked above), as timingSafeEqual requires.
  if (!timingSafeEqual(Buffer.from(hash, 'hex'), digest(input, config, start, end, salt))) return INVALID;

  if (nowMs < startMs - SECURETOKEN_CLOCK_SKEW_MS) return NOT_YET_VALID;
  if (nowMs >= endMs) return EXPIRED;
  return { allow: true, reason: 'securetoken_valid', ttlMs: endMs - nowMs };
}

/**
 * Issues a token valid from `startSec` until `endSec` (unix seconds), for
 * tests, the demo and operators' scripts. The result needs no percent-encoding.
 */
export function makeSecureToken(input: SecureTokenInput, config: SecureTokenConfig, startSec: number, endSec: number, salt: string): string {
  for (const [name, value] of [['startSec', startSec], ['endSec', endSec]] as const) {
    if (!Number.isSafeInteger(value) || value < 0 || !SECONDS.test(String(value))) throw new RangeError(`${name} must be whole unix seconds, got ${value}`);
  }
  if (endSec < startSec) throw new RangeError(`endSec (${endSec}) is before startSec (${startSec})`);
  if (!SALT.test(salt)) throw new RangeError('salt must be non-empty letters, digits, ".", "_" or "~" (the token separator is "-")');
  const start = String(startSec);
  const end = String(endSec);
  return `${digest(input, config, start, end, salt).toString('hex')}-${salt}-${end}-${start}`;
}
