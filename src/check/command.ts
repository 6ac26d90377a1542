/**
 * `astra-auth-edge check …` from the command line: arguments, the edge's
 * configuration (file, environment, flags: as the edge reads them), the
 * check, and the report on stdout. main.ts hands over argv and the
 * environment.
 */
import { checkHelpText, parseCheckArgs } from '../cli/check-args.js';
import { buildConfig, readConfigFile } from '../config/load.js';
import { EdgeError } from '../errors.js';
import { redactText } from '../redact.js';
import { formatCheckReport } from './report.js';
import { CHECK_EXIT, runCheckReport } from './run.js';

export interface CheckIo {
  out(text: string): void;
  err(text: string): void;
}

export async function runCheckCommand(argv: readonly string[], env: Readonly<Record<string, string | undefined>>, io: CheckIo): Promise<number> {
  try {
    const args = parseCheckArgs(argv);
    if (args.help) {
      io.out(checkHelpText());
      return 0;
    }
    const configFile = args.configFile ?? env['EDGE_CONFIG'];
    const file = configFile === undefined ? undefined : await readConfigFile(configFile);
    const config = buildConfig({ file, fileName: configFile, env, flags: args.flags });
    const report = await runCheckReport(config, args);
    io.out(args.json ? `${JSON.stringify(report, null, 2)}\n` : formatCheckReport(report));
    return report.exitCode;
  } catch (err) {
    if (err instanceof EdgeError && err.code === 'EDGE_ERR_CONFIG') {
      io.err(`astra-auth-edge: ${redactText(err.message)}\n`);
      return CHECK_EXIT.usage;
    }
    throw err;
  }
}
