/**
 * STOP-GAP until the session registry talks to its FleetState itself (the
 * fleet wiring: `activate` → admit, table changes → publish/unpublish/
 * release, ends → end/onEnd). Meanwhile a worker's open sessions reach the
 * primary by polling its table every POLL_MS, and an end decided elsewhere
 * (a kick through the primary's admin API) ends the local copy. Delete this
 * file, and its one call in worker.ts, once the registry does both.
 */
import type { SessionRegistry } from '../session/registry.js';
import type { FleetState } from '../session/fleet.js';
import type { Session } from '../session/session.js';

/** A quarter second: a session is findable by its join key before its player reloads the playlist (a target duration, 1 s or more). */
const POLL_MS = 250;

export function bridgeRegistry(sessions: SessionRegistry, fleet: FleetState, pollMs = POLL_MS): { close(): void } {
  /** What was published last: the session and its figures then. */
  const published = new Map<string, { session: Session; lastSeenAt: number; bytes: number }>();
  const poll = (): void => {
    const seen = new Set<string>();
    for (const session of sessions.table.values()) {
      seen.add(session.id);
      const last = published.get(session.id);
      if (last !== undefined && last.session === session && last.lastSeenAt === session.lastSeenAt && last.bytes === session.bytes) continue;
      published.set(session.id, { session, lastSeenAt: session.lastSeenAt, bytes: session.bytes });
      fleet.publish(session);
    }
    for (const id of published.keys()) {
      if (seen.has(id)) continue;
      published.delete(id);
      fleet.unpublish(id);
    }
  };
  const timer = setInterval(poll, pollMs);
  timer.unref();
  fleet.onEnd((end) => void sessions.kick(end.sessionId));
  return {
    close() {
      clearInterval(timer);
      poll();
    },
  };
}
