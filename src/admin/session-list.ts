/**
 * `GET /api/sessions`, paged (hardening issue, item 10): 22k sessions as one
 * JSON document were 6-9 MB built in one synchronous step of 130-270 ms,
 * during which no viewer was served, every 3 s while a status page was open.
 * Now a request names a page size (`limit`, at most MAX_LIMIT) and where to
 * start (`cursor`, from the previous page's `nextCursor`); the page is
 * written a few rows at a time, waiting for the socket to drain.
 */
import type { ServerResponse } from 'node:http';
import type { FleetPage } from '../session/fleet.js';
import type { SessionFilter, TablePosition } from '../session/table.js';

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;
/** The status page's filter box: longer text cannot match a channel or a name anyway. */
export const MAX_FILTER_LENGTH = 200;
/** Rows are serialized into pieces of about this many characters before each write. */
const WRITE_PIECE_CHARS = 16 * 1024;
/** A client that stops reading a page is cut after this long: the page is held in memory meanwhile. */
const STALLED_READER_MS = 30_000;

export interface ListRequest {
  readonly filter: SessionFilter;
  readonly after: TablePosition | undefined;
  readonly limit: number;
}

export type ListParse = { readonly ok: true; readonly request: ListRequest } | { readonly ok: false; readonly message: string };

const CURSOR_VERSION = 'v1';
const CURSOR_TEXT = /^[A-Za-z0-9_-]{1,64}$/;
const CURSOR_BODY = /^v1\.(\d{1,15})\.(\d{1,15})$/;

/** Opaque to clients: base64url of `v1.<openedAt>.<seq>`. No session ID in it (cursors end up in proxy logs). */
export function encodeCursor(p: TablePosition): string {
  return Buffer.from(`${CURSOR_VERSION}.${p.openedAt}.${p.seq}`).toString('base64url');
}

export function decodeCursor(text: string): TablePosition | undefined {
  if (!CURSOR_TEXT.test(text)) return undefined;
  const m = CURSOR_BODY.exec(Buffer.from(text, 'base64url').toString('latin1'));
  if (m === null) return undefined;
  const p = { openedAt: Number(m[1]), seq: Number(m[2]) };
  // Buffer's base64url decoder is lenient (padding, trailing bits): only the canonical spelling is ours.
  return encodeCursor(p) === text ? p : undefined;
}

function single(query: URLSearchParams, name: string): string | undefined | null {
  const all = query.getAll(name);
  if (all.length > 1) return null;
  return all[0];
}

/** `limit`, `cursor`, `channel`, `name`, `q`; each bad value is a message naming the parameter. */
export function parseListQuery(query: URLSearchParams): ListParse {
  const names = ['limit', 'cursor', 'channel', 'name', 'q'] as const;
  const v: Partial<Record<(typeof names)[number], string>> = {};
  for (const name of names) {
    const value = single(query, name);
    if (value === null) return { ok: false, message: `invalid ${name}: given more than once` };
    if (value !== undefined) v[name] = value;
  }
  let limit = DEFAULT_LIMIT;
  if (v.limit !== undefined) {
    limit = /^\d{1,7}$/.test(v.limit) ? Number(v.limit) : NaN;
    if (!(limit >= 1 && limit <= MAX_LIMIT)) return { ok: false, message: `invalid limit ${JSON.stringify(v.limit.slice(0, 20))}: expected an integer from 1 to ${MAX_LIMIT}` };
  }
  let after: TablePosition | undefined;
  if (v.cursor !== undefined) {
    after = decodeCursor(v.cursor);
    if (after === undefined) return { ok: false, message: 'invalid cursor: pass the nextCursor of the previous page as it is' };
  }
  for (const name of ['channel', 'name', 'q'] as const) {
    if ((v[name]?.length ?? 0) > MAX_FILTER_LENGTH) return { ok: false, message: `invalid ${name}: longer than ${MAX_FILTER_LENGTH} characters` };
  }
  const text = v.q?.trim().toLowerCase();
  return { ok: true, request: { filter: { channel: v.channel, name: v.name, text: text === '' ? undefined : text }, after, limit } };
}

/** Resolves when the response can take more, or has closed; cuts a reader stalled for STALLED_READER_MS. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    const timer = setTimeout(() => {
      res.destroy();
      done();
    }, STALLED_READER_MS);
    timer.unref();
    res.once('drain', done);
    res.once('close', done);
  });
}

/**
 * Writes `{"sessions":[…],"total":N,"nextCursor":…}` a piece at a time.
 * Everything but the rows (total, cursor) is fixed before the first byte, so
 * a page is consistent even when the table changes while it is written. With
 * `"complete":false` when the fleet's store did not answer and the page lists
 * this edge's sessions only (absent otherwise: a single edge's answer is as
 * it always was).
 */
export async function writeSessionPage(res: ServerResponse, page: FleetPage): Promise<void> {
  const tail = `],"total":${page.total},"nextCursor":${page.next === undefined ? 'null' : JSON.stringify(encodeCursor(page.next))}${page.complete ? '' : ',"complete":false'}}\n`;
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  let piece = '{"sessions":[';
  for (let i = 0; i < page.sessions.length; i++) {
    piece += (i === 0 ? '' : ',') + JSON.stringify(page.sessions[i]!);
    if (piece.length < WRITE_PIECE_CHARS) continue;
    const more = res.write(piece);
    piece = '';
    if (!more) await drained(res);
    if (res.destroyed) return;
  }
  res.end(piece + tail);
}
