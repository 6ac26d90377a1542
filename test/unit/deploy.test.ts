// deploy/: the systemd unit, the Kubernetes manifests, the Dockerfile, the Prometheus alerts and
// the Grafana dashboard are checked here against the edge itself (its config loader, its drain
// time) and, where the tools exist, with systemd-analyze and promtool. Fast: no server starts.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { buildConfig } from '../../src/config/load.js';
import { TOOLS, requireTool } from '../helpers/tools.js';
import {
  ALERTS_FILE,
  ALERTS_TEST_FILE,
  DEPLOY_DIR,
  dashboardExprs,
  histogramBase,
  promqlMetricNames,
  readAlertRules,
  readDashboard,
  runCommand,
} from '../support/monitoring.js';

/** Longest stop of an edge with this config after SIGTERM: shutdown grace + drain timeout. */
function stopSeconds(config: { shutdown: { graceMs: number; drainTimeoutMs: number } }): number {
  return (config.shutdown.graceMs + config.shutdown.drainTimeoutMs) / 1000;
}
const UNIT_FILE = join(DEPLOY_DIR, 'astra-auth-edge.service');
const K8S_DIR = join(DEPLOY_DIR, 'kubernetes');

// ---------------------------------------------------------------------------------------------
// Metric names the dashboard and the alerts may use.
const EDGE_METRICS = [
  'edge_requests_total',
  'edge_request_duration_seconds',
  'edge_auth_decisions_total',
  'edge_auth_duration_seconds',
  'edge_auth_backend_requests_total',
  'edge_auth_backend_duration_seconds',
  'edge_auth_failure_mode_allowed_total',
  'edge_sessions_active',
  'edge_sessions_opened_total',
  'edge_sessions_closed_total',
  'edge_decision_store_entries',
  'edge_decision_store_evictions_total',
  'edge_upstream_requests_total',
  'edge_upstream_duration_seconds',
  'edge_bytes_sent_total',
  'edge_store_up',
  'edge_store_errors_total',
  'edge_store_latency_seconds',
] as const;
const HISTOGRAMS = new Set<string>(['edge_request_duration_seconds', 'edge_auth_duration_seconds', 'edge_auth_backend_duration_seconds', 'edge_upstream_duration_seconds', 'edge_store_latency_seconds']);
const KNOWN = new Set<string>([...EDGE_METRICS, 'up', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']);

function knownMetric(name: string): boolean {
  if (KNOWN.has(name) && !HISTOGRAMS.has(name)) return true;
  const base = histogramBase(name);
  if (base !== undefined && HISTOGRAMS.has(base)) return true;
  return /^(?:nodejs|process)_[a-z0-9_]+$/.test(name);
}

// ---------------------------------------------------------------------------------------------
// systemd

/** `Key=value` lines of one section; repeated keys keep every value. */
function unitSection(text: string, section: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header !== null) {
      current = header[1]!;
      continue;
    }
    if (current !== section) continue;
    const eq = line.indexOf('=');
    const key = line.slice(0, eq).trim();
    out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return out;
}

function seconds(value: string): number {
  const m = /^(\d+)(ms|s|min|m)?$/.exec(value);
  if (m === null) throw new Error(`cannot read duration ${value}`);
  const n = Number(m[1]);
  return m[2] === 'ms' ? n / 1000 : m[2] === 'min' || m[2] === 'm' ? n * 60 : n;
}

const systemdAnalyze = requireTool(TOOLS.systemdAnalyze);

/** `systemd-analyze verify` on a copy of the unit (same name, in a temp dir); its complaints about that unit. */
async function verifyUnit(text: string): Promise<{ code: number | null; complaints: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'edge-unit-'));
  try {
    const file = join(dir, 'astra-auth-edge.service');
    // verify checks that ExecStart's binary exists; on a machine whose node is elsewhere, point it there.
    await writeFile(file, existsSync('/usr/bin/node') ? text : text.replaceAll('/usr/bin/node', process.execPath));
    const r = await runCommand(systemdAnalyze.path, ['verify', file], { timeoutMs: 15_000 });
    // Warnings (unknown keys, bad values) go to stderr with exit code 0; other units' noise is ignored.
    const complaints = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => l.includes('astra-auth-edge'));
    return { code: r.code, complaints };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('deploy/astra-auth-edge.service', () => {
  const text = readFileSync(UNIT_FILE, 'utf8');
  const service = unitSection(text, 'Service');
  const one = (key: string): string | undefined => service.get(key)?.at(-1);

  it('runs the built edge with the config file, reloads on SIGHUP, stops on SIGTERM', () => {
    expect(one('ExecStart')).toBe('/usr/bin/node /opt/astra-auth-edge/dist/main.js --config /etc/astra-auth-edge/edge.yaml');
    expect(one('ExecReload')).toBe('/bin/kill -HUP $MAINPID');
    expect(one('KillSignal')).toBe('SIGTERM');
    expect(one('Restart')).toBe('on-failure');
    expect(one('LimitNOFILE')).toBe('65536');
    // The unit runs whatever edge.yaml says; the defaults (0 s grace + 30 s drain) are what it is sized for.
    const defaults = stopSeconds(buildConfig({}));
    expect(defaults).toBeGreaterThanOrEqual(30);
    expect(seconds(one('TimeoutStopSec') ?? '0'), 'TimeoutStopSec must outlast grace + drain').toBeGreaterThan(defaults);
  });

  it('is hardened: dynamic user, no capabilities, read-only system, no MemoryDenyWriteExecute (V8 JIT)', () => {
    const expected: Record<string, string> = {
      DynamicUser: 'yes',
      NoNewPrivileges: 'yes',
      ProtectSystem: 'strict',
      ProtectHome: 'yes',
      PrivateTmp: 'yes',
      PrivateDevices: 'yes',
      ProtectKernelTunables: 'yes',
      ProtectKernelModules: 'yes',
      ProtectKernelLogs: 'yes',
      ProtectControlGroups: 'yes',
      RestrictAddressFamilies: 'AF_INET AF_INET6 AF_UNIX',
      RestrictNamespaces: 'yes',
      LockPersonality: 'yes',
      SystemCallFilter: '@system-service',
      CapabilityBoundingSet: '',
    };
    for (const [key, value] of Object.entries(expected)) expect(one(key), key).toBe(value);
    // Off on purpose: V8 maps JIT code writable then executable; the comment says so.
    expect(service.has('MemoryDenyWriteExecute')).toBe(false);
    expect(text).toMatch(/#\s*MemoryDenyWriteExecute=yes is deliberately NOT set: V8/);
    expect(text).toMatch(/^#CapabilityBoundingSet=CAP_NET_BIND_SERVICE$/m);
  });

  it.skipIf(systemdAnalyze.skip)(
    `systemd-analyze verify accepts it${systemdAnalyze.note}`,
    async () => {
      const good = await verifyUnit(text);
      expect(good.complaints).toEqual([]);
      expect(good.code).toBe(0);
      // The check can fail: a misspelt directive is reported (exit code 0, so stderr is what counts).
      const bad = await verifyUnit(text.replace('ProtectHome=yes', 'ProtectHomer=yes'));
      expect(bad.complaints.join('\n')).toMatch(/Unknown key.*ProtectHomer/);
    },
  );
});

// ---------------------------------------------------------------------------------------------
// Every YAML document under deploy/

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return yamlFiles(path);
    return /\.ya?ml$/.test(e.name) ? [path] : [];
  });
}

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

/* eslint-disable @typescript-eslint/no-explicit-any -- manifests are walked as plain YAML trees */
/** Objects by kind, then by name (`get(kind)`: the only one, or the one named `name`). */
function k8sObjects(): { kinds(): string[]; all(): any[]; get(kind: string, name?: string): any } {
  const byKind = new Map<string, Map<string, any>>();
  for (const file of yamlFiles(K8S_DIR)) {
    for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
      const obj = doc.toJS() as (K8sObject & { metadata: { name: string } }) | null;
      if (obj === null) continue;
      const named = byKind.get(obj.kind) ?? new Map<string, any>();
      expect(named.has(obj.metadata.name), `one ${obj.kind} ${obj.metadata.name} only`).toBe(false);
      named.set(obj.metadata.name, obj);
      byKind.set(obj.kind, named);
    }
  }
  return {
    kinds: () => [...byKind.keys()],
    all: () => [...byKind.values()].flatMap((m) => [...m.values()]),
    get(kind, name) {
      const named = byKind.get(kind);
      if (name !== undefined) return named?.get(name);
      expect(named?.size, `one ${kind}`).toBe(1);
      return [...named!.values()][0];
    },
  };
}

describe('deploy/**/*.yaml', () => {
  it('every YAML document parses', () => {
    const files = yamlFiles(DEPLOY_DIR);
    expect(files.map((f) => relative(DEPLOY_DIR, f)).sort()).toEqual(
      expect.arrayContaining(['edge.example.yaml', 'kubernetes/configmap.yaml', 'kubernetes/deployment.yaml', 'kubernetes/podmonitor.yaml', 'kubernetes/secret.example.yaml', 'kubernetes/service.yaml', 'prometheus/alerts.yaml']),
    );
    for (const file of files) {
      for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
        expect(doc.errors.map((e) => `${basename(file)}: ${e.message}`)).toEqual([]);
        expect(doc.warnings.map((e) => `${basename(file)}: ${e.message}`)).toEqual([]);
      }
    }
  });

  it('every Kubernetes object has apiVersion, kind and metadata.name', () => {
    const objects = k8sObjects();
    expect(objects.kinds().sort()).toEqual(['ConfigMap', 'Deployment', 'PodMonitor', 'Secret', 'Service']);
    for (const obj of objects.all()) {
      expect(obj.apiVersion, obj.kind).toMatch(/^(?:v1|apps\/v1|monitoring\.coreos\.com\/v1)$/);
      expect(obj.metadata?.name, obj.kind).toMatch(obj.kind === 'Secret' ? /^astra-auth-edge-(?:admin|fleet)$/ : /^astra-auth-edge$/);
    }
    expect(objects.get('PodMonitor').apiVersion).toBe('monitoring.coreos.com/v1');
    expect(objects.get('Deployment').apiVersion).toBe('apps/v1');
  });
});

describe('deploy/kubernetes', () => {
  const objects = k8sObjects();
  const deployment = objects.get('Deployment');
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0];
  const configMap = objects.get('ConfigMap');
  const secret = objects.get('Secret', 'astra-auth-edge-admin');
  const fleetSecret = objects.get('Secret', 'astra-auth-edge-fleet');
  const port = (name: string): number => (container.ports as { name: string; containerPort: number }[]).find((p) => p.name === name)!.containerPort;
  const configPath = (container.args as string[])[(container.args as string[]).indexOf('--config') + 1]!;
  const edgeYaml = (): unknown => parseYaml(configMap.data[basename(configPath)] as string);

  it('Deployment: a fleet of 3 replicas of a non-root, read-only container with resources', () => {
    expect(deployment.spec.replicas).toBe(3);
    expect(deployment.spec.selector.matchLabels).toEqual(deployment.spec.template.metadata.labels);
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
    expect(pod.containers).toHaveLength(1);
    expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(container.resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    expect(container.resources.limits.memory).toEqual(expect.any(String));
  });

  it('probes: liveness GET /healthz and readiness GET /readyz on the admin port 9901', () => {
    expect(port('admin')).toBe(9901);
    for (const [probe, path] of [['livenessProbe', '/healthz'], ['readinessProbe', '/readyz']] as const) {
      const get = container[probe].httpGet;
      expect(get.path, probe).toBe(path);
      expect(get.port === 'admin' || get.port === 9901, `${probe} port ${get.port}`).toBe(true);
      expect(get.httpHeaders, `${probe}: the probes must work without the admin token`).toBeUndefined();
    }
  });

  it('shutdown: preStop sleep, then a grace period longer than preStop + the drain', () => {
    const command = container.lifecycle.preStop.exec.command as string[];
    expect(command[0]).toBe('sleep');
    const preStop = Number(command[1]);
    expect(preStop).toBeGreaterThanOrEqual(5);
    const config = buildConfig({ file: edgeYaml(), env: { EDGE_ADMIN_TOKEN: secret.stringData.token as string } });
    expect(config.shutdown.drainTimeoutMs).toBeGreaterThanOrEqual(30_000);
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(preStop + stopSeconds(config));
  });

  it('EDGE_ADMIN_TOKEN comes from the example Secret; the config is the ConfigMap at --config', () => {
    const env = (container.env as { name: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[]).find((e) => e.name === 'EDGE_ADMIN_TOKEN');
    expect(env?.valueFrom?.secretKeyRef).toEqual({ name: secret.metadata.name, key: 'token' });
    expect(typeof secret.stringData.token).toBe('string');
    const volume = (pod.volumes as { name: string; configMap?: { name: string } }[]).find((v) => v.configMap?.name === configMap.metadata.name);
    expect(volume).toBeDefined();
    const mount = (container.volumeMounts as { name: string; mountPath: string }[]).find((m) => m.name === volume!.name);
    expect(join(mount!.mountPath, basename(configPath))).toBe(configPath);
    expect(configPath).toBe('/etc/astra-auth-edge/edge.yaml');
  });

  it('the fleet: the session secret and the Redis URL from the fleet Secret, the node name from the pod', () => {
    const env = container.env as { name: string; valueFrom?: { secretKeyRef?: { name: string; key: string }; fieldRef?: { fieldPath: string } } }[];
    expect(env.find((e) => e.name === 'EDGE_SESSION_SECRET')?.valueFrom?.secretKeyRef).toEqual({ name: 'astra-auth-edge-fleet', key: 'session-secret' });
    expect(env.find((e) => e.name === 'EDGE_STORE')?.valueFrom?.secretKeyRef).toEqual({ name: 'astra-auth-edge-fleet', key: 'store-url' });
    expect(env.find((e) => e.name === 'EDGE_NODE_NAME')?.valueFrom?.fieldRef).toEqual({ fieldPath: 'metadata.name' });
    const config = buildConfig({
      file: edgeYaml(),
      env: { EDGE_ADMIN_TOKEN: secret.stringData.token as string, EDGE_SESSION_SECRET: fleetSecret.stringData['session-secret'] as string, EDGE_STORE: fleetSecret.stringData['store-url'] as string, EDGE_NODE_NAME: 'astra-auth-edge-7d9f-x2' },
    });
    expect(config.session.secret).toBe(fleetSecret.stringData['session-secret']);
    expect(config.store.url).toBe(fleetSecret.stringData['store-url']);
    expect(config.node.name).toBe('astra-auth-edge-7d9f-x2');
  });

  it("the ConfigMap's edge.yaml passes the edge's own validation, with the Secret's token", () => {
    const token = secret.stringData.token as string;
    const config = buildConfig({ file: edgeYaml(), fileName: 'configmap.yaml edge.yaml', env: { EDGE_ADMIN_TOKEN: token } });
    expect(config.admin.listen).toEqual({ host: '0.0.0.0', port: port('admin') });
    expect(config.listen.port).toBe(port('http'));
    // The admin listener is reachable from the kubelet, so the edge refuses it without a token.
    expect(() => buildConfig({ file: edgeYaml(), fileName: 'configmap.yaml edge.yaml', env: {} })).toThrow(/admin/);
  });

  it('the Service selects the pods and targets the http port; the PodMonitor scrapes admin /metrics', () => {
    const podLabels = deployment.spec.template.metadata.labels as Record<string, string>;
    const service = objects.get('Service');
    expect(podLabels).toMatchObject(service.spec.selector);
    expect(service.spec.ports.map((p: { targetPort: unknown }) => p.targetPort)).toEqual(['http']);
    const monitor = objects.get('PodMonitor');
    expect(podLabels).toMatchObject(monitor.spec.selector.matchLabels);
    expect(monitor.spec.podMetricsEndpoints).toEqual([expect.objectContaining({ port: 'admin', path: '/metrics' })]);
  });
});
/* eslint-enable @typescript-eslint/no-explicit-any */

// ---------------------------------------------------------------------------------------------
// Dockerfile

describe('deploy/Dockerfile', () => {
  const text = readFileSync(join(DEPLOY_DIR, 'Dockerfile'), 'utf8');
  const instructions = text
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'))
    .map((l) => l.trim());

  it('multi-stage: build with npm ci, runtime with production dependencies and dist/ only', () => {
    const froms = instructions.filter((l) => l.startsWith('FROM '));
    expect(froms).toEqual(['FROM node:20-bookworm-slim AS build', 'FROM node:20-bookworm-slim']);
    const runtime = instructions.slice(instructions.indexOf(froms[1]!));
    expect(runtime).toContain('RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force');
    expect(runtime).toContain('COPY --from=build /app/dist ./dist');
    expect(runtime).toContain('USER node');
    expect(runtime).toContain('EXPOSE 8080 9901');
    expect(runtime.at(-1)).toBe('ENTRYPOINT ["node", "dist/main.js"]');
    expect(text).toContain('docker build -f deploy/Dockerfile');
  });

  it('every file it copies from the build context exists in the repository', () => {
    const root = join(DEPLOY_DIR, '..');
    for (const line of instructions.filter((l) => l.startsWith('COPY ') && !l.startsWith('COPY --from'))) {
      const sources = line.split(/\s+/).slice(1, -1);
      for (const source of sources) expect(existsSync(join(root, source)), `${line}: ${source}`).toBe(true);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Prometheus alerts

const promtool = requireTool(TOOLS.promtool);

describe('deploy/prometheus/alerts.yaml', () => {
  const rules = readAlertRules();

  it('has the alerts of the runbook, each with severity, for, summary, description and runbook', () => {
    expect(rules.map((r) => r.alert).sort()).toEqual(
      [
        'AstraAuthEdgeAuthLatencyHigh',
        'AstraAuthEdgeDecisionStoreEvicting',
        'AstraAuthEdgeDefaultActionAllowing',
        'AstraAuthEdgeDown',
        'AstraAuthEdgeHigh5xxRatio',
        'AstraAuthEdgeMiddlewareUnavailable',
        'AstraAuthEdgeStoreDown',
        'AstraAuthEdgeTargetMissing',
      ].sort(),
    );
    for (const r of rules) {
      expect(r.labels?.['severity'], r.alert).toMatch(/^(?:critical|warning)$/);
      expect(r.for, r.alert).toMatch(/^\d+m$/);
      for (const key of ['summary', 'description', 'runbook']) expect(r.annotations?.[key], `${r.alert} ${key}`).toMatch(/\S{3}/);
    }
    const byName = new Map(rules.map((r) => [r.alert, r]));
    expect(byName.get('AstraAuthEdgeMiddlewareUnavailable')?.expr).toContain('outcome=~"timeout|refused|http_5xx|invalid"');
    expect(byName.get('AstraAuthEdgeAuthLatencyHigh')?.expr).toMatch(/histogram_quantile\(0\.99, sum by \([^)]*le\) \(rate\(edge_auth_duration_seconds_bucket\[5m\]\)\)\) > 0\.25/);
  });

  it('uses only metrics the edge exports (or up)', () => {
    for (const r of rules) {
      const names = promqlMetricNames(r.expr);
      expect(names.length, r.alert).toBeGreaterThan(0);
      expect(names.filter((n) => !knownMetric(n)), r.alert).toEqual([]);
    }
  });

  it.skipIf(promtool.skip)(`promtool check rules passes${promtool.note}`, async () => {
    const r = await runCommand(promtool.path, ['check', 'rules', ALERTS_FILE]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  it.skipIf(promtool.skip)(`promtool test rules: each alert fires on its condition and not on a healthy edge${promtool.note}`, async () => {
    const r = await runCommand(promtool.path, ['test', 'rules', ALERTS_TEST_FILE]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('SUCCESS');
    // Every alert has a test that expects it firing.
    const tests = readFileSync(ALERTS_TEST_FILE, 'utf8');
    for (const rule of rules) expect(tests, rule.alert).toMatch(new RegExp(`alertname: ${rule.alert}\\n\\s+exp_alerts:\\n\\s+- exp_labels`));
  });
});

// ---------------------------------------------------------------------------------------------
// Grafana dashboard

describe('deploy/grafana/astra-auth-edge.json', () => {
  const dashboard = readDashboard();
  const exprs = dashboardExprs(dashboard);

  it('is an importable dashboard with a ${DS_PROMETHEUS} datasource input', () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.schemaVersion).toBeLessThanOrEqual(41);
    expect(dashboard.uid).toBe('astra-auth-edge');
    expect(dashboard.__inputs).toEqual([expect.objectContaining({ name: 'DS_PROMETHEUS', type: 'datasource', pluginId: 'prometheus' })]);
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dashboard.panels) {
      expect(p.gridPos, p.title).toBeDefined();
      expect(p.gridPos!.x + p.gridPos!.w, p.title).toBeLessThanOrEqual(24);
      if (p.type === 'row') continue;
      expect(p.datasource?.uid, p.title).toBe('${DS_PROMETHEUS}');
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      const refIds = p.targets!.map((t) => t.refId);
      expect(new Set(refIds).size, p.title).toBe(refIds.length);
    }
  });

  it('every PromQL expression and variable query uses only known metric names', () => {
    const queries = [
      ...exprs,
      ...dashboard.templating.list.map((v) => ({ title: `variable ${v.name}`, expr: typeof v.query === 'string' ? v.query : v.query.query })),
    ];
    for (const { title, expr } of queries) {
      // label_values(metric{...}, label): the metric is its first argument.
      const promql = expr.replace(/^label_values\((.*),\s*\w+\)$/, '$1');
      const names = promqlMetricNames(promql);
      expect(names.length, `${title}: ${expr}`).toBeGreaterThan(0);
      expect(names.filter((n) => !knownMetric(n)), `${title}: ${expr}`).toEqual([]);
    }
  });

  it('has a panel for each of the edge metrics, Node event loop lag and heap', () => {
    const used = new Set(exprs.flatMap((e) => promqlMetricNames(e.expr)).map((n) => (histogramBase(n) !== undefined && HISTOGRAMS.has(histogramBase(n)!) ? histogramBase(n)! : n)));
    for (const name of [...EDGE_METRICS, 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) expect(used.has(name), name).toBe(true);
  });

  it('reads metric names out of PromQL', () => {
    expect(promqlMetricNames('histogram_quantile(0.99, sum by (job, le) (rate(edge_auth_duration_seconds_bucket{a="b c"}[5m]))) > 0.25')).toEqual(['edge_auth_duration_seconds_bucket']);
    expect(promqlMetricNames('sum(rate(a_total{x=~"$job"}[$__rate_interval])) / on (job) group_left (z) b offset 5m')).toEqual(['a_total', 'b']);
    expect(promqlMetricNames('max by (instance) (nodejs_eventloop_lag_p99_seconds) > bool 1e3')).toEqual(['nodejs_eventloop_lag_p99_seconds']);
    expect(promqlMetricNames('up{job=~"(.+/)?astra-auth-edge"} == 0')).toEqual(['up']);
  });
});

it('unitSection reads repeated and empty keys, skipping comments', () => {
  const s = unitSection('[Service]\n# X=1\nA=\nB=1\nB=2\n[Install]\nB=3\n', 'Service');
  expect([...s.entries()]).toEqual([
    ['A', ['']],
    ['B', ['1', '2']],
  ]);
});
