/**
 * The channel a request path names (session.channelPattern), and what comes
 * after it (the optional `rest` group: none means an MPEG-TS stream).
 *
 * Every request is matched, so the default pattern, which nearly every edge
 * runs with, is matched by hand: a RegExp exec with named groups allocates a
 * match array and a groups object per request. The hand-written matcher is
 * used only when the configured pattern is exactly the default (same source,
 * no flags) and gives exactly the regex's answer (a property test holds it to
 * that); any other pattern is executed as configured.
 */
import { DEFAULT_CHANNEL_PATTERN } from '../config/options.js';

/** The default pattern as V8 writes its source (`/` escaped). */
const DEFAULT_SOURCE = new RegExp(DEFAULT_CHANNEL_PATTERN).source;
const PREFIX = '/play/';

/**
 * One per request handler: `match` fills `channel` and `rest` for the path it
 * was given, read synchronously before the next request is matched.
 */
export class ChannelMatcher {
  /** The channel of the last path matched. */
  channel = '';
  /** The `rest` group of the last path matched (undefined: no such group, or it did not take part). */
  rest: string | undefined = undefined;
  /** The pattern has a `rest` group (classifyRequest reads its absence as an MPEG-TS stream). */
  readonly hasRestGroup: boolean;
  private readonly isDefault: boolean;

  constructor(private readonly pattern: RegExp) {
    this.isDefault = pattern.source === DEFAULT_SOURCE && pattern.flags === '';
    this.hasRestGroup = pattern.source.includes('(?<rest>');
  }

  /** True when `path` names a (non-empty) channel. */
  match(path: string): boolean {
    if (this.isDefault) return this.matchDefault(path);
    const m = this.pattern.exec(path);
    const channel = m?.groups?.['channel'];
    if (m === null || channel === undefined || channel === '') return false;
    this.channel = channel;
    this.rest = m.groups?.['rest'];
    return true;
  }

  /** `^/play/(?<channel>[^/]+)(?<rest>/.*)?$`, by hand. */
  private matchDefault(path: string): boolean {
    // `[^/]+` needs one character.
    if (path.length === PREFIX.length || !path.startsWith(PREFIX)) return false;
    const slash = path.indexOf('/', PREFIX.length);
    if (slash === PREFIX.length) return false;
    if (slash === -1) {
      this.channel = path.slice(PREFIX.length);
      this.rest = undefined;
      return true;
    }
    // `.` stops at a line terminator and `$` (no m flag) is the end of the input: a rest holding
    // one does not match, and the channel cannot reach past the `/` to make up for it.
    for (let i = slash + 1; i < path.length; i++) {
      const c = path.charCodeAt(i);
      if (c === 0x0a || c === 0x0d || c === 0x2028 || c === 0x2029) return false;
    }
    this.channel = path.slice(PREFIX.length, slash);
    this.rest = path.slice(slash);
    return true;
  }
}
