// Every process the bench starts, in one registry, so that all of them are killed on every way out:
// normal end, an error, Ctrl-C (SIGINT), SIGTERM, SIGHUP. Each child gets its own process group
// (detached), so killing the group also takes nginx's workers, which outlive a killed master.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';

const STOP_GRACE_MS = 3_000;

export interface Child {
  readonly name: string;
  readonly pid: number;
  readonly proc: ChildProcess;
  /** Everything the child wrote to stdout and stderr, capped (for error messages and result lines). */
  output(): string;
  /** Resolves with the exit code (or null when killed) once the child has exited. */
  readonly exited: Promise<number | null>;
  stop(): Promise<void>;
}

const OUTPUT_CAP = 256 * 1024;

export class Children {
  private readonly all = new Set<Child>();
  private readonly exitHooks: (() => void)[] = [];
  private installed = false;

  /**
   * `nice`: the priority of every child. With autogroup scheduling (Linux's default for desktop
   * and VM kernels) each session is scheduled as a group and a process's own nice value only
   * counts inside its session, so a detached child (its own session) also gets its session's
   * nice set (/proc/<pid>/autogroup).
   */
  constructor(private readonly nice = 0) {}

  /** Installs the exit/signal handlers once (the first spawn does it). */
  private install(): void {
    if (this.installed) return;
    this.installed = true;
    process.on('exit', () => this.killAllNow());
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.on(sig, () => {
        process.stderr.write(`\nbench: ${sig}, stopping ${this.all.size} child process(es)\n`);
        this.killAllNow();
        process.exit(130);
      });
    }
  }

  spawn(name: string, cmd: string, args: string[], options: SpawnOptions = {}): Child {
    this.install();
    const proc = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...options, detached: true });
    if (proc.pid === undefined) throw new Error(`could not start ${name} (${cmd})`);
    let out = '';
    const keep = (c: Buffer): void => {
      if (out.length < OUTPUT_CAP) out += c.toString();
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    const pid = proc.pid;
    if (this.nice !== 0) setAutogroupNice(pid, this.nice);
    const child: Child = {
      name,
      pid,
      proc,
      output: () => out,
      exited,
      stop: async () => {
        if (proc.exitCode !== null || proc.signalCode !== null) {
          this.all.delete(child);
          return;
        }
        killGroup(pid, 'SIGTERM');
        const timer = setTimeout(() => killGroup(pid, 'SIGKILL'), STOP_GRACE_MS);
        await exited;
        clearTimeout(timer);
        killGroup(pid, 'SIGKILL'); // leftovers of the group (nginx workers) if the leader went first
        this.all.delete(child);
      },
    };
    this.all.add(child);
    return child;
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.all].map((c) => c.stop()));
  }

  /** A synchronous cleanup (e.g. removing the temp directory) run after the children are killed on exit. */
  atExit(hook: () => void): void {
    this.install();
    this.exitHooks.push(hook);
  }

  /** Synchronous last resort (process 'exit' and signals): SIGKILL to every group we started. */
  killAllNow(): void {
    for (const c of this.all) killGroup(c.pid, 'SIGKILL');
    this.all.clear();
    for (const hook of this.exitHooks.splice(0)) {
      try {
        hook();
      } catch {
        // best effort on the way out
      }
    }
  }
}

/** Sets the nice value of `pid`'s autogroup (its session), where the kernel has autogroups; best effort. */
export function setAutogroupNice(pid: number | 'self', nice: number): boolean {
  const file = `/proc/${pid}/autogroup`;
  if (!existsSync(file)) return false;
  try {
    writeFileSync(file, String(nice));
    return true;
  } catch {
    return false;
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** Waits until `probe` resolves true, polling every 100 ms, at most `timeoutMs`. */
export async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs = 15_000, child?: Child): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child !== undefined && child.proc.exitCode !== null) throw new Error(`${what}: ${child.name} exited with ${child.proc.exitCode}\n${child.output()}`);
    if (await probe().catch(() => false)) return;
    await sleep(100);
  }
  throw new Error(`${what}: not ready after ${timeoutMs} ms${child === undefined ? '' : `\n${child.output()}`}`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** True when GET `url` answers with `status` (any status when omitted). Loopback only. */
export async function answers(url: string, status?: number): Promise<boolean> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
  await res.arrayBuffer();
  return status === undefined || res.status === status;
}
