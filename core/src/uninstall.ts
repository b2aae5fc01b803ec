import { pino, type Logger } from 'pino';
import { createCloudflareClientFactory } from './cloudflare/client.js';
import { KubernetesGatewayTunnelSecrets } from './cloudflare/gateway-tunnels.js';
import { KubernetesCredentialsSecretStore, type CredentialsSecretStore } from './cloudflare/secret-store.js';
import { parseCredentialsJson, type ManagedTunnelCredentials } from './cloudflare/tunnel-credentials.js';
import { CREDENTIALS_SECRET_KEY, TunnelLifecycle, tunnelMode, type TunnelMode } from './cloudflare/tunnel-lifecycle.js';
import type { Config } from './config/schema.js';
import { loadClusterAccess } from './k8s/api/access.js';
import { KubeClient } from './k8s/api/client.js';
import { podNamespace } from './k8s/namespace.js';
import { shutdownOnSignals } from './lifecycle/signals.js';
import { createLogger } from './observability/logger.js';
import { CORE_VERSION } from './version.js';
import { ALWAYS_LEADING } from './state/leadership.js';

/** Upper bound on one `warren --uninstall` run (a few Kubernetes and Cloudflare calls, each with its own timeout). */
export const UNINSTALL_TIMEOUT_MS = 120_000;

/** What {@link uninstall} did and what it left in place, for the person (or Helm hook log) reading it. */
export interface UninstallReport {
  readonly mode: TunnelMode;
  /** True only when the tunnel and its credentials Secret were deleted (`cloudflare.deleteTunnelOnUninstall`). */
  readonly tunnelDeleted: boolean;
  /** Plain sentences: what was done, what remains and how to remove it. Never holds a credential. */
  readonly lines: readonly string[];
}

export interface UninstallOptions {
  readonly logger: Logger;
  readonly signal: AbortSignal;
  /** Environment: `POD_NAMESPACE` (where the credentials Secret lives), `TUNNEL_TOKEN`, `CLOUDFLARE_API_TOKEN`. */
  readonly env?: NodeJS.ProcessEnv | undefined;
}

/**
 * The cleanup an uninstall needs, run once: by the chart's Helm `pre-delete` hook Job, or by hand as
 * `warren --uninstall`. It runs {@link TunnelLifecycle.uninstall}, so a managed tunnel and its credentials Secret
 * are deleted only when `cloudflare.deleteTunnelOnUninstall` is true; in every other case nothing changes and the
 * report says what stays behind and how to remove it. A supplied tunnel (token or credentials file) was never
 * Warren's to delete. Throws a WarrenError when the settings name no tunnel at all or an API call fails.
 * Neither the API token nor the tunnel secret ever reaches the report or the log.
 */
export async function uninstall(config: Readonly<Config>, options: UninstallOptions): Promise<UninstallReport> {
  const env = options.env ?? process.env;
  const mode = tunnelMode(config, env);
  const lines: string[] = [];
  let tunnelDeleted = false;
  if (mode === 'disabled') {
    lines.push('The tunnel is disabled (tunnel.enabled is false): there is no tunnel to clean up.');
  } else if (mode === 'supplied') {
    lines.push(
      'The tunnel comes from a supplied tunnel token or credentials file, so Warren did not create it and does not delete it.',
      'If no longer needed, delete it in the Cloudflare dashboard (Zero Trust > Networks > Tunnels) or with `cloudflared tunnel delete <name>`.',
    );
  } else {
    const cf = config.cloudflare;
    const namespace = podNamespace(env);
    const kube = new KubeClient(loadClusterAccess(config.kubernetes, env));
    try {
      const store = new KubernetesCredentialsSecretStore(kube, namespace, cf.credentialsSecretName);
      const lifecycle = new TunnelLifecycle({
        config,
        logger: options.logger,
        clientFactory: createCloudflareClientFactory({ config: cf, logger: options.logger, env }),
        secretStore: store,
        // Uninstall runs once, outside leader election: nothing else decides for it.
        leadership: ALWAYS_LEADING,
        env,
      });
      const stored = await readStored(store, options.signal, options.logger, cf.deleteTunnelOnUninstall);
      const tunnel = describeTunnel(stored, cf.tunnelName, cf.accountId);
      tunnelDeleted = (await lifecycle.uninstall(options.signal)).tunnelDeleted;
      const dashboard = 'the Cloudflare dashboard (Zero Trust > Networks > Tunnels)';
      if (tunnelDeleted) {
        lines.push(`Deleted ${tunnel} (its connections first) and the credentials ${store.description} (cloudflare.deleteTunnelOnUninstall is true).`);
      } else if (stored === undefined) {
        lines.push(
          `Nothing deleted: there is no credentials ${store.description}, so this installation stored no tunnel.`,
          `If a tunnel named "${cf.tunnelName}" exists in account ${cf.accountId}, it stays: delete it in ${dashboard} or with \`cloudflared tunnel delete ${cf.tunnelName}\`.`,
        );
      } else {
        lines.push(
          `Kept ${tunnel}: cloudflare.deleteTunnelOnUninstall is false, so a reinstall with the same tunnelName adopts it.`,
          stored === null
            ? `Kept the credentials ${store.description} (it could not be read now; see the log).`
            : `Kept the credentials ${store.description}, which holds the tunnel's secret.`,
          `To remove both: delete the tunnel in ${dashboard} or with \`cloudflared tunnel delete ${stored?.tunnelId ?? cf.tunnelName}\`, then \`kubectl -n ${namespace} delete secret ${cf.credentialsSecretName}\`; or set cloudflare.deleteTunnelOnUninstall=true and run \`warren --uninstall\` again.`,
        );
      }
      if (config.gateway.enabled) lines.push(...(await uninstallGatewayTunnels(config, kube, namespace, options)));
    } finally {
      await kube.close();
    }
  }
  const cleanupPlugins = ['dns', 'firewall'].filter((name) => config.plugins[name]?.enabled);
  if (cleanupPlugins.length) {
    lines.push(
      `Not touched: ${cleanupPlugins.map((p) => (p === 'dns' ? 'DNS records' : 'firewall rules')).join(' and ')} of Ingresses that still exist. Delete those Ingresses (or move them to another class) while Warren runs and it removes them; see docs/cloudflare.md.`,
    );
  }
  return { mode, tunnelDeleted, lines };
}

/**
 * Process entry of `warren --uninstall`: logs JSON to stderr, prints the report to stdout, and resolves with the
 * exit code (0 done, including "kept"; errors are thrown for `main` to print). Bounded by
 * {@link UNINSTALL_TIMEOUT_MS}; SIGTERM or SIGINT abort it.
 */
export async function runUninstall(config: Readonly<Config>, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const logger = createLogger({
    level: config.logLevel,
    base: { app: 'warren', version: CORE_VERSION, command: 'uninstall' },
    destination: pino.destination({ fd: 2, sync: true }),
  });
  const shutdown = shutdownOnSignals(logger);
  try {
    const signal = AbortSignal.any([shutdown.signal, AbortSignal.timeout(UNINSTALL_TIMEOUT_MS)]);
    const report = await uninstall(config, { logger, signal });
    out.write(`${report.lines.join('\n')}\n`);
    return 0;
  } finally {
    shutdown.dispose();
  }
}

/**
 * The tunnels Warren created for Gateways (one per Gateway, see `GatewayTunnels`): deleted with their Secrets when
 * `cloudflare.deleteTunnelOnUninstall` is true, else reported as kept. Replicas still running do not replace them:
 * each Secret is marked before its tunnel is deleted, as for the main tunnel.
 */
async function uninstallGatewayTunnels(config: Readonly<Config>, kube: KubeClient, namespace: string, options: UninstallOptions): Promise<string[]> {
  const cf = config.cloudflare;
  const secrets = new KubernetesGatewayTunnelSecrets(kube, namespace, cf.credentialsSecretName);
  let found: Array<{ readonly name: string; readonly gateway: string | undefined }>;
  try {
    found = await secrets.list(options.signal);
  } catch (err) {
    if (cf.deleteTunnelOnUninstall) throw err;
    options.logger.warn({ err: { message: (err as Error).message } }, 'cannot list the Gateway tunnel Secrets');
    return [`The Gateway tunnels' Secrets of namespace ${namespace} could not be listed (see the log); their tunnels are kept.`];
  }
  if (found.length === 0) return [];
  const shown = found.map((s) => `${s.name}${s.gateway ? ` (Gateway ${s.gateway})` : ''}`).join(', ');
  if (!cf.deleteTunnelOnUninstall) {
    return [
      `Kept the tunnels of ${found.length} Gateway(s) and their credentials Secrets in ${namespace}: ${shown}. Deleting a Gateway while Warren runs deletes its tunnel; or set cloudflare.deleteTunnelOnUninstall=true and run \`warren --uninstall\` again.`,
    ];
  }
  const clientFactory = createCloudflareClientFactory({ config: cf, logger: options.logger, env: options.env ?? process.env });
  for (const secret of found) {
    const lifecycle = new TunnelLifecycle({
      config,
      logger: options.logger,
      clientFactory,
      secretStore: secrets.store(secret.name),
      leadership: ALWAYS_LEADING,
      env: options.env,
    });
    await lifecycle.deleteTunnel(options.signal);
  }
  return [`Deleted the tunnels of ${found.length} Gateway(s) (their connections first) and their credentials Secrets: ${shown}.`];
}

/**
 * The stored credentials: undefined when the Secret does not exist, null when it could not be read. Only a
 * deleting run lets a read failure through (it could not delete anything anyway); a keeping run reports it.
 */
async function readStored(store: CredentialsSecretStore, signal: AbortSignal, logger: Logger, mustRead: boolean): Promise<ManagedTunnelCredentials | undefined | null> {
  try {
    const json = (await store.read(signal))?.[CREDENTIALS_SECRET_KEY];
    return json ? parseCredentialsJson(json.toString('utf8'), `${store.description} key "${CREDENTIALS_SECRET_KEY}"`) : undefined;
  } catch (err) {
    if (mustRead) throw err;
    logger.warn({ err: { message: (err as Error).message } }, `cannot read ${store.description}`);
    return null;
  }
}

function describeTunnel(stored: ManagedTunnelCredentials | undefined | null, name: string | undefined, account: string | undefined): string {
  const shownName = stored?.tunnelName ?? name;
  return `the tunnel "${shownName}"${stored ? ` (${stored.tunnelId})` : ''} in account ${stored?.accountTag ?? account}`;
}
