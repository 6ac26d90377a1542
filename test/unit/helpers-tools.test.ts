// test/helpers/tools.ts (operator issue, part 5): a missing system tool skips the tests that need it
// with a line that says what and how to get it, except under CI=true, where they run and fail
// naming the tool.
import { describe, expect, it } from 'vitest';
import { TOOLS, locateTool, requireMedia, requireTool, underCi } from '../helpers/tools.js';

const ABSENT = { name: 'edge-test-no-such-tool', install: 'apt-get install nothing, or run .ci/run', needs: 'nothing' };
const AT_PATH = { name: 'node', path: process.execPath, install: '-', needs: '-' };

describe('underCi', () => {
  it.each([
    [{ CI: 'true' }, true],
    [{ CI: '1' }, true],
    [{ CI: 'false' }, false],
    [{ CI: '0' }, false],
    [{ CI: '' }, false],
    [{}, false],
  ])('%j → %s', (env, expected) => {
    expect(underCi(env)).toBe(expected);
  });
});

describe('requireTool', () => {
  it('finds a tool on PATH or at its fixed path', () => {
    expect(locateTool(AT_PATH)).toBe(process.execPath);
    const tool = requireTool(AT_PATH, {});
    expect(tool).toMatchObject({ skip: false, note: '' });
    expect(tool.path).toBe(process.execPath);
    expect(requireTool({ ...ABSENT, name: 'node', path: undefined }, {}).skip).toBe(false); // on PATH
  });

  it('outside CI: skipped, and the name says what is missing and how to get it', () => {
    const tool = requireTool(ABSENT, {});
    expect(tool.skip).toBe(true);
    expect(tool.note).toBe(' (skipped: edge-test-no-such-tool not found (apt-get install nothing, or run .ci/run))');
    expect(() => tool.path).toThrow(/edge-test-no-such-tool not found/);
    expect(requireTool({ ...TOOLS.chromium, path: '/nonexistent/chromium' }, {}).note).toBe(' (skipped: /nonexistent/chromium not found (apt-get install chromium, or run .ci/run))');
  });

  it('under CI=true: not skipped; the test fails at the tool, naming it', () => {
    const tool = requireTool(ABSENT, { CI: 'true' });
    expect(tool).toMatchObject({ skip: false, note: '' });
    expect(() => tool.path).toThrow('edge-test-no-such-tool not found (apt-get install nothing, or run .ci/run): under CI=true nothing is skipped');
  });

  it('requireMedia: no media (ffmpeg missing outside CI) skips, naming ffmpeg', () => {
    expect(requireMedia('', {}).note).toBe(' (skipped: no test media: ffmpeg not found (apt-get install ffmpeg, or run .ci/run))');
    expect(requireMedia('/media', {}).path).toBe('/media');
    expect(() => requireMedia('', { CI: 'true' }).path).toThrow(/no test media/);
  });
});
