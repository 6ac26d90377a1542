// A real Prometheus server (127.0.0.1, its own port and temp data dir) scrapes a real edge and
// loads deploy/prometheus/alerts.yaml; every query of the Grafana dashboard and the alerts runs
// on it. promtool lints the edge's /metrics. Both tools come from .ci/run.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { httpRequest } from '../helpers/client.js';
import { startTestMiddleware } from '../helpers/middleware.js';
import { startTestOrigin } from '../helpers/origin.js';
import { unusedPort } from '../helpers/ports.js';
import { useStack } from '../helpers/stack.js';
import { TOOLS, requireTool } from '../helpers/tools.js';
import { waitFor } from '../helpers/wait.js';
import {
  ALERTS_FILE,
  dashboardExprs,
  grafanaToPromql,
  promqlMetricNames,
  readAlertRules,
  readDashboard,
  runCommand,
} from '../support/monitoring.js';

const prometheusBin = requireTool(TOOLS.prometheus);
const promtool = requireTool(TOOLS.promtool);
const BIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

const start = useStack();
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Stops a child: SIGTERM, then SIGKILL if it is still there after 5 s. */
function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}


interface PromVector {
  status: string;
  error?: string;
  data: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
}

interface RunningPrometheus {
  readonly url: string;
  query(promql: string): Promise<PromVector>;
  readonly output: () => string;
}

/** A Prometheus server on 127.0.0.1 scraping `targets` every second, with the edge's alert rules. */
async function startPrometheus(targets: readonly string[]): Promise<RunningPrometheus> {
  const dir = await mkdtemp(join(tmpdir(), 'edge-prometheus-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const config = [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    '  evaluation_interval: 1s',
    'rule_files:',
    `  - ${JSON.stringify(ALERTS_FILE)}`,
    'scrape_configs:',
    '  - job_name: astra-auth-edge',
    '    metrics_path: /metrics',
    '    static_configs:',
    `      - targets: ${JSON.stringify(targets)}`,
    '',
  ].join('\n');
  await writeFile(join(dir, 'prometheus.yml'), config);
  // A port found free can be taken before Prometheus binds it: try a few.
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await unusedPort();
    const url = `http://127.0.0.1:${port}`;
    const child = spawn(
      prometheusBin.path,
      [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, `data-${attempt}`)}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
    cleanups.push(() => stopChild(child));
    const ready = await waitFor(
      async () => {
        if (child.exitCode !== null) return 'exited';
        const res = await httpRequest(`${url}/-/ready`, { timeoutMs: 1000 });
        return res.status === 200 ? 'ready' : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200, message: `prometheus ready (output: ${output})` },
    );
    if (ready === 'exited') {
      if (attempt === 3) throw new Error(`prometheus exited: ${output}`);
      continue;
    }
    return {
      url,
      output: () => output,
      async query(promql) {
        const res = await httpRequest(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`, { timeoutMs: 5000 });
        return JSON.parse(res.body.toString()) as PromVector;
      },
    };
  }
  throw new Error('unreachable');
}

/** A single-sample value of an instant query, or undefined when the result is empty. */
function scalarOf(v: PromVector): number | undefined {
  if (v.status !== 'success') throw new Error(`query failed: ${v.error}`);
  const first = v.data.result[0];
  return first === undefined ? undefined : Number(first.value[1]);
}

/** Every metric name the dashboard and the alerts read. */
function referencedMetrics(): string[] {
  const exprs = [...dashboardExprs(readDashboard()).map((e) => e.expr), ...readAlertRules().map((r) => r.expr)];
  return [...new Set(exprs.flatMap((e) => promqlMetricNames(e)))].sort();
}

/** Metric names a /metrics text declares (# TYPE), with a histogram's _bucket, _sum and _count. */
function exportedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m as unknown as [string, string, string];
    names.add(name);
    if (type === 'histogram' || type === 'summary') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
  }
  return names;
}

async function playSome(edgeUrl: string): Promise<void> {
  for (const token of ['t1', 't2', 't3']) {
    const playlist = await httpRequest(`${edgeUrl}/play/ch1/index.m3u8?token=${token}`);
    expect(playlist.status).toBe(200);
  }
  expect((await httpRequest(`${edgeUrl}/play/ch1/v1/seg-1.ts?token=t1`)).status).toBe(200);
}

describe('Prometheus scrapes the edge', () => {
  it.skipIf(prometheusBin.skip)(`a real Prometheus server sees the edge up, its decisions, and runs every dashboard and alert query${prometheusBin.note}`, async () => {
    const { edge } = await start();
    await playSome(edge.url);
    const decisions = await edge.metric('edge_auth_decisions_total');
    expect(decisions).toBeGreaterThan(0);

    const target = new URL(edge.adminUrl).host;
    const prom = await startPrometheus([target]);

    const up = await waitFor(async () => scalarOf(await prom.query(`up{job="astra-auth-edge",instance="${target}"}`)) === 1, {
      timeoutMs: 30_000,
      intervalMs: 250,
      message: `up == 1 for ${target} (prometheus output: ${prom.output()})`,
    });
    expect(up).toBe(true);
    // No request since: Prometheus holds exactly the edge's count.
    const scraped = await waitFor(async () => scalarOf(await prom.query('sum(edge_auth_decisions_total{job="astra-auth-edge"})')), { timeoutMs: 30_000, intervalMs: 250 });
    expect(scraped).toBe(decisions);

    // Every metric the dashboard and the alerts read is exported (histograms as _bucket etc.).
    // From the # TYPE lines: a labelled series the edge has not touched yet has no sample.
    const exported = exportedNames((await httpRequest(`${edge.adminUrl}/metrics`)).body.toString());
    const missing = referencedMetrics().filter((n) => n !== 'up' && !/^(?:nodejs|process)_/.test(n) && !exported.has(n));
    expect(missing, 'metrics the dashboard or alerts use that the edge does not export').toEqual([]);

    // The alert rules loaded into the real server and evaluate without errors.
    const rules = await waitFor(
      async () => {
        const res = await httpRequest(`${prom.url}/api/v1/rules`, { timeoutMs: 5000 });
        const body = JSON.parse(res.body.toString()) as { data: { groups: { rules: { name: string; health: string; lastError?: string }[] }[] } };
        const all = body.data.groups.flatMap((g) => g.rules);
        return all.length > 0 && all.every((r) => r.health !== 'unknown') ? all : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250, message: 'alert rules evaluated' },
    );
    expect(rules.map((r) => r.name).sort()).toEqual(readAlertRules().map((r) => r.alert).sort());
    expect(rules.filter((r) => r.health !== 'ok')).toEqual([]);

    // Every dashboard query (Grafana variables filled in) and alert expression is valid PromQL here.
    const queries = [...dashboardExprs(readDashboard()).map((e) => ({ what: e.title, promql: grafanaToPromql(e.expr) })), ...readAlertRules().map((r) => ({ what: r.alert, promql: r.expr }))];
    for (const { what, promql } of queries) {
      const v = await prom.query(promql);
      expect(v.status, `${what}: ${promql}: ${v.error ?? ''}`).toBe('success');
    }
    // And the panels over the edge's own series have data (the process panels need the bin: below).
    const requests = await prom.query(grafanaToPromql('sum by (kind, code) (edge_requests_total{job=~"$job", instance=~"$instance"})'));
    expect(requests.data.result.map((r) => `${r.metric['kind']} ${r.metric['code']}`)).toEqual(expect.arrayContaining(['playlist 2xx', 'segment 2xx']));
  });
});

/** promtool check metrics: exit code and the problems it printed, one per line. */
async function lint(text: string): Promise<{ code: number | null; problems: string[] }> {
  const r = await runCommand(promtool.path, ['check', 'metrics'], { stdin: text });
  const problems = `${r.stdout}\n${r.stderr}`.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  return { code: r.code, problems };
}

describe('promtool check metrics', () => {
  it.skipIf(promtool.skip)(`accepts the edge's /metrics as it is after traffic${promtool.note}`, async () => {
    const { edge } = await start();
    await playSome(edge.url);
    const res = await httpRequest(`${edge.adminUrl}/metrics`);
    expect(res.status).toBe(200);
    const text = res.body.toString();
    expect(text).toContain('edge_auth_decisions_total{');
    const { code, problems } = await lint(text);
    expect(problems).toEqual([]);
    expect(code).toBe(0);
  });

  it.skipIf(promtool.skip)(`the bin's whole /metrics, Node process metrics included, passes with no finding at all${promtool.note}`, async () => {
    // Regression: prom-client's nodejs_active_{handles,requests,resources}_total gauges made
    // promtool exit 3 on the bin's /metrics (the in-process test edges run without process metrics).
    const origin = await startTestOrigin();
    const mw = await startTestMiddleware();
    cleanups.push(() => origin.close(), () => mw.close());
    const child = spawn(process.execPath, [BIN, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--upstream', origin.url, '--backend', `${mw.url}/auth`, '--log-level', 'info'], {
      env: { PATH: process.env['PATH'] ?? '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    cleanups.push(() => stopChild(child));
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const started = await waitFor(() => /"url":"(http:\/\/127\.0\.0\.1:\d+)","adminUrl":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(stdout), {
      timeoutMs: 15_000,
      intervalMs: 50,
      message: `the bin (${BIN}; built by npm run build) logs its URLs (stderr: ${stderr})`,
    });
    const [, url, adminUrl] = started as unknown as [string, string, string];
    // Traffic first, so every labelled family (requests, decisions, upstream, gc) has samples.
    await playSome(url);
    expect(mw.requests.length).toBe(3);
    const res = await httpRequest(`${adminUrl}/metrics`);
    expect(res.status).toBe(200);
    const text = res.body.toString();
    for (const name of ['nodejs_eventloop_lag_seconds', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_heap_size_used_bytes', 'process_resident_memory_bytes', 'process_cpu_seconds_total', 'process_open_fds']) {
      expect(text, `${name} (used by the dashboard)`).toMatch(new RegExp(`^${name} `, 'm'));
    }
    // The per-type gauges stay; their sums (the dropped *_total gauges) are `sum without (type) (...)`.
    for (const name of ['nodejs_active_handles', 'nodejs_active_resources']) expect(text).toMatch(new RegExp(`^${name}\\{type="[A-Za-z]+"\\} \\d+$`, 'm'));
    expect(text).not.toMatch(/^# TYPE nodejs_active_\w+_total /m);
    const { code, problems } = await lint(text);
    expect(problems).toEqual([]);
    expect(code).toBe(0);
  });
});
