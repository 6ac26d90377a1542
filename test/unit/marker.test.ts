import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { markerKey, markerSessionId, signMarker, verifyMarker, type MarkerClaims } from '../../src/session/marker.js';
import { newSessionId } from '../../src/session/session.js';

const key = markerKey('0123456789abcdef-current');
const old = markerKey('0123456789abcdef-previous');

function claims(over: Partial<MarkerClaims> = {}): MarkerClaims {
  return {
    sessionId: newSessionId(),
    channel: 'a001',
    issuedAt: 1_790_000_000,
    expiresAt: 1_790_000_060,
    unique: false,
    maxSessions: 2,
    userId: 'alice',
    path: '/play/a001/index.m3u8',
    query: 'token=abc%20def&x=1',
    ...over,
  };
}

describe('signed session markers', () => {
  it('round-trip every claim; the ID is readable before verification', () => {
    const c = claims({ unique: true, channel: 'канал', userId: 'ü' });
    const m = signMarker(key, c)!;
    expect(m).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(markerSessionId(m)).toBe(c.sessionId);
    expect(verifyMarker(m, key)).toEqual({ ok: true, claims: c, previousKey: false });
  });

  it('the previous key is accepted only when given, and says so', () => {
    const m = signMarker(old, claims())!;
    expect(verifyMarker(m, key)).toEqual({ ok: false, reason: 'unknown_key' });
    const v = verifyMarker(m, key, old);
    expect(v.ok && v.previousKey).toBe(true);
  });

  it('refuses any change to any byte', () => {
    const m = signMarker(key, claims())!;
    const bytes = Buffer.from(m, 'base64url');
    for (let i = 0; i < bytes.length; i++) {
      const copy = Buffer.from(bytes);
      copy[i]! ^= 0x01;
      const v = verifyMarker(copy.toString('base64url'), key);
      expect(v.ok, `byte ${i}`).toBe(false);
    }
    expect(verifyMarker(m.slice(0, -1), key).ok).toBe(false);
    expect(verifyMarker(`${m}A`, key).ok).toBe(false);
  });

  it('a marker signed with another secret of the same key ID is a bad signature', () => {
    // Find a secret whose key ID collides with ours (1 in 256).
    let other = key;
    for (let i = 0; other.id !== key.id || other === key; i++) other = markerKey(`another-secret-${i}-xxxxxxxx`);
    expect(verifyMarker(signMarker(other, claims())!, key)).toEqual({ ok: false, reason: 'bad_signature' });
  });

  it('fields too long for their length prefix are refused at signing', () => {
    expect(signMarker(key, claims({ channel: 'c'.repeat(256) }))).toBeUndefined();
    expect(signMarker(key, claims({ query: 'q'.repeat(70_000) }))).toBeUndefined();
    expect(signMarker(key, claims({ sessionId: 'short' }))).toBeUndefined();
  });

  it('never throws and never accepts garbage (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 600 }), (s) => {
        const v = verifyMarker(s, key, old);
        expect(v.ok).toBe(false);
        markerSessionId(s);
      }),
      { numRuns: 3000 },
    );
  });

  it('round-trips arbitrary claims (property)', () => {
    fc.assert(
      fc.property(
        fc.record({
          channel: fc.string({ maxLength: 60 }),
          userId: fc.string({ maxLength: 60 }),
          path: fc.stringMatching(/^\/[!-~]{0,200}$/),
          query: fc.stringMatching(/^[!-~]{0,300}$/),
          issuedAt: fc.integer({ min: 0, max: 0xffffffff }),
          expiresAt: fc.integer({ min: 0, max: 0xffffffff }),
          unique: fc.boolean(),
          maxSessions: fc.integer({ min: 0, max: 0xffff }),
        }),
        (r) => {
          const c = { ...r, sessionId: newSessionId() };
          const m = signMarker(key, c)!;
          expect(verifyMarker(m, key)).toEqual({ ok: true, claims: c, previousKey: false });
          expect(markerSessionId(m)).toBe(c.sessionId);
        },
      ),
      { numRuns: 500 },
    );
  });
});
