import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CHANNEL_PATTERN } from '../../src/config/options.js';
import { ChannelMatcher } from '../../src/proxy/channel.js';

/** What the handler read from a path before the matcher: the regex's own answer. */
function byRegex(pattern: RegExp, path: string): { channel: string; rest: string | undefined } | undefined {
  const m = pattern.exec(path);
  const channel = m?.groups?.['channel'];
  if (m === null || channel === undefined || channel === '') return undefined;
  return { channel, rest: m.groups?.['rest'] };
}

function byMatcher(matcher: ChannelMatcher, path: string): { channel: string; rest: string | undefined } | undefined {
  return matcher.match(path) ? { channel: matcher.channel, rest: matcher.rest } : undefined;
}

/** Paths built from the pieces that matter to the pattern: its prefix, slashes, line terminators, other characters. */
const pathLike = fc
  .array(fc.constantFrom('/play/', '/play', 'play/', '/', '//', 'ch1', 'index.m3u8', 'seg-1.ts', '.', '..', '%2F', 'P', 'é', '\n', '\r', '\u2028', '\u2029', '\u0085', '\ud83d', ' '), { maxLength: 8 })
  .map((parts) => parts.join(''));

describe('ChannelMatcher', () => {
  it('takes the hand-written path for the default pattern, and only for it', () => {
    expect((new ChannelMatcher(new RegExp(DEFAULT_CHANNEL_PATTERN)) as unknown as { isDefault: boolean }).isDefault).toBe(true);
    expect((new ChannelMatcher(new RegExp(DEFAULT_CHANNEL_PATTERN, 'i')) as unknown as { isDefault: boolean }).isDefault).toBe(false);
    expect((new ChannelMatcher(/^\/live\/(?<channel>[^/]+)(?<rest>\/.*)?$/) as unknown as { isDefault: boolean }).isDefault).toBe(false);
  });

  it('gives exactly the default regex’s channel and rest, or no match, for any path', () => {
    const pattern = new RegExp(DEFAULT_CHANNEL_PATTERN);
    const matcher = new ChannelMatcher(pattern);
    fc.assert(
      fc.property(fc.oneof(pathLike, fc.string(), fc.string().map((s) => `/play/${s}`)), (path) => {
        expect(byMatcher(matcher, path)).toEqual(byRegex(pattern, path));
      }),
      { numRuns: 5000 },
    );
  });

  it('matches the examples a player sends, and refuses the rest', () => {
    const matcher = new ChannelMatcher(new RegExp(DEFAULT_CHANNEL_PATTERN));
    expect(byMatcher(matcher, '/play/ch1')).toEqual({ channel: 'ch1', rest: undefined });
    expect(byMatcher(matcher, '/play/ch1/')).toEqual({ channel: 'ch1', rest: '/' });
    expect(byMatcher(matcher, '/play/ch1/index.m3u8')).toEqual({ channel: 'ch1', rest: '/index.m3u8' });
    expect(byMatcher(matcher, '/play/ch1/a\nb')).toBeUndefined();
    expect(byMatcher(matcher, '/play//x')).toBeUndefined();
    expect(byMatcher(matcher, '/play/')).toBeUndefined();
    expect(byMatcher(matcher, '/PLAY/ch1')).toBeUndefined();
  });

  it('runs any other pattern as configured', () => {
    const pattern = /^\/(?<channel>[a-z]+)\.ts$/i;
    const matcher = new ChannelMatcher(pattern);
    expect(matcher.hasRestGroup).toBe(false);
    expect(byMatcher(matcher, '/News.ts')).toEqual({ channel: 'News', rest: undefined });
    expect(byMatcher(matcher, '/play/ch1')).toBeUndefined();
  });
});
