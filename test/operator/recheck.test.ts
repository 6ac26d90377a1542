// Operator issue, part 3: one-shot tokens with the HTTP Request backend. A middleware that issues
// tokens valid for seconds (as Ministra does) and sends no TTL header, met through
// `--backend-type http`: the first re-check (at --allow-ttl) sent the dead token, got 403, and the
// session ended mid-play. Now `--recheck never` keeps the first answer while the session is used,
// and with the default `ttl` the trap is logged once, with the fix. Compressed: tokens live 1 s,
// --allow-ttl is 1.5 s.
import { afterEach, describe, expect, it } from 'vitest';
import { httpRequest, openStream, type OpenStream } from '../helpers/client.js';
import type { TestEdge } from '../helpers/edge.js';
import { useStack } from '../helpers/stack.js';
import { sleep, waitFor } from '../helpers/wait.js';

const TOKEN_LIFE_MS = 1000;
const start = useStack({ origin: { segmentBytes: 4096 }, middleware: { behavior: { kind: 'ministra', ttlHeaders: false }, ministraTtlMs: TOKEN_LIFE_MS } });
const streams: OpenStream[] = [];

afterEach(() => {
  for (const s of streams.splice(0)) s.destroy();
});

const markerOf = (playlist: Buffer): string => /edge_session=([A-Za-z0-9_-]{22})/.exec(playlist.toString())![1]!;
const ONE_SHOT = /looks like it issues one-shot tokens/;
const oneShotLines = (edge: TestEdge): Record<string, unknown>[] => edge.logs.filter((l) => ONE_SHOT.test(String(l['msg'])));

/** A player: the playlist with a fresh token, then a segment every 100 ms for `ms`; the statuses it got. */
async function play(edge: TestEdge, token: string, ms: number, channel = 'ch1'): Promise<{ sid: string; statuses: number[] }> {
  const playlist = await httpRequest(`${edge.url}/play/${channel}/v1/index.m3u8?token=${token}`);
  expect(playlist.status).toBe(200);
  const sid = markerOf(playlist.body);
  const statuses: number[] = [];
  const until = Date.now() + ms;
  for (let i = 0; Date.now() < until; i++) {
    statuses.push((await httpRequest(`${edge.url}/play/${channel}/v1/seg-${i}.ts?edge_session=${sid}`)).status);
    await sleep(100);
  }
  return { sid, statuses };
}

describe('one-shot tokens through --backend-type http', () => {
  it('--recheck ttl (default): the first re-check sends the dead token and ends the session; logged once, with the fix', async () => {
    const { edge, mw } = await start({ auth: { allowTtl: '1500ms', staleGrace: '30s' } });
    const { sid, statuses } = await play(edge, mw.issueMinistraToken(), 2500);
    // Played until the re-check at 1.5 s came back 403, then refused for good.
    expect(statuses[0]).toBe(200);
    expect(statuses.at(-1)).toBe(403);
    expect(edge.app.sessions.store.get(sid)?.endReason).toBe('backend_403');
    expect(mw.requests).toHaveLength(2);

    const [line, ...more] = oneShotLines(edge);
    expect(more).toEqual([]);
    expect(line).toMatchObject({ level: 40, channel: 'ch1', reason: 'backend_403', allowTtlMs: 1500, recheck: 'ttl' });
    expect(String(line!['msg'])).toContain('Fix: --recheck never');
    expect(String(line!['msg'])).toContain('--backend-type stalker');
    expect(line!['allowedForMs']).toBeGreaterThanOrEqual(1500);
    expect(JSON.stringify(line)).not.toContain(sid);

    // A second viewer falls in the same trap: no second line.
    await play(edge, mw.issueMinistraToken(), 2000, 'ch2');
    expect(edge.app.sessions.table.size).toBe(0);
    expect(oneShotLines(edge)).toHaveLength(1);
  });

  it('--recheck never: the same middleware, the viewer plays past the TTL and the middleware is asked once', async () => {
    const { edge, mw } = await start({ auth: { allowTtl: '1500ms', staleGrace: '1s', recheck: 'never' } });
    const { sid, statuses } = await play(edge, mw.issueMinistraToken(), 3000);
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(mw.requests).toHaveLength(1);
    expect(edge.app.sessions.store.get(sid)?.endReason).toBeUndefined();
    expect(oneShotLines(edge)).toEqual([]);
  });

  it('--recheck never: an MPEG-TS connection plays past the TTL with no re-check call', async () => {
    const { edge, mw } = await start({ auth: { allowTtl: '1500ms', recheck: 'never' } });
    const stream = await openStream(`${edge.url}/play/news?token=${mw.issueMinistraToken()}`);
    streams.push(stream);
    expect(stream.status).toBe(200);
    await sleep(2000);
    const before = stream.received();
    await waitFor(() => stream.received() > before, { timeoutMs: 2000 });
    expect(stream.ended()).toBe(false);
    expect(mw.requests).toHaveLength(1);
  });

  it('--recheck never: kicks and per-user limits still apply', async () => {
    const { edge, mw } = await start({ auth: { allowTtl: '1s', recheck: 'never' } });
    mw.setBehavior({ kind: 'allow', headers: { 'X-UserId': 'u1', 'X-Max-Sessions': '1' } });
    const { sid } = await play(edge, 'first', 200);
    const second = await httpRequest(`${edge.url}/play/ch2/v1/index.m3u8?token=second`);
    expect(second.status).toBe(403);
    expect(JSON.parse(second.body.toString())).toMatchObject({ error: 'EDGE_ERR_SESSION_LIMIT' });
    expect(edge.app.sessions.kick(sid)).toBe(true);
    const kicked = await httpRequest(`${edge.url}/play/ch1/v1/seg-9.ts?edge_session=${sid}`);
    expect(kicked.status).toBe(403);
    expect(JSON.parse(kicked.body.toString())).toEqual({ error: 'EDGE_ERR_SESSION_ENDED', reason: 'kicked' });
  });

  it('--recheck never: a closed session is resumable for --stale-grace, not longer', async () => {
    const { edge, mw } = await start({ session: { idleTimeout: '400ms' }, auth: { allowTtl: '500ms', staleGrace: '1500ms', recheck: 'never' } });
    const { sid } = await play(edge, mw.issueMinistraToken(), 200);
    const session = edge.app.sessions.store.get(sid)!;
    // Idle: closed, but its decision is kept: the player comes back, past --allow-ttl, without asking the middleware.
    await waitFor(() => !session.active, { timeoutMs: 3000 });
    expect(Date.now() - session.decision!.decidedAt).toBeGreaterThan(500);
    expect((await httpRequest(`${edge.url}/play/ch1/v1/seg-5.ts?edge_session=${sid}`)).status).toBe(200);
    expect(session.active).toBe(true);
    await sleep(100);
    expect((await httpRequest(`${edge.url}/play/ch1/v1/seg-6.ts?edge_session=${sid}`)).status).toBe(200);
    expect(edge.logs.filter((l) => l['msg'] === 'session resumed')).toHaveLength(1);
    expect(mw.requests).toHaveLength(1);

    // Closed again and gone once --stale-grace has passed: the marker is unknown, the dead token is asked about.
    await waitFor(() => !session.active, { timeoutMs: 3000 });
    await waitFor(() => edge.app.sessions.store.get(sid) === undefined, { timeoutMs: 5000 });
    expect((await httpRequest(`${edge.url}/play/ch1/v1/seg-7.ts?edge_session=${sid}`)).status).toBe(403);
    expect(mw.requests).toHaveLength(2);
  });

  it('no warning when the middleware sent a TTL, or when the first re-check allows', async () => {
    const { edge, mw } = await start({ auth: { allowTtl: '1s' } });
    // X-AuthDuration: 1 s, and the token dies: a real decision at the re-check, not the trap.
    mw.setBehavior((rec) => (rec.rawQuery === 'token=ttl' && mw.requests.length > 1 ? 'deny' : { kind: 'allow', headers: { 'X-AuthDuration': '1' } }));
    const { statuses } = await play(edge, 'ttl', 1800);
    expect(statuses.at(-1)).toBe(403);
    mw.setBehavior('allow');
    await play(edge, 'fine', 1500, 'ch2');
    expect(mw.requests.length).toBeGreaterThanOrEqual(4);
    expect(oneShotLines(edge)).toEqual([]);
  });
});
