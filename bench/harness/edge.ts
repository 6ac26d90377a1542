// The edge under test: the built bin (dist/main.js, `npm run build` first) in its own process on
// the SUT core, log level warn, listening on loopback, with the scenario's extra flags and
// environment (the glibc malloc A/B of scenario b).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Children, Child } from './children.js';
import { answers, waitFor } from './children.js';

/** glibc settings that keep freed memory instead of returning it at once (issue: Memory, item 4). */
export const MALLOC_ENV: Readonly<Record<string, string>> = {
  MALLOC_TRIM_THRESHOLD_: '536870912',
  MALLOC_TOP_PAD_: '67108864',
  MALLOC_MMAP_THRESHOLD_: '4194304',
};

export interface EdgeSpec {
  readonly root: string;
  readonly port: number;
  readonly adminPort: number;
  readonly upstream: string;
  readonly backend: string;
  /** Scenario-specific flags (scenarios.ts EDGE_FLAGS), appended last so they win. */
  readonly extraFlags: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
}

export interface RunningEdge {
  readonly url: string;
  readonly adminUrl: string;
  readonly child: Child;
  readonly argv: readonly string[];
}

export function edgeArgv(spec: EdgeSpec): string[] {
  return [
    join(spec.root, 'dist/main.js'),
    '--listen', `127.0.0.1:${spec.port}`,
    '--admin-listen', `127.0.0.1:${spec.adminPort}`,
    '--upstream', spec.upstream,
    '--backend', spec.backend,
    '--log-level', 'warn',
    ...spec.extraFlags,
  ];
}

export async function startEdge(children: Children, name: string, spec: EdgeSpec, prefix: readonly string[]): Promise<RunningEdge> {
  const main = join(spec.root, 'dist/main.js');
  if (!existsSync(main)) throw new Error(`${main} is missing: run \`npm run build\` first (npm run bench does)`);
  const argv = edgeArgv(spec);
  const cmd = [...prefix, process.execPath, ...argv];
  const child = children.spawn(name, cmd[0]!, cmd.slice(1), { cwd: spec.root, env: { ...process.env, ...spec.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const adminUrl = `http://127.0.0.1:${spec.adminPort}`;
  await waitFor(`edge ${name}`, () => answers(`${adminUrl}/readyz`, 200), 15_000, child);
  return { url: `http://127.0.0.1:${spec.port}`, adminUrl, child, argv };
}
