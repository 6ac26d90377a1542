// Operator issue, part 4: an MPEG-TS reconnect that joined its session logged `session opened` a
// second time (and counted edge_sessions_opened_total again), and the close line summed both
// connections' duration and bytes. Now the reconnect logs `session resumed`
// (edge_sessions_resumed_total), and each close reports its own connection (`durationMs`, `bytes`)
// apart from the session's totals (`sessionDurationMs`, `sessionBytes`).
import { describe, expect, it } from 'vitest';
import { openStream } from '../helpers/client.js';
import { useStack } from '../helpers/stack.js';
import { sleep, waitFor } from '../helpers/wait.js';

const start = useStack();

describe('two MPEG-TS connections of one session', () => {
  it('the reconnect is `session resumed`, and each close line has its own connection\'s figures and the session\'s totals', async () => {
    const { edge, mw } = await start();
    const url = `${edge.url}/play/news?token=stb-1`;
    const headers = { 'user-agent': 'Enigma2' };

    const a = await openStream(url, { headers });
    await a.readAtLeast(64 * 1024);
    await sleep(300);
    a.destroy();
    const firstClose = await waitFor(() => edge.logs.find((l) => l['msg'] === 'session closed'), { timeoutMs: 3000 });

    const b = await openStream(url, { headers });
    await b.readAtLeast(32 * 1024);
    b.destroy();
    await waitFor(() => edge.logs.filter((l) => l['msg'] === 'session closed').length === 2, { timeoutMs: 3000 });
    const [, secondClose] = edge.logs.filter((l) => l['msg'] === 'session closed');

    // One session: asked once, opened once, resumed once.
    expect(mw.requests).toHaveLength(1);
    expect(edge.logs.filter((l) => l['msg'] === 'session opened')).toHaveLength(1);
    const resumed = edge.logs.filter((l) => l['msg'] === 'session resumed');
    expect(resumed).toHaveLength(1);
    expect(resumed[0]).toMatchObject({ session: firstClose['session'], channel: 'news', kind: 'mpegts', resumes: 1 });
    expect(await edge.metric('edge_sessions_opened_total')).toBe(1);
    expect(await edge.metric('edge_sessions_resumed_total')).toBe(1);
    expect(await edge.metric('edge_sessions_closed_total', { reason: 'disconnected' })).toBe(2);

    // The first close: its connection is the whole session so far.
    expect(firstClose).toMatchObject({ reason: 'disconnected', resumes: 0 });
    expect(firstClose['bytes']).toBe(firstClose['sessionBytes']);
    expect(firstClose['durationMs']).toBe(firstClose['sessionDurationMs']);
    expect(Number(firstClose['bytes'])).toBeGreaterThanOrEqual(64 * 1024);

    // The second close: its own connection, apart from the session's totals.
    const second = secondClose as Record<string, number>;
    expect(secondClose).toMatchObject({ session: firstClose['session'], reason: 'disconnected', resumes: 1 });
    expect(second['bytes']).toBeGreaterThanOrEqual(32 * 1024);
    expect(second['sessionBytes']).toBe(Number(firstClose['bytes']) + second['bytes']!);
    expect(second['durationMs']).toBeLessThan(second['sessionDurationMs']! - Number(firstClose['durationMs']) + 1);
    expect(second['sessionDurationMs']).toBeGreaterThanOrEqual(300);
  });
});
