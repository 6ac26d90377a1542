#!/usr/bin/env node
/**
 * The only file that reads process.argv, the environment and signals
 * (STYLE §4, §6). A Node script, not a shell wrapper, so SIGTERM from
 * systemd or Kubernetes reaches this process.
 */
import cluster from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { createApp } from './app.js';
import { runCheckCommand } from './check/command.js';
import { parseAdminArgs, runAdminCommand } from './cli/admin-client.js';
import { helpText, parseArgs, type ParsedArgs } from './cli/args.js';
import { createPrimary } from './cluster/primary.js';
import { WorkerStartError } from './cluster/supervisor.js';
import { runWorker, type WorkerChannel } from './cluster/worker.js';
import { resolveWorkers } from './cluster/workers.js';
import { buildConfig, describeConfig, readConfigFile } from './config/load.js';
import type { EdgeConfig } from './config/schema.js';
import { surviveUncaught } from './crash-guard.js';
import { EdgeError } from './errors.js';
import { createLogger } from './log.js';
import { redactText } from './redact.js';

const EXIT_RUNTIME = 1;
const EXIT_CONFIG = 2;
/** Bytes of the marker secret the primary makes when none is configured (its workers must share one). */
const GENERATED_SECRET_BYTES = 32;
/** A worker whose event loop is still held by something this long after its drain exits anyway. */
const WORKER_EXIT_GRACE_MS = 2000;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  if (argv[0] === 'sessions' || argv[0] === 'kick') {
    const cmd = parseAdminArgs(argv[0], argv.slice(1), process.env);
    return runAdminCommand(cmd, { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(`astra-auth-edge: ${t}`) });
  }
  if (argv[0] === 'check') {
    return runCheckCommand(argv.slice(1), process.env, { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) });
  }
  const args = parseArgs(argv);
  if (args.command === 'help') {
    process.stdout.write(helpText(version()));
    return 0;
  }
  if (args.command === 'version') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  const configFile = args.configFile ?? process.env['EDGE_CONFIG'];
  // A worker of --workers N: its primary sends the configuration document it validated.
  if (cluster.isWorker) return runAsWorker(args, configFile);
  const file = configFile === undefined ? undefined : await readConfigFile(configFile);
  const config = buildConfig({ file, fileName: configFile, env: process.env, flags: args.flags });
  if (args.command === 'check-config') {
    process.stdout.write(`${JSON.stringify(describeConfig(config), null, 2)}\nconfiguration OK\n`);
    return 0;
  }
  const workers = resolveWorkers(config.workers, availableParallelism());
  // --workers 1 (the default) is one process, as before: no cluster at all.
  if (workers > 1) return runAsPrimary(args, configFile, file, config, workers);

  const log = createLogger(config.log.level);
  const app = createApp(config, { log });
  // From here on a bug that escapes every handler is logged and counted, not fatal: exiting would cut
  // every open stream and drop the in-memory session store (README, "Running it in production").
  surviveUncaught(process, { log, metrics: app.metrics });
  await app.listen();
  // SIGHUP: read the file (and env, flags) again; a bad new config is logged and the old one stays.
  process.on('SIGHUP', () => {
    void (async () => {
      try {
        const nextFile = configFile === undefined ? undefined : await readConfigFile(configFile);
        app.reload(buildConfig({ file: nextFile, fileName: configFile, env: process.env, flags: args.flags }));
      } catch (err) {
        // Config errors are redacted where they are made; this catches any other error text quoting a URL.
        log.error({ err: { message: redactText((err as Error).message) } }, 'configuration reload rejected: the running configuration stays');
      }
    })();
  });
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      log.info({ signal }, 'stopping: draining connections');
      resolve();
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  await app.close();
  return 0;
}

/** The primary of --workers N: forks the workers, relays SIGHUP and SIGTERM/SIGINT to them. */
async function runAsPrimary(args: ParsedArgs, configFile: string | undefined, file: unknown, config: EdgeConfig, workers: number): Promise<number> {
  const log = createLogger(config.log.level).child({ role: 'primary' });
  // Markers must verify on every worker: without a configured secret, one is made here and handed to each (never logged).
  const secret = config.session.secret === undefined ? randomBytes(GENERATED_SECRET_BYTES).toString('base64url') : undefined;
  const primary = createPrimary({ config, file, count: workers, secret, log });
  surviveUncaught(process, { log, metrics: primary.metrics });
  let stop: (signal: NodeJS.Signals) => void = () => undefined;
  const stopped = new Promise<void>((resolve) => {
    stop = (signal) => {
      log.info({ signal }, 'stopping: draining every worker');
      resolve();
    };
  });
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  await Promise.race([primary.start(), stopped]);
  process.on('SIGHUP', () => {
    void (async () => {
      try {
        const nextFile = configFile === undefined ? undefined : await readConfigFile(configFile);
        // Validated here, once: a bad file is rejected before any worker sees it.
        const next = buildConfig({ file: nextFile, fileName: configFile, env: process.env, flags: args.flags });
        await primary.reload(next, nextFile);
      } catch (err) {
        log.error({ err: { message: redactText((err as Error).message) } }, 'configuration reload rejected: the running configuration stays');
      }
    })();
  });
  await stopped;
  await primary.stop();
  return 0;
}

/** A worker of --workers N: stops on the primary's word, or on SIGTERM/SIGINT sent to the whole process group (Ctrl-C). */
async function runAsWorker(args: ParsedArgs, configFile: string | undefined): Promise<number> {
  const worker = runWorker({ channel: process as WorkerChannel, process, fileName: configFile, env: process.env, flags: args.flags });
  // Reloads come from the primary, with the document it validated; a SIGHUP sent to the whole group must not end this process (its default action).
  process.on('SIGHUP', () => undefined);
  // `on`, not `once`: the primary may relay a signal the worker also got from the group; stopping is idempotent.
  process.on('SIGTERM', () => worker.stop());
  process.on('SIGINT', () => worker.stop());
  const code = await worker.done;
  // The IPC channel holds the process: let go of it (telling the primary this exit is on purpose), and exit even if a handle lingers.
  setTimeout(() => process.exit(code), WORKER_EXIT_GRACE_MS).unref();
  cluster.worker?.disconnect();
  return code;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof WorkerStartError) {
      process.stderr.write(`astra-auth-edge: ${redactText(err.message)}\n`);
      process.exitCode = err.exitCode;
      return;
    }
    if (err instanceof EdgeError && err.code === 'EDGE_ERR_CONFIG') {
      process.stderr.write(`astra-auth-edge: ${redactText(err.message)}\n`);
      process.exitCode = EXIT_CONFIG;
      return;
    }
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE' || e.code === 'EACCES' || e.code === 'EADDRNOTAVAIL') {
      process.stderr.write(`astra-auth-edge: cannot listen: ${e.message} (check --listen / --admin-listen)\n`);
    } else {
      process.stderr.write(`astra-auth-edge: ${e.stack ?? String(err)}\n`);
    }
    process.exitCode = EXIT_RUNTIME;
  },
);
