import { parseArgs } from 'node:util';
import { loadConfig, type ConfigSources } from './config/load.js';
import { isWarrenError } from './errors.js';
import { CORE_VERSION } from './version.js';

export const USAGE = `Usage: warren [options]

Warren: a Kubernetes ingress controller with a native Cloudflare Tunnel connector.

Options:
  -c, --config FILE     settings file (YAML or JSON); also WARREN_CONFIG
      --set KEY=VALUE   override one setting, e.g. --set proxy.connectTimeout=5s (repeatable)
      --local DIR       folder mode: read manifests from DIR instead of a cluster. With a tunnel
                        configured (TUNNEL_TOKEN, tunnel.tokenFile or tunnel.credentialsFile) connect
                        to it; without one run the built-in edge simulator, entered on
                        local.eyeballListen (http://127.0.0.1:8080). See docs/folder-mode.md
      --log-level LEVEL fatal, error, warn, info, debug, trace or silent
      --print-config    print the effective settings as JSON and exit
      --uninstall       uninstall cleanup, then exit: deletes a tunnel Warren manages (and its credentials
                        Secret) only with cloudflare.deleteTunnelOnUninstall=true, otherwise prints what
                        stays behind and how to remove it (the chart's pre-delete hook runs this)
  -h, --help            show this help and exit
  -v, --version         print the version and exit

Commands:
  warren routes [--url URL] [--host HOST [--path PATH]] [--json]
                        print the live route table of a running Warren from its health port
                        (warren routes --help)

Settings precedence, lowest first: defaults, the settings file, WARREN_* environment variables
(WARREN_PROXY__CONNECT_TIMEOUT=5s sets proxy.connectTimeout), then flags.
Secrets come from files or environment only: TUNNEL_TOKEN, CLOUDFLARE_API_TOKEN.
See docs/configuration.md for every setting.
`;

/** First argument that runs the route-table client instead of the controller (see `cli-routes.ts`). */
export const ROUTES_COMMAND = 'routes';

export interface CliOptions {
  help: boolean;
  version: boolean;
  printConfig: boolean;
  /** `--uninstall`: run the uninstall cleanup (see `uninstall.ts`) instead of the controller. */
  uninstall: boolean;
  local?: string | undefined;
  sources: ConfigSources;
}

/** Parses argv into config sources; throws a TypeError naming the bad flag. */
export function parseCli(argv: readonly string[], env: NodeJS.ProcessEnv): CliOptions {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      config: { type: 'string', short: 'c' },
      set: { type: 'string', multiple: true },
      local: { type: 'string' },
      'log-level': { type: 'string' },
      'print-config': { type: 'boolean' },
      uninstall: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
  });
  if (values.uninstall && values.local !== undefined) throw new TypeError('--uninstall cannot be combined with --local (local mode has no tunnel to clean up)');
  const sets = [...(values.set ?? [])];
  if (values['log-level']) sets.push(`logLevel=${values['log-level']}`);
  const overlay: Record<string, unknown> | undefined = values.local ? { source: { kind: 'folder', folder: values.local } } : undefined;
  return {
    help: values.help ?? false,
    version: values.version ?? false,
    printConfig: values['print-config'] ?? false,
    uninstall: values.uninstall ?? false,
    local: values.local,
    sources: { file: values.config ?? env.WARREN_CONFIG, env, sets, ...(overlay ? { overlay } : {}) },
  };
}

/** The command line: parse flags and settings, then run until SIGTERM/SIGINT. Resolves with the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  if (argv[0] === ROUTES_COMMAND) return (await import('./cli-routes.js')).runRoutesCommand(argv.slice(1), process.stdout, process.stderr);
  let cli: CliOptions;
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
