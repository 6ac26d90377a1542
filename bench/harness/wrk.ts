// wrk, the throughput load generator (one autocannon process tops out near 20k req/s on a core
// here, below nginx). A Lua done() prints the summary as one JSON line, so nothing is parsed
// from wrk's human output. The unique-token script makes every request a new session:
// token=ok-<nonce>-<thread>-<counter>, the nonce unique per run so no cache (edge or nginx)
// has seen the token before.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Children, Child } from './children.js';

const DONE_LUA = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_JSON {"requests":%d,"durationUs":%d,"bytes":%d,"connectErrors":%d,"readErrors":%d,"writeErrors":%d,"statusErrors":%d,"timeouts":%d,"p50Us":%d,"p90Us":%d,"p99Us":%d,"maxUs":%d,"meanUs":%.1f}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
`;

const UNIQUE_TOKEN_LUA = `
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local path, nonce
local counter = 0
init = function(args)
  path = args[1]
  nonce = args[2]
end
request = function()
  counter = counter + 1
  return wrk.format("GET", path .. "?token=ok-" .. nonce .. "-" .. tid .. "-" .. counter)
end
${DONE_LUA}`;

export interface WrkScripts {
  readonly plain: string;
  readonly uniqueToken: string;
}

export async function writeWrkScripts(dir: string): Promise<WrkScripts> {
  const plain = join(dir, 'wrk-done.lua');
  const uniqueToken = join(dir, 'wrk-unique-token.lua');
  await writeFile(plain, DONE_LUA);
  await writeFile(uniqueToken, UNIQUE_TOKEN_LUA);
  return { plain, uniqueToken };
}

export interface WrkResult {
  requests: number;
  durationUs: number;
  bytes: number;
  connectErrors: number;
  readErrors: number;
  writeErrors: number;
  /** Responses with status > 399. */
  statusErrors: number;
  timeouts: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  maxUs: number;
  meanUs: number;
}

export interface WrkRun {
  readonly child: Child;
  readonly result: Promise<WrkResult>;
}

export interface WrkOptions {
  readonly url: string;
  readonly threads: number;
  readonly connections: number;
  readonly durationS: number;
  readonly script: string;
  /** Arguments after `--`, for the script's init(). */
  readonly scriptArgs?: readonly string[];
}

export function startWrk(children: Children, o: WrkOptions): WrkRun {
  // wrk takes whole seconds only.
  const args = ['-t', String(o.threads), '-c', String(o.connections), '-d', `${Math.max(1, Math.round(o.durationS))}s`, '--timeout', '10s', '-s', o.script, o.url];
  if (o.scriptArgs !== undefined) args.push('--', ...o.scriptArgs);
  const child = children.spawn('wrk', 'wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const result = child.exited.then((code) => {
    void child.stop();
    const line = child.output().split('\n').find((l) => l.startsWith('WRK_JSON '));
    if (line === undefined) throw new Error(`wrk exited with ${code} and printed no summary:\n${child.output()}`);
    return JSON.parse(line.slice('WRK_JSON '.length)) as WrkResult;
  });
  return { child, result };
}
