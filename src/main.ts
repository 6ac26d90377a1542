#!/usr/bin/env node
/**
 * The only file that reads process.argv, the environment and signals
 * (STYLE §4, §6). A Node script, not a shell wrapper, so SIGTERM from
 * systemd or Kubernetes reaches this process.
 */
import { readFileSync } from 'node:fs';
import { createApp } from './app.js';
import { runCheckCommand } from './check/command.js';
import { parseAdminArgs, runAdminCommand } from './cli/admin-client.js';
import { helpText, parseArgs } from './cli/args.js';
import { buildConfig, describeConfig, readConfigFile } from './config/load.js';
import { surviveUncaught } from './crash-guard.js';
import { EdgeError } from './errors.js';
import { createLogger } from './log.js';
import { redactText } from './redact.js';

const EXIT_RUNTIME = 1;
const EXIT_CONFIG = 2;

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
  const file = configFile === undefined ? undefined : await readConfigFile(configFile);
  const config = buildConfig({ file, fileName: configFile, env: process.env, flags: args.flags });
  if (args.command === 'check-config') {
    process.stdout.write(`${JSON.stringify(describeConfig(config), null, 2)}\nconfiguration OK\n`);
    return 0;
  }

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

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
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
