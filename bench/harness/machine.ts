// The machine and the pinning plan: the system under test (SUT) alone on one core, everything
// else (this process, the load generators, the origin, the middleware) on the other cores.
// With a single usable core nothing is pinned, and the output says so.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { allowedCpus, parseCpuList } from './proc.js';

export interface Pinning {
  /** False when fewer than 2 cores are usable: nothing is pinned. */
  readonly enabled: boolean;
  /** The SUT's core(s). */
  readonly sutCores: readonly number[];
  /** Everyone else's cores. */
  readonly loadCores: readonly number[];
  /** Prefix for spawning the SUT (`taskset -c N`), empty when not pinned. */
  sutPrefix(): string[];
  describe(): string;
}

export function planPinning(): Pinning {
  const cpus = parseCpuList(allowedCpus(process.pid) ?? `0-${os.availableParallelism() - 1}`);
  const hasTaskset = existsSync('/usr/bin/taskset') || existsSync('/bin/taskset');
  const enabled = cpus.length >= 2 && hasTaskset;
  const sutCores = enabled ? [cpus[cpus.length - 1]!] : cpus;
  const loadCores = enabled ? cpus.slice(0, -1) : cpus;
  return {
    enabled,
    sutCores,
    loadCores,
    sutPrefix: () => (enabled ? ['taskset', '-c', sutCores.join(',')] : []),
    describe: () =>
      enabled
        ? `pinned with taskset: system under test alone on core ${sutCores.join(',')}; load generator, origin, middleware, viewers and this process on core ${loadCores.join(',')}`
        : `NOT pinned (${cpus.length} usable core${cpus.length === 1 ? '' : 's'}${hasTaskset ? '' : ', no taskset'}): everything shares the CPU, ratios are compressed`,
  };
}

/** Moves this process (all its threads) to the load cores; children inherit it. */
export function pinSelf(pinning: Pinning): void {
  if (!pinning.enabled) return;
  execFileSync('taskset', ['-a', '-p', '-c', pinning.loadCores.join(','), String(process.pid)], { stdio: 'ignore' });
}

/** First line a tool prints about its version (nginx -v and wrk -v print to stderr; wrk exits 1). */
function firstLine(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 5_000 });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n')[0]!.trim();
}

export interface MachineInfo {
  cpuModel: string;
  cpus: number;
  memGiB: number;
  kernel: string;
  node: string;
  nginx: string;
  wrk: string;
}

export function machineInfo(): MachineInfo {
  const cpuinfo = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
  const model = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  return {
    cpuModel: model.trim(),
    cpus: os.cpus().length,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    nginx: firstLine('nginx', ['-v']).replace(/^nginx version:\s*/, ''),
    wrk: firstLine('wrk', ['-v']).split(' [')[0]!,
  };
}
