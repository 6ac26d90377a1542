// Vitest globalSetup: runs once per `vitest run`, before any worker starts. Generates (or reuses)
// the real HLS test channel and hands its directory to tests via `inject('mediaDir')`, and says at
// the start of the run which system tools are missing and what is skipped for it (tools.ts).

import type { TestProject } from 'vitest/node';
import { ensureTestMedia } from './media.js';
import { TOOLS, locateTool, missingLine, underCi } from './tools.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /**
     * Directory holding index.m3u8 + seg-NNN.ts of the generated test channel; '' when ffmpeg is
     * missing outside CI (the tests that need media skip: tools.ts requireMedia).
     */
    mediaDir: string;
  }
}

export default async function setup(project: TestProject): Promise<void> {
  const ci = underCi();
  const missing = Object.values(TOOLS).filter((spec) => locateTool(spec) === undefined);
  if (missing.length > 0) {
    const head = ci
      ? 'CI=true and tools are missing: the tests that need them will FAIL (.ci/run installs them all):'
      : 'npm test skips what this machine lacks the tools for (.ci/run installs them all; under CI=true these tests fail instead):';
    process.stderr.write(`\n${head}\n${missing.map((spec) => `  ${ci ? 'missing' : 'skipped'}: ${spec.needs}: ${missingLine(spec)}\n`).join('')}\n`);
  }
  try {
    const media = await ensureTestMedia();
    project.provide('mediaDir', media.dir);
  } catch (err) {
    // Outside CI, no ffmpeg means no media: the tests that need it skip (named above). CI fails here.
    if (ci || locateTool(TOOLS.ffmpeg) !== undefined) throw err;
    project.provide('mediaDir', '');
  }
}
