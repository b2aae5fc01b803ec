import { parseArgs } from 'node:util';
import type { ConfigSources } from './config/load.js';

export const USAGE = `Usage: warren [options]

Warren: a Kubernetes ingress controller with a native Cloudflare Tunnel connector.

Options:
  -c, --config FILE     settings file (YAML or JSON); also WARREN_CONFIG
      --set KEY=VALUE   override one setting, e.g. --set proxy.connectTimeout=5s (repeatable)
      --local DIR       local mode: read manifests from DIR, run the built-in edge simulator and
                        serve its eyeball entrance on local.eyeballListen (http://127.0.0.1:8080)
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
  const overlay: Record<string, unknown> | undefined = values.local
    ? { source: { kind: 'folder', folder: values.local } }
    : undefined;
  return {
    help: values.help ?? false,
    version: values.version ?? false,
    printConfig: values['print-config'] ?? false,
    uninstall: values.uninstall ?? false,
    local: values.local,
    sources: { file: values.config ?? env.WARREN_CONFIG, env, sets, ...(overlay ? { overlay } : {}) },
  };
}
