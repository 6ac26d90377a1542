/**
 * The primary's side of the workers' fleet (session/ipc.ts is the worker's):
 * answers their requests from the PrimaryState, applies their batches, and
 * tells every other worker of the ends they report. Knows nothing of
 * processes: it is given a way to send to a slot, so tests connect IpcFleets
 * to it in one process.
 */
import type { FleetEnd } from '../session/fleet.js';
import type { FromPrimary, FromWorker } from './protocol.js';
import type { PrimaryState, Slot } from './primary-state.js';

/** How often expired tombstones are dropped. */
export const TOMBSTONE_SWEEP_MS = 10_000;

export interface FleetHostOptions {
  readonly state: PrimaryState;
  /** Sends to one worker; a worker that is gone is skipped. */
  readonly send: (slot: Slot, message: FromPrimary) => void;
  /** The slots of the workers running now. */
  readonly slots: () => Iterable<Slot>;
}

export class FleetHost {
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly options: FleetHostOptions) {
    this.sweeper = setInterval(() => options.state.sweep(), TOMBSTONE_SWEEP_MS);
    this.sweeper.unref();
  }

  /** Handles the fleet's messages (admit, find, list, batch); false for any other kind. */
  handle(slot: Slot, m: FromWorker): boolean {
    const { state, send } = this.options;
    switch (m.t) {
      case 'admit':
        send(slot, { t: 'reply', id: m.id, admit: state.admit(slot, m.req) });
        return true;
      case 'find':
        send(slot, { t: 'reply', id: m.id, found: state.findMarker(m.joinKey !== undefined ? { joinKey: m.joinKey } : { sessionId: m.sessionId! }) ?? null });
        return true;
      case 'list':
        send(slot, { t: 'reply', id: m.id, page: state.list(m.filter, m.after, m.limit) });
        return true;
      case 'batch': {
        for (const s of m.publish) state.publish(slot, s);
        for (const t of m.touch) state.touch(slot, t);
        for (const id of m.unpublish) state.unpublish(slot, id);
        for (const r of m.release) state.release(slot, r.userKey, r.sessionId);
        const news = m.end.filter((e) => state.end(e));
        if (news.length > 0) this.broadcast(news, slot);
        return true;
      }
      default:
        return false;
    }
  }

  /** An end decided by the primary itself (a kick through its admin API): every worker is told. */
  end(e: FleetEnd): void {
    if (this.options.state.end(e)) this.broadcast([e], undefined);
  }

  /** The ends in force, for a (re)starting worker's config: it refuses their markers from its first request. */
  liveEnds(): FleetEnd[] {
    return this.options.state.liveEnds();
  }

  /** A worker exited: what it held is let go at once. */
  workerExited(slot: Slot): void {
    this.options.state.dropWorker(slot);
  }

  close(): void {
    clearInterval(this.sweeper);
  }

  private broadcast(ends: FleetEnd[], except: Slot | undefined): void {
    for (const slot of this.options.slots()) if (slot !== except) this.options.send(slot, { t: 'ended', ends });
  }
}
