#!/usr/bin/env node
import 'reflect-metadata';
import { parseCli, ROUTES_COMMAND, USAGE } from './cli.js';
import { loadConfig } from './config/load.js';
import { isWarrenError } from './errors.js';
import { CORE_VERSION } from './version.js';

/** Process entry point: parse flags and settings, then run until SIGTERM/SIGINT. */
async function main(argv: readonly string[]): Promise<number> {
  if (argv[0] === ROUTES_COMMAND) return (await import('./cli-routes.js')).runRoutesCommand(argv.slice(1), process.stdout, process.stderr);
  let cli;
  try {
    cli = parseCli(argv, process.env);
  } catch (err) {
    process.stderr.write(`warren: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (cli.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (cli.version) {
    process.stdout.write(`warren ${CORE_VERSION}\n`);
    return 0;
  }
  try {
    const config = loadConfig(cli.sources);
    if (cli.printConfig) {
      process.stdout.write(`${JSON.stringify(config, null, 2)}\n`);
      return 0;
    }
    if (cli.uninstall) {
      const { runUninstall } = await import('./uninstall.js');
      return await runUninstall(config);
    }
    const { run } = await import('./bootstrap.js');
    return await run(config, { local: cli.local !== undefined });
  } catch (err) {
    if (isWarrenError(err)) {
      process.stderr.write(`warren: ${err.code}: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`warren: unexpected error: ${(err as Error)?.stack ?? String(err)}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
