/**
 * Signed session markers: what lets any edge of a fleet that shares
 * `session.secret` serve a session it has never seen, without asking the
 * middleware again (a Ministra token is dead 5 s after issue).
 *
 * A marker is one base64url string (safe in a query, no escaping):
 *
 *   payload = version(1) keyId(1) sessionId(16) issuedAt(u32 s) expiresAt(u32 s)
 *             flags(1) maxSessions(u16) channel(u8 len + bytes) userId(u8 len + bytes)
 *             path(u16 len + bytes) query(u16 len + bytes)
 *   marker  = base64url(payload ‖ HMAC-SHA256(key, payload)[0..16])
 *
 * - sessionId is the session's ID (the admin API's, 22 base64url chars);
 * - expiresAt is when the decision the marker carries stops being fresh:
 *   until then an edge rebuilds the session from the marker alone; after it,
 *   the edge re-checks the way the issuing edge would, with the original path
 *   and query (the token is in it) carried here;
 * - flags: bit 0 granted (always set: only allowed sessions get markers),
 *   bit 1 unique (X-Unique); maxSessions and userId: the per-user limit the
 *   middleware granted;
 * - keyId: the first byte of SHA-256(secret), so a rotated secret is told
 *   apart without trying every key; the previous secret is accepted for a
 *   configured overlap.
 *
 * A 128-bit tag: forging one is 2^-128 per try. The payload is not secret
 * (the player sent the token in the URL it was given; the marker adds the
 * channel and times): it is authenticated, not encrypted. Pure: no clock.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const MARKER_VERSION = 1;
const TAG_BYTES = 16;
const ID_BYTES = 16;
const FLAG_GRANTED = 1;
const FLAG_UNIQUE = 2;
/** version, keyId, id, issuedAt, expiresAt, flags, maxSessions, channel len, userId len, path len, query len. */
const FIXED_BYTES = 1 + 1 + ID_BYTES + 4 + 4 + 1 + 2 + 1 + 1 + 2 + 2;
/** Markers longer than this are not even decoded (a hostile query parameter). */
export const MAX_MARKER_CHARS = 4096;

export interface MarkerClaims {
  /** The session ID as the admin API shows it (22 base64url characters). */
  readonly sessionId: string;
  readonly channel: string;
  /** Seconds since the epoch. */
  readonly issuedAt: number;
  /** When the carried decision stops being fresh (seconds since the epoch). */
  readonly expiresAt: number;
  readonly unique: boolean;
  /** 0: none granted. */
  readonly maxSessions: number;
  /** X-UserId, else X-Session-Name, or ''. */
  readonly userId: string;
  /** Path and raw query of the request that opened the session: a re-check on another edge replays them. */
  readonly path: string;
  readonly query: string;
}

export type MarkerVerdict =
  | { readonly ok: true; readonly claims: MarkerClaims; readonly previousKey: boolean }
  | { readonly ok: false; readonly reason: 'malformed' | 'unknown_key' | 'bad_signature' };

export interface MarkerKey {
  readonly id: number;
  readonly secret: Buffer;
}

export function markerKey(secret: string): MarkerKey {
  return { id: createHash('sha256').update(secret).digest()[0]!, secret: Buffer.from(secret, 'utf8') };
}

function tag(key: MarkerKey, payload: Buffer): Buffer {
  return createHmac('sha256', key.secret).update(payload).digest().subarray(0, TAG_BYTES);
}

/** Fields longer than their length prefix allows are refused by the issuer, not cut (a cut query would change the re-check). */
export function signMarker(key: MarkerKey, claims: MarkerClaims): string | undefined {
  const id = Buffer.from(claims.sessionId, 'base64url');
  const channel = Buffer.from(claims.channel, 'utf8');
  const userId = Buffer.from(claims.userId, 'utf8');
  const path = Buffer.from(claims.path, 'latin1');
  const query = Buffer.from(claims.query, 'latin1');
  if (id.length !== ID_BYTES || channel.length > 255 || userId.length > 255 || path.length > 0xffff || query.length > 0xffff) return undefined;
  const payload = Buffer.allocUnsafe(FIXED_BYTES + channel.length + userId.length + path.length + query.length);
  let p = 0;
  p = payload.writeUInt8(MARKER_VERSION, p);
  p = payload.writeUInt8(key.id, p);
  p += id.copy(payload, p);
  p = payload.writeUInt32BE(clampSeconds(claims.issuedAt), p);
  p = payload.writeUInt32BE(clampSeconds(claims.expiresAt), p);
  p = payload.writeUInt8(FLAG_GRANTED | (claims.unique ? FLAG_UNIQUE : 0), p);
  p = payload.writeUInt16BE(Math.min(0xffff, Math.max(0, claims.maxSessions)), p);
  p = payload.writeUInt8(channel.length, p);
  p += channel.copy(payload, p);
  p = payload.writeUInt8(userId.length, p);
  p += userId.copy(payload, p);
  p = payload.writeUInt16BE(path.length, p);
  p += path.copy(payload, p);
  p = payload.writeUInt16BE(query.length, p);
  query.copy(payload, p);
  return Buffer.concat([payload, tag(key, payload)]).toString('base64url');
}

/**
 * Checks a marker against the current key and, when given, the previous one.
 * Never throws, whatever the input.
 */
export function verifyMarker(marker: string, current: MarkerKey, previous?: MarkerKey): MarkerVerdict {
  if (marker.length > MAX_MARKER_CHARS || marker.length < 24 || !/^[A-Za-z0-9_-]+$/.test(marker)) return MALFORMED;
  const bytes = Buffer.from(marker, 'base64url');
  if (bytes.length < FIXED_BYTES + TAG_BYTES || bytes[0] !== MARKER_VERSION) return MALFORMED;
  const keyId = bytes[1];
  const key = keyId === current.id ? current : previous !== undefined && keyId === previous.id ? previous : undefined;
  if (key === undefined) return UNKNOWN_KEY;
  const payload = bytes.subarray(0, bytes.length - TAG_BYTES);
  const presented = bytes.subarray(bytes.length - TAG_BYTES);
  if (!timingSafeEqual(presented, tag(key, payload))) return BAD_SIGNATURE;
  // Signed by us: the layout is ours, but still bounds-check (an old version's bug must not throw here).
  let p = 2;
  const sessionId = payload.subarray(p, p + ID_BYTES).toString('base64url');
  p += ID_BYTES;
  const issuedAt = payload.readUInt32BE(p);
  const expiresAt = payload.readUInt32BE(p + 4);
  const flags = payload[p + 8]!;
  const maxSessions = payload.readUInt16BE(p + 9);
  p += 11;
  const read = (lengthBytes: 1 | 2, encoding: BufferEncoding): string | undefined => {
    if (p + lengthBytes > payload.length) return undefined;
    const n = lengthBytes === 1 ? payload[p]! : payload.readUInt16BE(p);
    p += lengthBytes;
    if (p + n > payload.length) return undefined;
    const s = payload.toString(encoding, p, p + n);
    p += n;
    return s;
  };
  const channel = read(1, 'utf8');
  const userId = read(1, 'utf8');
  const path = read(2, 'latin1');
  const query = read(2, 'latin1');
  if (channel === undefined || userId === undefined || path === undefined || query === undefined || p !== payload.length || (flags & FLAG_GRANTED) === 0) return MALFORMED;
  return { ok: true, claims: { sessionId, channel, issuedAt, expiresAt, unique: (flags & FLAG_UNIQUE) !== 0, maxSessions, userId, path, query }, previousKey: key !== current };
}

/** The session ID inside a marker, without verifying it (for a local lookup before any crypto), or undefined. */
export function markerSessionId(marker: string): string | undefined {
  if (marker.length < 24 || marker.length > MAX_MARKER_CHARS) return undefined;
  // Bytes 2..18 of the payload are base64url characters 2⅔..24: decode the first 24 characters (18 bytes).
  const head = Buffer.from(marker.slice(0, 24), 'base64url');
  if (head.length < 18 || head[0] !== MARKER_VERSION) return undefined;
  return head.subarray(2, 18).toString('base64url');
}

function clampSeconds(s: number): number {
  return Math.min(0xffffffff, Math.max(0, Math.floor(s)));
}

const MALFORMED: MarkerVerdict = Object.freeze({ ok: false, reason: 'malformed' });
const UNKNOWN_KEY: MarkerVerdict = Object.freeze({ ok: false, reason: 'unknown_key' });
const BAD_SIGNATURE: MarkerVerdict = Object.freeze({ ok: false, reason: 'bad_signature' });

/**
 * The edge's keys: the current secret signs, the current and (until
 * `previousUntilMs`) the previous one verify, so a secret can be rotated
 * across a fleet without cutting players (session.secret,
 * session.previousSecret, session.secretOverlap).
 */
export class MarkerKeys {
  private readonly current: MarkerKey;
  private readonly previous: MarkerKey | undefined;

  constructor(
    secret: string,
    previousSecret: string | undefined,
    private readonly previousUntilMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.current = markerKey(secret);
    this.previous = previousSecret === undefined ? undefined : markerKey(previousSecret);
  }

  sign(claims: MarkerClaims): string | undefined {
    return signMarker(this.current, claims);
  }

  verify(marker: string): MarkerVerdict {
    const previous = this.previous !== undefined && this.now() < this.previousUntilMs ? this.previous : undefined;
    return verifyMarker(marker, this.current, previous);
  }
}
