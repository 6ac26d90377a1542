// Signed session markers (session.secret): any edge sharing the secret serves a session another
// edge opened, without asking the middleware again; a tampered, foreign-channel or expired
// marker gets no pass; the previous secret is accepted during its overlap.
import { afterEach, describe, expect, it } from 'vitest';
import { httpRequest } from '../helpers/client.js';
import { startEdge, type TestEdge } from '../helpers/edge.js';
import { startTestMiddleware, type TestMiddleware } from '../helpers/middleware.js';
import { playlistUris } from '../helpers/player.js';
import { startTestOrigin, type TestOrigin } from '../helpers/origin.js';

const SECRET = 'fleet-secret-0123456789abcdef';
const closers: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c.close();
});

async function fleet(edges: Record<string, unknown>[], ttlHeaders = true): Promise<{ origin: TestOrigin; mw: TestMiddleware; edges: TestEdge[] }> {
  const origin = await startTestOrigin();
  // A Ministra-like portal; without its X-AuthDuration the edge's own allowTtl applies.
  const mw = await startTestMiddleware({ behavior: { kind: 'ministra', ttlHeaders }, ministraTtlMs: 60_000 });
  closers.push(origin, mw);
  const started: TestEdge[] = [];
  for (const extra of edges) {
    const e = await startEdge({ upstream: { url: origin.url }, backend: { type: 'stalker', url: `${mw.url}/stalker_portal/` }, ...extra });
    closers.push(e);
    started.push(e);
  }
  return { origin, mw, edges: started };
}

/** The marker of the session a playlist was rendered for. */
function markerOf(body: Buffer, base: string): string {
  const uri = playlistUris(body.toString(), base).find((u) => u.includes('edge_session='))!;
  return new URL(uri).searchParams.get('edge_session')!;
}

describe('signed session markers', () => {
  it('a marker issued by edge A plays on edge B (same secret, no store) without a middleware call; B re-signs nothing it did not decide', async () => {
    const { mw, edges } = await fleet([{ session: { secret: SECRET } }, { session: { secret: SECRET } }]);
    const [a, b] = edges as [TestEdge, TestEdge];
    const token = mw.issueMinistraToken({ userId: 7 });
    const first = await httpRequest(`${a.url}/play/ch1/v1/index.m3u8?token=${token}`);
    expect(first.status).toBe(200);
    const marker = markerOf(first.body, `${a.url}/play/ch1/v1/index.m3u8`);
    expect(marker.length).toBeGreaterThan(22);
    // The next requests go to B (a round-robin balancer).
    for (const path of ['v1/seg-1.ts', 'v1/index.m3u8', 'v1/seg-2.ts']) {
      const res = await httpRequest(`${b.url}/play/ch1/${path}?edge_session=${marker}`);
      expect(res.status, path).toBe(200);
    }
    expect(mw.requests).toHaveLength(1);
    expect(await b.metric('edge_sessions_adopted_total')).toBe(1);
    // B knows the session by the same ID, with its user, and shows why.
    const id = String(mw.requests[0]!.headers['x-session-id'] ?? '');
    const onB = [...b.app.sessions.table.values()][0]!;
    expect(onB.decision?.source).toBe('marker');
    expect(onB.decision?.userId).toBe('7');
    if (id !== '') expect(onB.id).toBe(id);
  });

  it('a tampered marker, one for another channel, or one signed with another secret is no pass: the middleware decides', async () => {
    const { mw, edges } = await fleet([{ session: { secret: SECRET } }, { session: { secret: SECRET } }, { session: { secret: 'another-secret-0123456789' } }]);
    const [a, b, other] = edges as [TestEdge, TestEdge, TestEdge];
    const token = mw.issueMinistraToken();
    const marker = markerOf((await httpRequest(`${a.url}/play/ch1/v1/index.m3u8?token=${token}`)).body, `${a.url}/play/ch1/v1/index.m3u8`);
    const bytes = Buffer.from(marker, 'base64url');
    bytes[30]! ^= 1;
    const tampered = bytes.toString('base64url');
    // Each is a new session without a token: refused (stalker needs one), never the marker's session.
    expect((await httpRequest(`${b.url}/play/ch1/v1/seg-1.ts?edge_session=${tampered}`)).status).toBe(403);
    expect((await httpRequest(`${b.url}/play/ch2/v1/seg-1.ts?edge_session=${marker}`)).status).toBe(403);
    expect((await httpRequest(`${other.url}/play/ch1/v1/seg-1.ts?edge_session=${marker}`)).status).toBe(403);
    expect(await b.metric('edge_sessions_adopted_total')).toBe(0);
    expect(await other.metric('edge_sessions_adopted_total')).toBe(0);
  });

  it('past its expiry and the stale grace a marker is no pass; within the grace it plays and is re-checked with the original token', async () => {
    // Markers carry whole seconds: the expiry is 1-2 s after the allow, the grace 2 s more.
    const { mw, edges } = await fleet([{ session: { secret: SECRET }, auth: { allowTtl: '1s', staleGrace: '2s' } }, { session: { secret: SECRET }, auth: { allowTtl: '1s', staleGrace: '2s' } }], false);
    const [a, b] = edges as [TestEdge, TestEdge];
    const token = mw.issueMinistraToken();
    const marker = markerOf((await httpRequest(`${a.url}/play/ch1/v1/index.m3u8?token=${token}`)).body, `${a.url}/play/ch1/v1/index.m3u8`);
    await new Promise((r) => setTimeout(r, 2100));
    // Expired, within the grace: served, and B re-checks with the original query (the token is still alive here).
    expect((await httpRequest(`${b.url}/play/ch1/v1/seg-1.ts?edge_session=${marker}`)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 200));
    expect(mw.requests).toHaveLength(2);
    expect(mw.requests[1]!.rawQuery).toBe(`token=${token}`);
    await new Promise((r) => setTimeout(r, 2100));
    const calls = mw.requests.length;
    // Past expiry + grace on an edge that never held it: a new session (no token: denied).
    const third = (edges as TestEdge[])[0]!;
    await third.close();
    const late = await startEdge({ upstream: { url: (await startTestOrigin().then((o) => (closers.push(o), o))).url }, backend: { type: 'stalker', url: `${mw.url}/stalker_portal/` }, session: { secret: SECRET }, auth: { allowTtl: '1s', staleGrace: '2s' } });
    closers.push(late);
    expect((await httpRequest(`${late.url}/play/ch1/v1/seg-1.ts?edge_session=${marker}`)).status).toBe(403);
    expect(await late.metric('edge_sessions_adopted_total')).toBe(0);
    expect(mw.requests.length).toBeLessThanOrEqual(calls + 1);
  });

  it('secret rotation: markers of the previous secret are accepted during the overlap only', async () => {
    const { mw, edges } = await fleet([
      { session: { secret: 'old-secret-0123456789abcdef' } },
      { session: { secret: SECRET, previousSecret: 'old-secret-0123456789abcdef', secretOverlap: '1h' } },
      { session: { secret: SECRET, previousSecret: 'old-secret-0123456789abcdef', secretOverlap: '0s' } },
    ]);
    const [old, rotated, expired] = edges as [TestEdge, TestEdge, TestEdge];
    const marker = markerOf((await httpRequest(`${old.url}/play/ch1/v1/index.m3u8?token=${mw.issueMinistraToken()}`)).body, `${old.url}/play/ch1/v1/index.m3u8`);
    expect((await httpRequest(`${rotated.url}/play/ch1/v1/seg-1.ts?edge_session=${marker}`)).status).toBe(200);
    expect((await httpRequest(`${expired.url}/play/ch1/v1/seg-1.ts?edge_session=${marker}`)).status).toBe(403);
  });

  it('config: a secret shorter than 16 characters is refused, naming the setting and not echoing it', async () => {
    await expect(startEdge({ session: { secret: 'short-secret' } })).rejects.toThrow(/session\.secret.*too short \(12 characters\)/);
    await expect(startEdge({ session: { secret: 'short-secret' } })).rejects.not.toThrow(/short-secret/);
  });
});
