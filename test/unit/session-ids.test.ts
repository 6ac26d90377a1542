import { describe, expect, it } from 'vitest';
import { SessionIds, isWellFormedSessionId } from '../../src/session/session.js';

describe('SessionIds', () => {
  it('hands out well-formed 128-bit IDs, every one different, across refills of its pool', () => {
    const ids = new SessionIds();
    const seen = new Set<string>();
    for (let i = 0; i < 256 * 4 + 3; i++) {
      const id = ids.next();
      expect(isWellFormedSessionId(id)).toBe(true);
      expect(Buffer.from(id, 'base64url')).toHaveLength(16);
      seen.add(id);
    }
    expect(seen.size).toBe(256 * 4 + 3);
  });

  it('two sources draw their own randomness', () => {
    const a = new SessionIds();
    const b = new SessionIds();
    expect(a.next()).not.toBe(b.next());
  });
});
