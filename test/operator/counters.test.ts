// Operator issue, part 4: counters that tell the truth. During an outage under the default action,
// requests served on the stored default-action decision were counted as source="cache", so
// edge_auth_decisions_total{source="default"} stayed 0 while edge_auth_failure_mode_allowed_total
// was 5 (it counted decisions, the other requests). Now both count requests, and every request
// served on a default-action decision is source="default": the two agree by definition.
// A 30-s outage compressed: --allow-ttl 1 s, --unavailable-ttl 200 ms.
import { describe, expect, it } from 'vitest';
import { httpRequest } from '../helpers/client.js';
import type { TestEdge } from '../helpers/edge.js';
import { useStack } from '../helpers/stack.js';
import { sleep, waitFor } from '../helpers/wait.js';

const start = useStack({ origin: { segmentBytes: 4096 } });
const markerOf = (playlist: Buffer): string => /edge_session=([A-Za-z0-9_-]{22})/.exec(playlist.toString())![1]!;

async function decisions(edge: TestEdge, source: string): Promise<number> {
  return edge.metric('edge_auth_decisions_total', { result: 'allow', source });
}

describe.each(['allow', 'keep-granted'] as const)('an outage under --default-action %s', (defaultAction) => {
  it('every request served on the default action counts once as source="default", and failure_mode_allowed counts the same requests', async () => {
    const { edge, mw } = await start({ auth: { defaultAction, allowTtl: '1s', unavailableTtl: '200ms', staleGrace: '30s' } });
    const playlist = await httpRequest(`${edge.url}/play/ch1/v1/index.m3u8?token=viewer`);
    expect(playlist.status).toBe(200);
    const sid = markerOf(playlist.body);
    mw.setBehavior({ kind: '5xx', status: 503 });
    await sleep(1100); // the allow expires during the outage

    // The first request finds the expired middleware allow (served while re-checking: a cache hit of a
    // middleware answer); the re-check fails, and from then on the default action serves the viewer.
    const first = await httpRequest(`${edge.url}/play/ch1/v1/seg-0.ts?edge_session=${sid}`);
    expect(first.status).toBe(200);
    await waitFor(() => edge.app.sessions.store.get(sid)?.decision?.source === 'default', { timeoutMs: 2000 });
    const before = { cache: await decisions(edge, 'cache'), backend: await decisions(edge, 'backend') };
    const n = 12;
    for (let i = 1; i <= n; i++) {
      expect((await httpRequest(`${edge.url}/play/ch1/v1/seg-${i}.ts?edge_session=${sid}`)).status).toBe(200);
      await sleep(50); // spans several --unavailable-ttl periods: stored defaults and fresh ones
    }
    expect(mw.requests.length).toBeGreaterThanOrEqual(3); // asked again every --unavailable-ttl

    expect(await decisions(edge, 'default')).toBe(n);
    expect(await edge.metric('edge_auth_failure_mode_allowed_total')).toBe(n);
    expect(await decisions(edge, 'cache')).toBe(before.cache);
    expect(await decisions(edge, 'backend')).toBe(before.backend);
    // One request, one decision: every request of the session is counted exactly once.
    const counted = await edge.metric('edge_auth_decisions_total');
    expect(counted).toBe(n + 2); // + the playlist and the first segment

    // The middleware comes back: the next re-check is a real answer, and the viewer is a cache hit again.
    mw.setBehavior('allow');
    await sleep(250);
    await httpRequest(`${edge.url}/play/ch1/v1/seg-20.ts?edge_session=${sid}`);
    await waitFor(() => edge.app.sessions.store.get(sid)?.decision?.source === 'backend', { timeoutMs: 2000 });
    await httpRequest(`${edge.url}/play/ch1/v1/seg-21.ts?edge_session=${sid}`);
    expect(await edge.metric('edge_auth_failure_mode_allowed_total')).toBe(await decisions(edge, 'default'));
    expect(await decisions(edge, 'cache')).toBe(before.cache + 1);
  });
});

it('no middleware configured: the default action is source="default" but no outage', async () => {
  const { edge } = await start({ backend: { url: null } });
  for (let i = 0; i < 3; i++) expect((await httpRequest(`${edge.url}/play/ch1/v1/seg-${i}.ts?token=t`)).status).toBe(200);
  expect(await decisions(edge, 'default')).toBe(3);
  expect(await edge.metric('edge_auth_failure_mode_allowed_total')).toBe(0);
});
