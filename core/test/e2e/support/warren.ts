/**
 * Warren's real controller process (`core/build/src/main.js`) for end-to-end tests, in Kubernetes mode:
 *
 *   test ──admin──▶ kube-apiserver ◀──ServiceAccount token (deploy/rbac.yaml only)── warren process
 *   test ──HTTP──▶ edge simulator eyeball ══tunnel (HTTP/2 over TLS)══▶ warren process ──▶ echo backends
 *
 * The edge simulator runs inside the test worker; the controller connects to it through the settings
 * `tunnel.edgeAddresses` and `tunnel.edgeCaFile` with the simulator's token in env `TUNNEL_TOKEN`, exactly as an
 * operator would point it at an unusual edge — or, with `managed`, with no token: it finds or creates its tunnel
 * through a (fake) Cloudflare API, as in management mode. Settings go in a YAML file (`--config`); the kubeconfig
 * and the tokens live in files or the environment, never in arguments.
 */
import { CoordinationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startEdgeSimulator, type EdgeSimulator } from '../../../src/edge-simulator/index.js';
import { CONTROLLER_NAMESPACE, type TestApiServer } from '../../support/apiserver.js';
import { spawnLogged, tempDir, waitUntil, type ChildExit, type LoggedChild } from './children.js';
import { send } from './http.js';
import { baseEnv, MAIN_JS, NODE_BIN, REPO_ROOT } from './paths.js';
import { completeJsonLines } from './json-lines.js';

/** The Lease that deploy/rbac.yaml lets the controller use (by name, in the controller namespace). */
export const LEASE_NAME = 'warren-leader';

export interface WarrenProcess {
  /** POD_NAME given to the process; its Lease holder identity is `<podName>_<random hex>`. */
  readonly podName: string;
  readonly child: LoggedChild;
  /** `http://127.0.0.1:<port>` of its health and metrics server. */
  readonly healthUrl: string;
  /** Status of GET /readyz (0 when it does not answer). */
  readyz(): Promise<number>;
  /** Prometheus text from GET /metrics. */
  metrics(): Promise<string>;
  /** Value of an unlabelled metric sample, or undefined when absent. */
  metric(name: string): Promise<number | undefined>;
  /** Access-log lines (component "access") written so far. */
  accessLog(): Array<Record<string, unknown>>;
  /** Every JSON log line written so far. */
  logLines(): Array<Record<string, unknown>>;
  /** SIGTERM, then waits for the exit (bounded; SIGKILL after `graceMs`). */
  stop(graceMs?: number): Promise<ChildExit>;
}

export interface StartWarrenOptions {
  /** POD_NAME (and log folder name). */
  readonly podName: string;
  /** A kubeconfig file for the controller (see {@link controllerKubeconfig}). */
  readonly kubeconfigFile: string;
  readonly edge: EdgeSimulator;
  /**
   * Management mode instead of the simulator's token: the tunnel `tunnelName` of `accountId` is found or created
   * through the Cloudflare API at `apiBaseUrl` (settings `cloudflare.*`), with `apiToken` in env
   * CLOUDFLARE_API_TOKEN. The edge must accept that account's tunnels (`authorize`), and the controller's token
   * needs the chart's management-mode rights on the credentials Secret.
   */
  readonly managed?: { readonly apiBaseUrl: string; readonly apiToken: string; readonly accountId: string; readonly tunnelName: string };
  /** Settings layered over the e2e defaults (merged one level deep per top-level section). */
  readonly settings?: Record<string, Record<string, unknown> | unknown>;
  /** Extra `--set` flags. */
  readonly sets?: readonly string[];
  /** How long to wait for /readyz 200 (default 45 s). */
  readonly readyTimeoutMs?: number;
  /** Do not wait for readiness (e.g. a follower check before leadership matters). Default false. */
  readonly noWait?: boolean;
}

/**
 * The e2e defaults: health on a free loopback port, the test Lease, short coalescing, two HA connections; with
 * `managed`, the Cloudflare account, tunnel name and API.
 */
function defaultSettings(options: StartWarrenOptions): Record<string, Record<string, unknown>> {
  return {
    server: { listen: '127.0.0.1:0' },
    kubernetes: {
      kubeconfig: options.kubeconfigFile,
      leaderElection: { leaseNamespace: CONTROLLER_NAMESPACE, leaseName: LEASE_NAME, leaseDuration: '4s', renewDeadline: '3s', retryPeriod: '500ms' },
      resyncBurstWindow: '20ms',
    },
    tunnel: { edgeAddresses: [...options.edge.edgeAddresses], edgeCaFile: options.edge.caFile, haConnections: 2, rpcTimeout: '5s' },
    ...(options.managed ? { cloudflare: { accountId: options.managed.accountId, tunnelName: options.managed.tunnelName, apiBaseUrl: options.managed.apiBaseUrl } } : {}),
  };
}

/** Starts the controller process and (unless `noWait`) waits until /readyz answers 200. */
export async function startWarren(options: StartWarrenOptions): Promise<WarrenProcess> {
  const settings: Record<string, unknown> = { logLevel: 'info', shutdownGracePeriod: '10s' };
  const defaults = defaultSettings(options);
  for (const [key, value] of Object.entries(defaults)) settings[key] = value;
  for (const [key, value] of Object.entries(options.settings ?? {})) {
    const base = settings[key];
    settings[key] =
      base && typeof base === 'object' && value && typeof value === 'object' && !Array.isArray(value)
        ? { ...(base as Record<string, unknown>), ...(value as Record<string, unknown>) }
        : value;
  }
  const dir = tempDir(options.podName);
  const configFile = join(dir, 'warren.yaml');
  writeFileSync(configFile, stringify(settings));
  const args = [MAIN_JS, '--config', configFile, ...(options.sets ?? []).flatMap((s) => ['--set', s])];
  const child = spawnLogged(options.podName, NODE_BIN, args, {
    cwd: REPO_ROOT,
    env: baseEnv({
      ...(options.managed ? { CLOUDFLARE_API_TOKEN: options.managed.apiToken } : { TUNNEL_TOKEN: options.edge.token }),
      POD_NAME: options.podName,
      POD_NAMESPACE: CONTROLLER_NAMESPACE,
    }),
    dir,
  });
  let healthUrl: string;
  try {
    const [, address] = await child.waitForOutput(/"address":"([^"]+)","msg":"health and metrics server listening"/, 30_000, 'the health server address');
    healthUrl = `http://${address}`;
  } catch (err) {
    await child.stop();
    throw err;
  }
  // The child is still writing its log: a line read half-written waits for the next read.
  const logLines = () => completeJsonLines(child.stdout());
  const warren: WarrenProcess = {
    podName: options.podName,
    child,
    healthUrl,
    async readyz() {
      try {
        return (await send(healthUrl, '/readyz', { timeoutMs: 3_000 })).status;
      } catch {
        return 0;
      }
    },
    async metrics() {
      return (await send(healthUrl, '/metrics', { timeoutMs: 5_000 })).body;
    },
    async metric(name) {
      const line = (await warren.metrics()).split('\n').find((l) => l.startsWith(`${name} `));
      return line === undefined ? undefined : Number(line.slice(name.length + 1));
    },
    accessLog: () => logLines().filter((l) => l.component === 'access'),
    logLines,
    stop: (graceMs = 15_000) => child.stop(graceMs),
  };
  if (!options.noWait) {
    try {
      await waitUntil(`${options.podName} /readyz 200`, async () => (await warren.readyz()) === 200, options.readyTimeoutMs ?? 45_000);
    } catch (err) {
      const message = `${(err as Error).message}\n${child.tail()}`;
      await child.stop();
      throw new Error(message);
    }
  }
  return warren;
}

/**
 * Mints a token for the controller's ServiceAccount (bound only to deploy/rbac.yaml) through the TokenRequest
 * API and writes a kubeconfig file holding it (mode 0600). Returns the file's path.
 */
export async function controllerKubeconfig(server: TestApiServer): Promise<string> {
  const token = await server.controllerToken();
  const file = join(tempDir('kubeconfig'), 'kubeconfig');
  writeFileSync(file, server.configForToken(token).exportConfig(), { mode: 0o600 });
  return file;
}

/**
 * Starts an edge simulator with two edge listeners (one per HA connection of each controller, see the
 * defaults above) and an eyeball entrance on a free loopback port.
 */
export function startEdge(): Promise<EdgeSimulator> {
  return startEdgeSimulator({ edgeListeners: 2, eyeball: { host: '127.0.0.1', port: 0 } });
}

/** The Lease's current holder identity, or undefined (no Lease, or released). */
export async function leaseHolder(admin: KubeConfig): Promise<string | undefined> {
  try {
    const lease = await admin.makeApiClient(CoordinationV1Api).readNamespacedLease({ namespace: CONTROLLER_NAMESPACE, name: LEASE_NAME });
    return lease.spec?.holderIdentity || undefined;
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined;
    throw err;
  }
}

/** The `<tunnel-id>.cfargotunnel.com` hostname Warren publishes for the simulator's tunnel. */
export function tunnelHostname(edge: EdgeSimulator): string {
  return `${edge.credentials.tunnelId}.cfargotunnel.com`;
}
