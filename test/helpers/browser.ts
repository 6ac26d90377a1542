// Debian's Chromium driven by playwright-core (it never downloads a browser), for the browser tests:
// the status page and CORS. Missing Chromium: skipped outside CI, failed under CI=true (tools.ts).
import { chromium, type Browser } from 'playwright-core';
import { TOOLS, requireTool } from './tools.js';

export const CHROMIUM = requireTool(TOOLS.chromium);

/** Headless, no sandbox (containers), nothing that talks to the internet on its own. */
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM.path, args: CHROMIUM_ARGS, timeout: 15_000 });
}
