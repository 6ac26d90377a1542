// System tools some tests need beyond Node (operator issue, part 5: `npm test` must pass on a
// fresh machine as the README writes it). A missing tool:
// - outside CI: the tests that need it are skipped, their names say why, and globalSetup prints one
//   line per missing tool at the start of the run;
// - under CI (CI=true): those tests run and FAIL, naming the tool: CI never silently skips.
// `.ci/run` installs every tool listed here, then runs the same `npm test`.
import { accessSync, constants } from 'node:fs';
import { findBinary } from '../support/monitoring.js';

export interface ToolSpec {
  /** Command name, looked up on PATH unless `path` is given. */
  readonly name: string;
  /** A fixed location (Debian's Chromium: playwright-core drives /usr/bin/chromium, it never downloads a browser). */
  readonly path?: string;
  /** How to get it on Debian (the hint of the skip line). */
  readonly install: string;
  /** What cannot run without it. */
  readonly needs: string;
}

export const TOOLS = {
  chromium: { name: 'chromium', path: '/usr/bin/chromium', install: 'apt-get install chromium, or run .ci/run', needs: 'the browser tests (status page, CORS)' },
  ffmpeg: { name: 'ffmpeg', install: 'apt-get install ffmpeg, or run .ci/run', needs: 'the test media and the ffmpeg player tests' },
  ffprobe: { name: 'ffprobe', install: 'apt-get install ffmpeg, or run .ci/run', needs: 'the checks of the test media' },
  promtool: { name: 'promtool', install: "run .ci/run: it unpacks Debian's prometheus package without starting a server", needs: 'the alert rule and /metrics lint checks' },
  prometheus: { name: 'prometheus', install: "run .ci/run: it unpacks Debian's prometheus package without starting a server", needs: 'the real Prometheus scrape test' },
  nginx: { name: 'nginx', install: 'apt-get install nginx-light, or run .ci/run', needs: 'the load-balancer (fleet) tests' },
  systemdAnalyze: { name: 'systemd-analyze', install: 'apt-get install systemd, or run .ci/run', needs: 'the systemd unit check' },
  // Debian's redis-server package only adds a service on :6379 (and the redis-server link) to redis-tools' binary.
  redisServer: { name: 'redis-server', install: 'apt-get install redis-server, or run .ci/run (links redis-tools\' binary, starts no service)', needs: 'the fleet tests (a private Redis per test file)' },
} as const satisfies Record<string, ToolSpec>;

/** True when the CI variable is set to anything but empty, 0 or false (GitHub, GitLab and most CIs set CI=true). */
export function underCi(env: NodeJS.ProcessEnv = process.env): boolean {
  const value = env['CI'];
  return value !== undefined && value !== '' && value !== '0' && value.toLowerCase() !== 'false';
}

/** Where the tool is, or undefined. */
export function locateTool(spec: ToolSpec): string | undefined {
  if (spec.path === undefined) return findBinary(spec.name);
  try {
    accessSync(spec.path, constants.X_OK);
    return spec.path;
  } catch {
    return undefined;
  }
}

/** The one line that says what is missing and how to get it. */
export function missingLine(spec: ToolSpec): string {
  return `${spec.path ?? spec.name} not found (${spec.install})`;
}

export interface RequiredTool {
  /** For `describe.skipIf` / `it.skipIf`: the tool is missing and this is not CI. */
  readonly skip: boolean;
  /** Appended to the skipped tests' names: ` (skipped: … not found (…))`, or ''. */
  readonly note: string;
  /**
   * Absolute path. Reading it when the tool is missing throws the line that names it: that is how a
   * test fails under CI=true, where nothing is skipped (elsewhere the test is skipped first).
   */
  readonly path: string;
}

function required(found: string | undefined, why: string, env: NodeJS.ProcessEnv): RequiredTool {
  const skip = found === undefined && !underCi(env);
  return {
    skip,
    note: skip ? ` (skipped: ${why})` : '',
    get path(): string {
      if (found === undefined) throw new Error(`${why}: under CI=true nothing is skipped`);
      return found;
    },
  };
}

/** A tool a test needs: run with it, skip without it (outside CI), fail without it (under CI). */
export function requireTool(spec: ToolSpec, env: NodeJS.ProcessEnv = process.env): RequiredTool {
  return required(locateTool(spec), missingLine(spec), env);
}

/**
 * The generated test media (globalSetup's `mediaDir`): '' when it could not be made because ffmpeg
 * is missing outside CI (under CI globalSetup fails instead).
 */
export function requireMedia(mediaDir: string, env: NodeJS.ProcessEnv = process.env): RequiredTool {
  return required(mediaDir === '' ? undefined : mediaDir, `no test media: ${missingLine(TOOLS.ffmpeg)}`, env);
}
