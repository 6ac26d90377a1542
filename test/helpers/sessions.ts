// Fills an in-process edge's session table without players or a middleware: each session goes
// through the registry as a first allowed request would (joinOrOpen → apply → activate). For tests
// that need hundreds or thousands of open sessions (paging, the status page) and are not about how
// sessions open.
import type { EdgeApp } from '../../src/app.js';
import type { Session } from '../../src/session/session.js';

export interface InjectOptions {
  /** Channel of the i-th session (default `ch<i % 10>`). */
  channel?: (i: number) => string;
  /** X-Session-Name of the i-th session (default `user<i>`). */
  name?: (i: number) => string;
  /** openedAt of the first session (default: now - count ms, one ms apart). */
  firstOpenedAt?: number;
}

export function injectSessions(app: EdgeApp, count: number, o: InjectOptions = {}): Session[] {
  const now = Date.now();
  const first = o.firstOpenedAt ?? now - count;
  const out: Session[] = [];
  for (let i = 0; i < count; i++) {
    const channel = o.channel?.(i) ?? `ch${i % 10}`;
    const s = app.sessions.joinOrOpen(
      { channel, kind: 'hls', clientIp: `10.0.${(i >> 8) & 255}.${i & 255}`, userAgent: 'injected/1.0', host: 'edge', path: `/play/${channel}/index.m3u8`, query: '', token: undefined, referer: '' },
      first + i,
    );
    app.sessions.apply(s, { allow: true, reason: 'backend_200', sessionName: o.name?.(i) ?? `user${i}`, source: 'backend', decidedAt: now, ttlMs: 3_600_000 }, false);
    if (!app.sessions.activate(s)) throw new Error(`injectSessions: session ${i} refused by the limits`);
    out.push(s);
  }
  return out;
}
