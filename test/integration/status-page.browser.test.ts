// The status page in a real browser (Debian's Chromium driven by playwright-core): sign in with
// ?token=, see a test player's session in the table, filter, kick it with its button, and check
// the player is refused from then on. No console errors; a screenshot for a human to look at.
//
// CI installs /usr/bin/chromium (.ci/run); without it this file is skipped, saying so (under CI=true
// it fails instead: helpers/tools.ts).
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, launchChromium } from '../helpers/browser.js';
import { httpRequest, openStream, type OpenStream } from '../helpers/client.js';
import { injectSessions } from '../helpers/sessions.js';
import { useStack } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

const SCREENSHOT = fileURLToPath(new URL('../artifacts/status-page.png', import.meta.url));
const TOKEN = 'browser-admin-token-0123456789';
/** Playwright's waits: well inside the test's budget, so a miss reads as "row never appeared", not a timeout. */
const UI_TIMEOUT_MS = 6000;

/** A new page of `context` whose console errors and uncaught page errors land in `problems` (each test expects none). */
async function watchedPage(context: BrowserContext): Promise<{ page: Page; problems: string[] }> {
  const page = await context.newPage();
  page.setDefaultTimeout(UI_TIMEOUT_MS);
  const problems: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  return { page, problems };
}

const start = useStack({ origin: { segmentBytes: 48 * 1024 } });
const streams: OpenStream[] = [];
let browser: Browser | undefined;

beforeAll(async () => {
  if (CHROMIUM.skip) return;
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
});

afterEach(() => {
  for (const s of streams.splice(0)) s.destroy();
});

const markerOf = (playlist: Buffer): string => /edge_session=([A-Za-z0-9_-]{22})/.exec(playlist.toString())![1]!;

describe.skipIf(CHROMIUM.skip)(`status page in Chromium${CHROMIUM.note}`, () => {
  it('shows a playing session, kicks it with one click; the player gets 403 next; no console errors', async () => {
    const { edge, mw } = await start({ admin: { token: TOKEN } });
    mw.setBehavior({ kind: 'allow', headers: { 'X-Session-Name': 'alice' } });

    // Players: alice on HLS (playlist + a segment), a set-top box on an MPEG-TS stream that stays open.
    const pl = await httpRequest(`${edge.url}/play/ch7/v1/index.m3u8?token=alice-token`, { headers: { 'user-agent': 'VLC/3.0.20' } });
    expect(pl.status).toBe(200);
    const sid = markerOf(pl.body);
    expect((await httpRequest(`${edge.url}/play/ch7/v1/seg-1.ts?edge_session=${sid}`, { headers: { 'user-agent': 'VLC/3.0.20' } })).status).toBe(200);
    mw.setBehavior({ kind: 'allow', headers: { 'X-Session-Name': 'stb-0042' } });
    const ts = await openStream(`${edge.url}/play/news?token=stb-token`, { headers: { 'user-agent': 'Enigma2' } });
    streams.push(ts);
    await ts.readAtLeast(64 * 1024);

    const context = await browser!.newContext({ viewport: { width: 1200, height: 860 } });
    try {
      const { page, problems } = await watchedPage(context);

      // Sign in: the token goes into an HttpOnly cookie and out of the URL.
      await page.goto(`${edge.adminUrl}/?token=${encodeURIComponent(TOKEN)}`);
      expect(page.url()).toBe(`${edge.adminUrl}/`);
      const [cookie, ...others] = await context.cookies();
      expect(others).toEqual([]);
      expect(cookie).toMatchObject({ name: 'edge_admin', httpOnly: true, sameSite: 'Strict', path: '/' });
      expect(await page.evaluate(() => (globalThis as unknown as { document: { cookie: string } }).document.cookie)).toBe('');
      expect(await page.content()).not.toContain(TOKEN);

      const alice = page.locator(`tbody tr[data-id="${sid}"]`);
      await alice.waitFor({ state: 'visible' });
      const cells = await alice.locator('th, td').allInnerTexts();
      expect(cells.slice(0, 4)).toEqual(['ch7', 'alice', '127.0.0.1', 'HLS']);
      // Why she is in (the middleware and its answer, the sentence on hover), and when she is checked again.
      expect(cells[6]).toBe('backend http 200');
      expect(await alice.locator('td').nth(5).getAttribute('title')).toBe('allowed by the middleware http: it answered 200 (backend_200)');
      expect(cells[7]).toMatch(/^in \d+s$/);
      const stb = page.locator('tbody tr', { hasText: 'stb-0042' });
      await stb.waitFor({ state: 'visible' });
      expect(await stb.locator('td').nth(2).innerText()).toBe('MPEG-TS');

      // The filter matches channel or name.
      await page.getByLabel('Filter').fill('news');
      await alice.waitFor({ state: 'hidden' });
      expect(await stb.isVisible()).toBe(true);
      await page.getByLabel('Filter').fill('ALI');
      await alice.waitFor({ state: 'visible' });
      await stb.waitFor({ state: 'hidden' });
      await page.getByLabel('Filter').fill('');
      await stb.waitFor({ state: 'visible' });

      // One click on alice's Kick button (found by its accessible name) ends her session.
      await page.getByRole('button', { name: 'Kick alice on ch7' }).click();
      await alice.waitFor({ state: 'detached' });
      const next = await httpRequest(`${edge.url}/play/ch7/v1/seg-2.ts?edge_session=${sid}`);
      expect(next.status).toBe(403);
      expect(JSON.parse(next.body.toString())).toEqual({ error: 'EDGE_ERR_SESSION_ENDED', reason: 'kicked' });
      expect(await stb.isVisible()).toBe(true);
      expect(ts.ended()).toBe(false);

      // The tiles fill in once the edge has taken its first sample (5 s after it started).
      await page.locator('#t-rps').filter({ hasText: /\d/ }).waitFor({ timeout: 8000 });
      await waitFor(async () => (await page.locator('#status').innerText()).startsWith('Updated'), { timeoutMs: UI_TIMEOUT_MS });
      expect(await page.locator('#t-sessions').innerText()).toBe('1');

      await mkdir(fileURLToPath(new URL('.', `file://${SCREENSHOT}`)), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('pages through 130 sessions (100 per page, Next / Previous) and filters on the edge; asks only for the page it shows', async () => {
    const { edge } = await start({ session: { idleTimeout: '5m' } });
    const injected = injectSessions(edge.app, 130);
    const context = await browser!.newContext({ viewport: { width: 1200, height: 860 } });
    try {
      const { page, problems } = await watchedPage(context);
      const asked: URLSearchParams[] = [];
      page.on('request', (r) => {
        const u = new URL(r.url());
        if (u.pathname === '/api/sessions') asked.push(u.searchParams);
      });
      const rows = page.locator('tbody tr');
      const firstId = (): Promise<string | null> => rows.first().getAttribute('data-id');

      // No admin token: the page is open on loopback.
      await page.goto(`${edge.adminUrl}/`);
      await page.locator(`tbody tr[data-id="${injected[99]!.id}"]`).waitFor({ state: 'visible' });
      expect(await rows.count()).toBe(100);
      expect(await firstId()).toBe(injected[0]!.id);
      expect(await page.locator('#count').innerText()).toBe('130');
      expect(await page.locator('#range').innerText()).toBe('page 1 of 2');
      expect(await page.locator('#prev').isDisabled()).toBe(true);

      await page.getByRole('button', { name: 'Next' }).click();
      await page.locator(`tbody tr[data-id="${injected[129]!.id}"]`).waitFor({ state: 'visible' });
      await waitFor(async () => (await rows.count()) === 30, { timeoutMs: UI_TIMEOUT_MS });
      expect(await firstId()).toBe(injected[100]!.id);
      expect(await page.locator('#next').isDisabled()).toBe(true);
      expect(await page.locator('#range').innerText()).toBe('page 2 of 2');

      await page.getByRole('button', { name: 'Previous' }).click();
      await page.locator(`tbody tr[data-id="${injected[0]!.id}"]`).waitFor({ state: 'visible' });
      await waitFor(async () => (await rows.count()) === 100, { timeoutMs: UI_TIMEOUT_MS });

      // The filter is applied by the edge (q=): user12 and user120..user129, in order.
      await page.getByLabel('Filter').fill('USER12');
      await waitFor(async () => (await page.locator('#count').innerText()) === '11', { timeoutMs: UI_TIMEOUT_MS });
      await waitFor(async () => (await rows.count()) === 11, { timeoutMs: UI_TIMEOUT_MS });
      expect(await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-id')))).toEqual([12, ...Array.from({ length: 10 }, (_, i) => 120 + i)].map((i) => injected[i]!.id));

      expect(asked.length).toBeGreaterThan(0);
      expect(asked.every((q) => q.get('limit') === '100')).toBe(true);
      expect(asked.some((q) => q.get('q') === 'USER12')).toBe(true);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
