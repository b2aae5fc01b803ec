import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { DependencyContainer, InjectionToken } from 'tsyringe';
import { FOLDER, provideFolder } from './composition/folder.js';
import type { KubernetesControlPlane } from './composition/kubernetes.js';
import { closeLocalEdge, folderModeConfig, folderModeEdge, logFolderModeEdge, startLocalEdge, type FolderModeEdge } from './composition/local-edge.js';
import { createRootContainer } from './composition/root.js';
import { HTTP_ENTRY, PIPELINE, provideProxy, provideServers } from './composition/servers.js';
import { provideTunnel, TUNNEL } from './composition/tunnel.js';
import type { Config } from './config/schema.js';
import { KUBERNETES, PARTS, provideRunnable, Resources } from './composition/parts.js';
import { TOKENS } from './di/tokens.js';
import type { EdgeSimulator } from './edge-simulator/index.js';
import { ErrorCode, isWarrenError, WarrenError } from './errors.js';
import type { KubeClient } from './k8s/api/client.js';
import type { Manager } from './lifecycle/manager.js';
import { shutdownOnSignals } from './lifecycle/signals.js';
import type { FolderControlPlane } from './local/folder-control-plane.js';
import type { HealthServer } from './observability/health-server.js';
import { createLogger } from './observability/logger.js';
import { createMetricsRegistry } from './observability/metrics.js';
import { resolvePlugins, type PluginImporter } from './plugins/registry.js';
import type { HttpEntry } from './proxy/http-entry.js';
import type { Pipeline } from './proxy/pipeline.js';
import { ControlPluginLifecycle } from './reconcile/control-plugins.js';
import { loadBuiltinManifests } from './plugins/builtin.js';
import type { RouteStore } from './routes/store.js';
import type { RouteTable } from './routes/types.js';
import type { TunnelConnector } from './tunnel/connector.js';
import type { TunnelCredentials } from './tunnel/credentials.js';
import { CORE_VERSION } from './version.js';

export { listenError } from './composition/listen.js';
export { folderModeEdge, type FolderModeEdge } from './composition/local-edge.js';

export interface RunOptions {
  /** Folder mode (`--local DIR`): manifests from a folder, no cluster; the built-in edge simulator when no tunnel is configured. */
  readonly local: boolean;
}

/** Everything `assembleWarren` wired, for `run`, local mode and end-to-end tests. */
export interface Warren {
  readonly config: Readonly<Config>;
  readonly logger: Logger;
  readonly registry: Registry;
  /** The container Warren was assembled in. */
  readonly container: DependencyContainer;
  readonly manager: Manager;
  readonly health: HealthServer;
  readonly routes: RouteStore;
  readonly pipeline: Pipeline;
  /** The connector running now; undefined when `tunnel.enabled` is false or before it started. */
  readonly connector: TunnelConnector | undefined;
  /** Present with `server.proxyListen`. */
  readonly httpEntry: HttpEntry | undefined;
  /** Present in Kubernetes mode. */
  readonly controlPlane: KubernetesControlPlane | undefined;
  /** Present in folder mode. */
  readonly folderPlane: FolderControlPlane | undefined;
  /** Present in folder mode when no tunnel is configured (the demo). */
  readonly simulator: EdgeSimulator | undefined;
  /** Runs until `signal` aborts, then stops in order; rejects when a component fails. */
  run(signal: AbortSignal): Promise<void>;
  /** Releases what assembly acquired outside the manager (the API client it built, the local edge simulator). */
  close(): Promise<void>;
}

export interface AssembleOptions {
  readonly local?: boolean | undefined;
  readonly logger?: Logger | undefined;
  readonly env?: NodeJS.ProcessEnv | undefined;
  /** Loads plugin packages; tests inject modules that are not installed packages. */
  readonly importer?: PluginImporter | undefined;
  /** Kubernetes mode: lease holder identity (default pod name + random suffix). */
  readonly identity?: string | undefined;
  /** Kubernetes mode: API client (default: built from `kubernetes.kubeconfig` / in-cluster, closed by `close()`). */
  readonly kubeClient?: KubeClient | undefined;
}

/**
 * Process entry for the controller: assembles Warren and runs it until SIGTERM or SIGINT. Resolves with the
 * exit code: 0 after a graceful stop, 1 when a component failed.
 */
export async function run(config: Readonly<Config>, options: RunOptions): Promise<number> {
  const logger = createLogger({ level: config.logLevel, base: { app: 'warren', version: CORE_VERSION } });
  const shutdown = shutdownOnSignals(logger);
  let warren: Warren | undefined;
  let running = false;
  try {
    warren = await assembleWarren(config, { local: options.local, logger });
    const done = warren.run(shutdown.signal);
    running = true;
    if (warren.simulator) {
      const stopped = new AbortController();
      void done.finally(() => stopped.abort()).catch(() => undefined);
      void announceLocalMode(warren, AbortSignal.any([shutdown.signal, stopped.signal]));
    }
    await done;
    logger.info('stopped');
    return 0;
  } catch (err) {
    // One log record per failure: the manager already logged a component's failure (naming the component, with
    // code and cause); a failure to assemble is logged here. The line on stderr is the human summary.
    if (!running) logger.fatal({ err }, 'warren could not start');
    process.stderr.write(`warren: ${describeFailure(err)}\n`);
    return 1;
  } finally {
    await warren?.close();
    shutdown.dispose();
    logger.flush?.();
  }
}

/** One line for a human: the code and the message of a WarrenError, else the error's code and message. */
function describeFailure(err: unknown): string {
  if (isWarrenError(err)) return `${err.code}: ${err.message}`;
  const e = err as { code?: unknown; message?: unknown } | undefined;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  return typeof e?.code === 'string' && !message.includes(e.code) ? `${e.code}: ${message}` : message;
}

/**
 * Assembles Warren in a container:
 *   settings → plugin registry → root container → object source (informers or folder) → route sync →
 *   route store → proxy pipeline ← tunnel connector (and the optional plain-HTTP entry point),
 * plus the health/metrics server, leader election and leader-only work in Kubernetes mode. Each area's provider
 * (`core/src/composition/`) registers its parts; the manager takes every runnable part.
 * Nothing starts listening or connecting until `run`, except the demo's edge simulator (folder mode without a tunnel).
 */
export async function assembleWarren(config: Readonly<Config>, options: AssembleOptions = {}): Promise<Warren> {
  // What assembly acquired (the demo's edge simulator, the API client) is released when a later step fails.
  const resources = new Resources();
  try {
    return await assemble(config, options, resources);
  } catch (err) {
    await resources.release();
    throw err;
  }
}

async function assemble(config: Readonly<Config>, options: AssembleOptions, resources: Resources): Promise<Warren> {
  const env = options.env ?? process.env;
  const logger = options.logger ?? createLogger({ level: config.logLevel });
  const local = options.local === true || config.source.kind === 'folder';
  if (local && !config.source.folder) {
    throw new WarrenError(ErrorCode.ConfigInvalid, 'setting "source.folder" is required when source.kind is "folder"', { terminal: true });
  }
  const plugins = await resolvePlugins(config, options.importer);
  const knownManifests = await loadBuiltinManifests(options.importer);
  const edge = local ? await folderEdge(config, env, logger, resources) : undefined;
  const effective = edge?.config ?? config;

  const container = createRootContainer(effective, { logger, registry: createMetricsRegistry({ defaultMetrics: true }), env, plugins, knownManifests });
  container.register(PARTS.Resources, { useValue: resources });
  if (options.kubeClient) container.register(PARTS.KubeClient, { useValue: options.kubeClient });
  if (options.identity !== undefined) container.register(PARTS.Identity, { useValue: options.identity });
  if (edge?.simulator) refuseControlPlugins(container);
  if (local) provideFolder(container);
  // Loaded only in Kubernetes mode: folder mode never runs the API client, informers, leader election or writers.
  else (await import('./composition/kubernetes.js')).provideKubernetes(container);
  provideServers(container);
  provideProxy(container);
  provideRunnable(
    container,
    'control-plugin-lifecycle',
    (c) => new ControlPluginLifecycle({ plugins: c.resolve(PARTS.ControlPlugins), logger, secrets: c.resolve(TOKENS.Secrets), events: c.resolve(TOKENS.Events) }),
  );
  const credentials = provideTunnel(container, { credentials: edge?.credentials, cluster: !local });
  if (edge) logFolderModeEdge(logger, edge.kind, effective, edge.simulator, credentials);
  return warren(container, edge?.simulator);
}

/** The parts of an assembled container, and how to run and release them. */
function warren(container: DependencyContainer, simulator: EdgeSimulator | undefined): Warren {
  const manager = container.resolve(PARTS.Manager); // builds every runnable part: assembly errors surface here
  const part = <T>(token: InjectionToken<T>): T | undefined => (container.isRegistered(token, true) ? container.resolve(token) : undefined);
  const tunnel = part(TUNNEL);
  return {
    config: container.resolve(TOKENS.Config),
    logger: container.resolve(TOKENS.Logger),
    registry: container.resolve(TOKENS.Metrics),
    container,
    manager,
    health: container.resolve(PARTS.Health),
    routes: container.resolve(TOKENS.RouteStore),
    pipeline: container.resolve(PIPELINE),
    get connector() {
      return tunnel?.connector;
    },
    httpEntry: part(HTTP_ENTRY),
    controlPlane: part(KUBERNETES),
    folderPlane: part(FOLDER),
    simulator,
    run: (signal) => manager.run(signal),
    async close() {
      await container.resolve(PARTS.Resources).release();
      await container.dispose();
    },
  };
}

/** Control plugins change Cloudflare for a real tunnel: refused on the demo's simulated one. */
function refuseControlPlugins(container: DependencyContainer): void {
  const controlPlugins = container.resolve(PARTS.ControlPlugins);
  if (!controlPlugins.length) return;
  throw new WarrenError(
    ErrorCode.ConfigInvalid,
    `plugin ${controlPlugins.map((p) => p.id).join(', ')} changes Cloudflare for a real tunnel, but no tunnel is configured and the built-in edge simulator's tunnel does not exist in Cloudflare: give a tunnel token (env TUNNEL_TOKEN or tunnel.tokenFile) or tunnel.credentialsFile, or disable the plugin`,
    { terminal: true },
  );
}

/** Folder mode's edge (see {@link folderModeEdge}) and the settings it runs with; the demo's simulator is started now. */
async function folderEdge(
  config: Readonly<Config>,
  env: NodeJS.ProcessEnv,
  logger: Logger,
  resources: Resources,
): Promise<{ kind: FolderModeEdge; config: Readonly<Config>; simulator?: EdgeSimulator; credentials?: TunnelCredentials }> {
  const kind = folderModeEdge(config, env);
  if (kind !== 'simulator') return { kind, config: folderModeConfig(config) };
  const started = await startLocalEdge(config, logger);
  resources.add(() => closeLocalEdge(started.simulator));
  return { kind, ...started };
}

/** Once Warren is ready (routes built, tunnel registered), tells the user where to point curl or a browser. */
async function announceLocalMode(warren: Warren, signal: AbortSignal): Promise<void> {
  while (!signal.aborted && warren.health.readiness() !== true) await new Promise((resolve) => setTimeout(resolve, 50));
  if (signal.aborted) return;
  const url = warren.simulator!.eyeballUrl;
  const folder = warren.config.source.folder;
  const examples = examplePaths(warren.routes.current);
  const lines = [
    '',
    `Warren is running in local mode on the manifests in ${folder}.`,
    `Requests enter the built-in edge simulator at ${url} and travel the tunnel to Warren, then to the Services.`,
    ...(examples.length ? examples.map(([host, path]) => `  curl -H 'Host: ${host}' ${url}${path}`) : [`  (no Ingress routes yet: add manifests to ${folder})`]),
    `Edit the manifests in ${folder} to change routing live. Ctrl-C stops.`,
    '',
  ];
  process.stderr.write(`${lines.join('\n')}\n`);
}

/** One request path per exact host that the table routes: `/` when routed, else the host's shortest rule path. */
export function examplePaths(table: RouteTable): Array<[host: string, path: string]> {
  const best = new Map<string, string>();
  for (const route of table.routes) {
    if (!route.host || route.host.startsWith('*')) continue;
    const known = best.get(route.host);
    if (known === undefined || route.path.length < known.length || (route.path.length === known.length && route.path < known)) best.set(route.host, route.path);
  }
  return [...best].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}
