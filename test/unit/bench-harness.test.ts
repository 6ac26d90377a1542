// The bench harness's pure parts (bench/harness/): the nginx configs it generates (checked by
// `nginx -t` where nginx is installed), the live playlist, CPU lists, medians and the ratios
// taken from interleaved rounds. The bench itself is run by `npm run bench`, not by the tests.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mediaPlaylist, SEGMENT_BYTES } from '../../bench/harness/fixtures.js';
import { nginxConf, type NginxSpec } from '../../bench/harness/nginx.js';
import { parseCpuList } from '../../bench/harness/proc.js';
import { median, throughputRatios } from '../../bench/harness/report.js';
import { EDGE_FLAGS, THROUGHPUT } from '../../bench/harness/scenarios.js';
import type { ThroughputResult, ThroughputRun } from '../../bench/harness/throughput.js';

const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));

function spec(role: NginxSpec['role'], dir: string): NginxSpec {
  return { role, dir, port: 18080, root: join(dir, 'www'), liveLog: join(dir, 'live.log'), origin: '127.0.0.1:18081', middleware: '127.0.0.1:18082' };
}

describe('bench nginx configs', () => {
  it('N1 caches the auth subrequest per token and nothing else; N2 also caches media with a lock', () => {
    const n1 = nginxConf(spec('N1', '/x'));
    const n2 = nginxConf(spec('N2', '/x'));
    expect(n1).toContain('auth_request /__auth;');
    expect(n1).toContain('proxy_cache_key $auth_token;');
    expect(n1).toContain('proxy_cache_valid 200 60s;');
    expect(n1).toContain('proxy_cache_valid 403 10s;');
    expect(n1).toContain('proxy_pass http://middleware/auth?$auth_args;');
    expect(n1).not.toContain('proxy_cache media;');
    expect(n2.match(/proxy_cache media;/g)).toHaveLength(2);
    expect(n2).toContain('proxy_cache_valid 200 1s;');
    expect(n2).toContain('proxy_cache_valid 200 30s;');
    expect(n2.match(/proxy_cache_lock on;/g)?.length).toBeGreaterThanOrEqual(3);
  });

  it.skipIf(NGINX === undefined)('every generated config passes nginx -t', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bench-conf-'));
    try {
      for (const role of ['origin', 'N1', 'N2'] as const) {
        const d = join(dir, role);
        await mkdir(join(d, 'tmp'), { recursive: true });
        await mkdir(join(d, 'cache'), { recursive: true });
        await mkdir(join(d, 'www'), { recursive: true });
        await writeFile(join(d, 'nginx.conf'), nginxConf(spec(role, d)));
        execFileSync(NGINX!, ['-t', '-q', '-p', d, '-c', join(d, 'nginx.conf')], { stdio: 'pipe' });
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('bench fixtures and scenarios', () => {
  it('a live playlist has 6 segments from the media sequence on, no ENDLIST', () => {
    const text = mediaPlaylist(1000, 4);
    expect(text).toContain('#EXT-X-MEDIA-SEQUENCE:1000');
    expect(text).toContain('#EXT-X-TARGETDURATION:4');
    expect(text.match(/^seg-\d+\.ts$/gm)).toEqual(['seg-1000.ts', 'seg-1001.ts', 'seg-1002.ts', 'seg-1003.ts', 'seg-1004.ts', 'seg-1005.ts']);
    expect(text).not.toContain('ENDLIST');
    expect(SEGMENT_BYTES % 188).toBe(0);
    expect(SEGMENT_BYTES).toBeGreaterThanOrEqual(1024 * 1024);
  });

  it('every scenario has an EDGE_FLAGS entry, and (c) expects 403 from the proxies only', () => {
    expect(Object.keys(EDGE_FLAGS).sort()).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
    expect(THROUGHPUT.c.expectedStatus('edge')).toBe(403);
    expect(THROUGHPUT.c.expectedStatus('N1')).toBe(403);
    expect(THROUGHPUT.c.expectedStatus('direct')).toBe(200);
  });
});

describe('bench arithmetic', () => {
  it('parses kernel CPU lists', () => {
    expect(parseCpuList('0-1')).toEqual([0, 1]);
    expect(parseCpuList('0,2-3')).toEqual([0, 2, 3]);
    expect(parseCpuList('1')).toEqual([1]);
  });

  it('medians', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
    expect(median([])).toBeNaN();
  });

  it('ratios are medians of valid runs, with per-round ratios from the same round', () => {
    const run = (target: ThroughputRun['target'], round: number, reqPerSec: number, valid = true): ThroughputRun =>
      ({ target, round, reqPerSec, mbPerSec: reqPerSec / 1000, valid, cpuUsPerReq: 1e6 / reqPerSec }) as ThroughputRun;
    const result = {
      kind: 'throughput',
      id: 'a',
      targets: ['N1', 'edge', 'direct'],
      runs: [run('N1', 1, 100), run('edge', 1, 50), run('direct', 1, 200), run('N1', 2, 200), run('edge', 2, 80), run('direct', 2, 400), run('edge', 3, 1, false)],
    } as unknown as ThroughputResult;
    const edgeN1 = throughputRatios(result).find((r) => r.num === 'edge' && r.den === 'N1')!;
    expect(edgeN1.value).toBeCloseTo(65 / 150);
    expect(edgeN1.perRound).toEqual([0.5, 0.4]);
    expect(throughputRatios(result).find((r) => r.den === 'direct')!.value).toBeCloseTo(65 / 300);
  });

  it('a variant of the edge (edge+redis, edge+malloc) is compared with the plain edge first, the plain edge never with itself', () => {
    const run = (target: ThroughputRun['target'], round: number, reqPerSec: number): ThroughputRun =>
      ({ target, round, reqPerSec, mbPerSec: reqPerSec / 1000, valid: true, cpuUsPerReq: 1e6 / reqPerSec }) as ThroughputRun;
    const result = {
      kind: 'throughput',
      id: 'd',
      targets: ['N1', 'edge', 'edge+redis'],
      runs: [run('N1', 1, 100), run('edge', 1, 80), run('edge+redis', 1, 56), run('N1', 2, 100), run('edge', 2, 100), run('edge+redis', 2, 75)],
    } as unknown as ThroughputResult;
    const ratios = throughputRatios(result).map((r) => `${r.num}/${r.den}`);
    expect(ratios).toEqual(['edge/N1', 'edge+redis/edge', 'edge+redis/N1']);
    const redis = throughputRatios(result).find((r) => r.num === 'edge+redis' && r.den === 'edge')!;
    expect(redis.perRound).toEqual([0.7, 0.75]);
    expect(THROUGHPUT.d.targets).toContain('edge+redis');
  });
});
