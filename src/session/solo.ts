/**
 * The fleet of one: a single process with no shared store (`--store memory`,
 * the default). Nothing is shared, so nothing is sent or waited for: limits
 * are this process's (the registry's local ones), ends reach only its own
 * sessions, and the fleet's table is its own table, listed exactly as before
 * fleets existed (same order, same cursor), each row with this edge's name.
 */
import type { FleetEnd, FleetFound, FleetPage, FleetSessionView, FleetState, AdmitAnswer } from './fleet.js';
import type { Session } from './session.js';
import { viewOf, type SessionFilter, type SessionTable, type TablePosition } from './table.js';

/** A session as the admin API lists it: its view and the edge that holds it. */
export function fleetViewOf(session: Session, edge: string): FleetSessionView {
  return { ...viewOf(session), edge };
}

/** One page of this process's table as the fleet lists it. */
export function localPage(table: SessionTable, edge: string, filter: SessionFilter, after: TablePosition | undefined, limit: number, complete: boolean): FleetPage {
  const page = table.page(filter, after, limit);
  return { sessions: page.sessions.map((s) => fleetViewOf(s, edge)), total: page.total, next: page.next, complete };
}

const NO_ANSWER: Promise<undefined> = Promise.resolve(undefined);

export class SoloFleet implements FleetState {
  /** No shared state to reach: every decision is this process's own, at once (the registry never waits). */
  readonly connected = false;

  constructor(
    readonly nodeName: string,
    private readonly table: SessionTable,
  ) {}

  admit(): Promise<AdmitAnswer | undefined> {
    return NO_ANSWER;
  }

  release(): void {}

  publish(): void {}

  unpublish(): void {}

  end(): void {}

  onEnd(_listener: (end: FleetEnd) => void): void {}

  findMarker(): Promise<FleetFound | undefined> {
    return NO_ANSWER;
  }

  list(filter: SessionFilter, after: TablePosition | undefined, limit: number): Promise<FleetPage> {
    return Promise.resolve(localPage(this.table, this.nodeName, filter, after, limit, true));
  }

  async close(): Promise<void> {}
}
