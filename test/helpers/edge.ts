// Starts a real edge in this process (both listeners on 127.0.0.1 port 0), configured exactly as
// an operator would (a YAML-shaped object through buildConfig), with its log lines captured.
import { Writable } from 'node:stream';
import { createApp, type EdgeApp } from '../../src/app.js';
import { buildConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';

export interface TestEdge {
  readonly url: string;
  readonly adminUrl: string;
  readonly app: EdgeApp;
  /** Parsed JSON log lines. */
  readonly logs: Record<string, unknown>[];
  /** Current value of a metric sample, e.g. metric('edge_auth_decisions_total', { result: 'allow', source: 'backend' }). */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  close(drainTimeoutMs?: number): Promise<void>;
}

/** YAML-shaped config; listeners default to loopback port 0. */
export type EdgeFileConfig = Record<string, unknown>;

export async function startEdge(file: EdgeFileConfig = {}): Promise<TestEdge> {
  const config = buildConfig({
    file: { listen: '127.0.0.1:0', ...file, admin: { listen: '127.0.0.1:0', ...(file['admin'] as object | undefined) } },
    fileName: 'test config',
  });
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const log = createLogger(config.log.level === 'info' ? 'debug' : config.log.level, sink);
  const app = createApp(config, { log, processMetrics: false });
  const { url, adminUrl } = await app.listen();
  if (adminUrl === undefined) throw new Error('the test edge has an admin listener');
  return {
    url,
    adminUrl,
    app,
    logs,
    async metric(name, labels = {}) {
      const metric = app.metrics.registry.getSingleMetric(name);
      if (metric === undefined) throw new Error(`no metric ${name}`);
      const data = await metric.get();
      let sum = 0;
      for (const v of data.values) {
        if (Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want)) sum += v.value;
      }
      return sum;
    },
    close: (drainTimeoutMs = 1000) => app.close(drainTimeoutMs),
  };
}
