// What the kernel says about processes and cores, read from /proc without spawning anything:
// CPU time and RSS of a process tree (a server and everything it forked: nginx's master and
// workers), the CPUs a process may run on, and per-core busy time from /proc/stat.
import { readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

/** Clock ticks per second for /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

interface StatLine {
  ppid: number;
  /** utime + stime, seconds. */
  cpuS: number;
}

function readStat(pid: number): StatLine | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: fields start after the last ')'.
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // rest[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
    return { ppid: Number(rest[1]), cpuS: (Number(rest[11]) + Number(rest[12])) / CLK_TCK };
  } catch {
    return undefined;
  }
}

/** `pid` and all its descendants (scans /proc once). */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    const p = Number(name);
    if (!Number.isInteger(p) || p <= 0) continue;
    const st = readStat(p);
    if (st === undefined) continue;
    const list = children.get(st.ppid);
    if (list === undefined) children.set(st.ppid, [p]);
    else list.push(p);
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0 && out.length < 1_000) {
    const p = queue.shift()!;
    out.push(p);
    queue.push(...(children.get(p) ?? []));
  }
  return out;
}

/** CPU seconds (user + system, all threads) used so far by the given processes. */
export function cpuSeconds(pids: readonly number[]): number {
  let total = 0;
  for (const p of pids) total += readStat(p)?.cpuS ?? 0;
  return total;
}

function statusField(pid: number, field: string): string | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const line = text.split('\n').find((l) => l.startsWith(`${field}:`));
    return line?.slice(field.length + 1).trim();
  } catch {
    return undefined;
  }
}

/** Resident set size in bytes, summed over the processes (shared pages count once per process). */
export function rssBytes(pids: readonly number[]): number {
  let total = 0;
  for (const p of pids) {
    const v = statusField(p, 'VmRSS');
    if (v !== undefined) total += Number(v.split(/\s+/)[0]) * 1024;
  }
  return total;
}

/** The CPUs a process may run on, as the kernel's list (e.g. "1" or "0-1"): what `taskset -p` prints. */
export function allowedCpus(pid: number): string | undefined {
  return statusField(pid, 'Cpus_allowed_list');
}

/** Expands "0-1,3" into [0, 1, 3]. */
export function parseCpuList(list: string): number[] {
  const out: number[] = [];
  for (const part of list.split(',')) {
    const [a, b] = part.split('-').map(Number);
    if (a === undefined || Number.isNaN(a)) continue;
    for (let c = a; c <= (b ?? a); c++) out.push(c);
  }
  return out;
}

/** Cumulative busy and total jiffies per core, from /proc/stat. */
export type CoreTimes = Map<number, { busy: number; total: number }>;

export function coreTimes(): CoreTimes {
  const out: CoreTimes = new Map();
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (m === null) continue;
    // user nice system idle iowait irq softirq steal ...: idle and iowait are the free time; steal
    // (the hypervisor ran someone else) counts as busy: the core was not ours to use.
    const v = m[2]!.split(/\s+/).slice(0, 8).map(Number);
    const total = v.reduce((a, b) => a + b, 0);
    out.set(Number(m[1]), { busy: total - v[3]! - v[4]!, total });
  }
  return out;
}

/** Busy fraction (0..1) of each of `cores` between two snapshots. */
export function coreBusy(before: CoreTimes, after: CoreTimes, cores: readonly number[]): number[] {
  return cores.map((c) => {
    const a = before.get(c);
    const b = after.get(c);
    if (a === undefined || b === undefined || b.total === a.total) return 0;
    return (b.busy - a.busy) / (b.total - a.total);
  });
}

export function loadAverage(): [number, number, number] {
  const [a, b, c] = readFileSync('/proc/loadavg', 'utf8').split(' ').map(Number);
  return [a ?? 0, b ?? 0, c ?? 0];
}
