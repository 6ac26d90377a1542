// The status page on the admin listener: the login flow (form, ?token= → HttpOnly SameSite=Strict
// cookie → 303 to /), the cookie as a credential for / and /api/*, the token kept out of the page
// and the logs, and the shapes of /api/overview and /api/timeseries after real traffic.
import { describe, expect, it } from 'vitest';
import { httpRequest, type HttpResult } from '../helpers/client.js';
import { useStack } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

const TOKEN = 'status-admin-token-0123456789';
const start = useStack({ origin: { segmentBytes: 4096 } });

const get = (url: string, headers: Record<string, string> = {}): Promise<HttpResult> => httpRequest(url, { headers });
const json = (res: HttpResult): Record<string, unknown> => JSON.parse(res.body.toString()) as Record<string, unknown>;

/** The login form: one password field named token, submitted with GET to `/`. */
function expectLoginForm(res: HttpResult): void {
  expect(res.status).toBe(401);
  expect(res.headers['content-type']).toMatch(/^text\/html/);
  const html = res.body.toString();
  expect(html).toMatch(/<form method="get" action="\/">/);
  expect(html.match(/<input /g)).toHaveLength(1);
  expect(html).toMatch(/<input [^>]*name="token"[^>]*type="password"/);
  expect(html).not.toContain(TOKEN);
}

describe('status page access (admin token set)', () => {
  it('/ without auth → 401 with the login form; a wrong ?token= → 401; the right one → 303 + cookie; the cookie opens / and /api/*', async () => {
    const { edge } = await start({ admin: { token: TOKEN } });
    expectLoginForm(await get(`${edge.adminUrl}/`));
    expect((await get(`${edge.adminUrl}/`)).body.toString()).not.toContain('That token is not right');

    const wrong = await get(`${edge.adminUrl}/?token=wrong-token-0123456789`);
    expectLoginForm(wrong);
    expect(wrong.body.toString()).toContain('That token is not right');
    expect(wrong.headers['set-cookie']).toBeUndefined();
    expectLoginForm(await get(`${edge.adminUrl}/?token=${encodeURIComponent(`${TOKEN}x`)}`));

    const login = await get(`${edge.adminUrl}/?token=${encodeURIComponent(TOKEN)}`);
    expect(login.status).toBe(303);
    expect(login.headers.location).toBe('/');
    const [setCookie, ...more] = login.headers['set-cookie'] ?? [];
    expect(more).toEqual([]);
    expect(setCookie).toMatch(/^edge_admin=[^;]+; /);
    const attributes = setCookie!.split(';').slice(1).map((a) => a.trim().toLowerCase());
    expect(attributes).toEqual(expect.arrayContaining(['httponly', 'samesite=strict', 'path=/']));
    const cookie = setCookie!.split(';')[0]!;

    const page = await get(`${edge.adminUrl}/`, { cookie });
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toContain("default-src 'none'");
    expect(page.headers['cache-control']).toBe('no-store');
    const html = page.body.toString();
    expect(html).toContain('<table');
    expect(html).not.toContain(TOKEN);
    expect(html).not.toMatch(/<(script|link)[^>]+src=|https?:\/\//); // self-contained: no external asset
    expect(page.body.length).toBeLessThan(25 * 1024);

    // The cookie among others, and the bearer token, both work; a wrong cookie does not.
    expect((await get(`${edge.adminUrl}/api/sessions`, { cookie: `theme=dark; ${cookie}` })).status).toBe(200);
    expect((await get(`${edge.adminUrl}/`, { authorization: `Bearer ${TOKEN}` })).status).toBe(200);
    expect((await get(`${edge.adminUrl}/api/sessions`, { cookie: 'edge_admin=wrong-token-0123456789' })).status).toBe(401);
    expectLoginForm(await get(`${edge.adminUrl}/`, { cookie: 'edge_admin=wrong-token-0123456789' }));
    expect((await get(`${edge.adminUrl}/api/overview`)).status).toBe(401);
    expect((await get(`${edge.adminUrl}/api/timeseries`)).status).toBe(401);

    expect(JSON.stringify(edge.logs)).not.toContain(TOKEN);
  });

  it('without an admin token (loopback) the page and the API are open', async () => {
    const { edge } = await start();
    const page = await get(`${edge.adminUrl}/`);
    expect(page.status).toBe(200);
    expect(page.body.toString()).toContain('<table');
    expect((await get(`${edge.adminUrl}/api/overview`)).status).toBe(200);
    expect((await httpRequest(`${edge.adminUrl}/`, { method: 'POST' })).status).toBe(405);
  });
});

describe('/api/overview and /api/timeseries', () => {
  it('after traffic: tiles, and a point per sample interval with rates, decisions and middleware figures', async () => {
    const { edge, mw } = await start({ admin: { token: TOKEN } });
    mw.setBehavior({ kind: 'allow', headers: { 'X-Session-Name': 'alice' } });
    const auth = { authorization: `Bearer ${TOKEN}` };
    const pl = await get(`${edge.url}/play/ch1/v1/index.m3u8?token=t1`);
    const sid = /edge_session=([A-Za-z0-9_-]{22})/.exec(pl.body.toString())![1]!;
    for (let i = 0; i < 4; i++) expect((await get(`${edge.url}/play/ch1/v1/seg-${i}.ts?edge_session=${sid}`)).status).toBe(200);

    const before = json(await get(`${edge.adminUrl}/api/overview`, auth));
    expect(before).toMatchObject({ sampleIntervalMs: 5000, sessions: { total: 1, hls: 1, mpegts: 0 } });

    // The sampler's first point comes one interval (5 s) after the edge started; on a slow machine
    // the traffic may straddle it, so wait until the window holds all of it.
    const overview = await waitFor(
      async () => {
        const body = json(await get(`${edge.adminUrl}/api/overview`, auth));
        return (body['window'] as { requests: number } | null)?.requests === 5 ? body : undefined;
      },
      { timeoutMs: 12_000, intervalMs: 200 },
    );
    expect(overview).toMatchObject({
      at: expect.any(String),
      sampleIntervalMs: 5000,
      sessions: { total: 1, hls: 1, mpegts: 0 },
      last: expect.any(Object),
      window: { requests: 5, middlewareCalls: 1, middlewareAnswered: 1, middlewareAvailability: 1, defaultAllows: 0 },
      totals: { requests: 5, decisions: expect.objectContaining({ backend: 1, cache: 4 }), middlewareCalls: 1, middlewareAnswered: 1, defaultAllows: 0 },
    });

    const series = json(await get(`${edge.adminUrl}/api/timeseries`, auth));
    expect(series).toMatchObject({ sampleIntervalMs: 5000, historyMs: 900_000, capacity: 180 });
    const points = series['points'] as Record<string, unknown>[];
    expect(points.length).toBeGreaterThanOrEqual(1);
    const num = expect.any(Number);
    for (const point of points) {
      expect(point).toEqual({
        t: num,
        seconds: expect.closeTo(5, 0),
        sessions: num,
        requests: num,
        requestsPerSec: num,
        bytesPerSec: num,
        decisionsPerSec: { cache: num, backend: num, coalesced: 0, rule: 0, default: 0 },
        middleware: { calls: num, answered: num, availability: expect.toBeOneOf([null, 1]), p50Ms: expect.toBeOneOf([null, num]), p99Ms: expect.toBeOneOf([null, num]) },
        defaultAllows: 0,
      });
      expect(Math.abs((point['t'] as number) - Date.now())).toBeLessThan(15_000);
    }
    expect(points.reduce((n, p) => n + (p['requests'] as number), 0)).toBe(5);
    expect(points.some((p) => (p['requestsPerSec'] as number) > 0 && (p['middleware'] as { p99Ms: number | null }).p99Ms !== null)).toBe(true);
    expect(points).toContainEqual(overview['last']);
    expect((overview['totals'] as { bytes: number }).bytes).toBeGreaterThanOrEqual(4 * 4096);
  });
});
