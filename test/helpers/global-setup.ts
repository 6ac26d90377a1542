// Vitest globalSetup: runs once per `vitest run`, before any worker starts. Generates (or reuses)
// the real HLS test channel and hands its directory to tests via `inject('mediaDir')`.

import type { TestProject } from 'vitest/node';
import { ensureTestMedia } from './media.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Directory holding index.m3u8 + seg-NNN.ts of the generated test channel. */
    mediaDir: string;
  }
}

export default async function setup(project: TestProject): Promise<void> {
  const media = await ensureTestMedia();
  project.provide('mediaDir', media.dir);
}
