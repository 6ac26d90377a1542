import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isRefusal, refusal, REFUSAL_REASONS } from '../../src/proxy/refusal.js';

describe('refusals', () => {
  it('are one shared frozen object per reason', () => {
    for (const reason of REFUSAL_REASONS) {
      expect(refusal(reason)).toBe(refusal(reason));
      expect(Object.isFrozen(refusal(reason))).toBe(true);
      expect(isRefusal(refusal(reason))).toBe(true);
    }
    expect(isRefusal('path_above_root')).toBe(false);
    expect(isRefusal(undefined)).toBe(false);
  });

  it('are the reasons the README lists for 400 EDGE_ERR_BAD_REQUEST, and no other', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const lines = readme.split('\n');
    const header = lines.findIndex((l) => l.trim() === '| reason | the request |');
    expect(header).toBeGreaterThan(0);
    const listed: string[] = [];
    for (let i = header + 2; i < lines.length && lines[i]!.trim().startsWith('|'); i++) listed.push(/^\s*\| `([a-z_0-9]+)` \|/.exec(lines[i]!)?.[1] ?? lines[i]!);
    expect(listed.sort()).toEqual([...REFUSAL_REASONS].sort());
  });
});
