import { rm } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { container as globalContainer, type DependencyContainer } from 'tsyringe';
import { createCloudflareClientFactory } from './cloudflare/client.js';
import { KubernetesCredentialsSecretStore, NoCredentialsSecretStore } from './cloudflare/secret-store.js';
import { TunnelLifecycle, tunnelMode, type ResolvedTunnel } from './cloudflare/tunnel-lifecycle.js';
import { runResolvedTunnel, type ConnectorSignals } from './cloudflare/tunnel-runner.js';
import { parseConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { TOKENS } from './di/tokens.js';
import { ErrorCode, isWarrenError, WarrenError } from './errors.js';
import { EdgeSimulator } from './edge-simulator/index.js';
import type { KubeClient } from './k8s/api/client.js';
import { createKubernetesControlPlane, podNamespace, type KubernetesControlPlane } from './k8s/control-plane.js';
import { managed, Manager, type ManagedRunnable } from './lifecycle/manager.js';
import { shutdownOnSignals } from './lifecycle/signals.js';
import { createFolderControlPlane, type FolderControlPlane } from './local/folder-control-plane.js';
import { HealthServer } from './observability/health-server.js';
import { componentLogger, createLogger } from './observability/logger.js';
import { createMetricsRegistry } from './observability/metrics.js';
import type { ControlPluginInstance } from './plugin-api/registered.js';
import type { EventSink, Runnable, SecretReader } from './plugin-api/lifecycle.js';
import { HttpEntry } from './proxy/http-entry.js';
import { Pipeline } from './proxy/pipeline.js';
import { loadBuiltinManifests } from './routes/plugins.js';
import { RouteTableBuilder, routeBuildSettings } from './routes/build.js';
import { RouteStore } from './routes/store.js';
import type { RouteTable } from './routes/types.js';
import { describeRouteTable, routeViewQuery } from './routes/debug-view.js';
import { registerPlugins, resolvePlugins, type PluginImporter } from './plugins/registry.js';
import { TunnelConnector } from './tunnel/connector.js';
import { describeCredentials, loadTunnelCredentials, makeCredentials, uuidToBytes, type TunnelCredentials } from './tunnel/credentials.js';
import { CORE_VERSION } from './version.js';

export interface RunOptions {
  /** Folder mode (`--local DIR`): manifests from a folder, no cluster; the built-in edge simulator when no tunnel is configured. */
  readonly local: boolean;
}

/** Everything `assembleWarren` wired, for `run`, local mode and end-to-end tests. */
export interface Warren {
  readonly config: Readonly<Config>;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly container: DependencyContainer;
  readonly manager: Manager;
  readonly health: HealthServer;
  readonly routes: RouteStore;
  readonly pipeline: Pipeline;
  /** Undefined when `tunnel.enabled` is false. */
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
  /** Releases what assembly acquired outside the manager (the local edge simulator). */
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
 * A listener that cannot bind, as one terminal error naming the address, the reason and the setting (flag) that
 * moves it; other errors pass unchanged.
 */
export function listenError(err: unknown, setting: string, address: string): unknown {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const why =
    code === 'EADDRINUSE' ? 'the port is already in use' : code === 'EACCES' ? 'permission denied' : code === 'EADDRNOTAVAIL' ? 'no such address on this machine' : undefined;
  if (!why) return err;
  const [host, port] = splitListen(address);
  const example = `${host.includes(':') ? `[${host}]` : host}:${Number(port) > 0 && Number(port) < 65535 ? Number(port) + 1 : 18080}`;
  return new WarrenError(ErrorCode.ConfigInvalid, `cannot listen on ${address} (${setting}): ${why}; choose another address with --set ${setting}=${example}`, {
    terminal: true,
    cause: err,
  });
}

/** `managed(…)` for a server whose listen failure becomes {@link listenError}. */
function listener(name: string, runnable: Runnable, setting: string, address: string): ManagedRunnable {
  const m = managed(name, 'servers', runnable);
  return {
    ...m,
    start: (signal) =>
      m.start(signal).catch((err: unknown) => {
        throw listenError(err, setting, address);
      }),
  };
}

/**
 * Wires every component (architecture §3.2):
 *   settings → plugin registry → root container → object source (informers or folder) → route sync →
 *   route store → proxy pipeline ← tunnel connector (and the optional plain-HTTP entry point),
 * plus the health/metrics server, leader election and leader-only work in Kubernetes mode.
 * Nothing starts listening or connecting until `run`, except the demo's edge simulator (folder mode without a tunnel).
 */
export async function assembleWarren(config: Readonly<Config>, options: AssembleOptions = {}): Promise<Warren> {
  // What assembly acquired (the demo's edge simulator, the API client) is released when a later step fails.
  const acquired: Array<() => Promise<void>> = [];
  try {
    return await assemble(config, options, acquired);
  } catch (err) {
    for (const release of acquired.reverse()) await release().catch(() => undefined);
    throw err;
  }
}

async function assemble(config: Readonly<Config>, options: AssembleOptions, acquired: Array<() => Promise<void>>): Promise<Warren> {
  const env = options.env ?? process.env;
  const logger = options.logger ?? createLogger({ level: config.logLevel });
  const local = options.local === true || config.source.kind === 'folder';
  if (local && !config.source.folder) {
    throw new WarrenError(ErrorCode.ConfigInvalid, 'setting "source.folder" is required when source.kind is "folder"', { terminal: true });
  }

  const plugins = await resolvePlugins(config, options.importer);
  const manifests = plugins.map((p) => p.module.manifest);
  const known = await loadBuiltinManifests(options.importer);
  const registry = createMetricsRegistry({ defaultMetrics: true });
  const routes = new RouteStore(undefined, (err) => logger.error({ err }, 'route table listener failed'));
  const buildSettings = routeBuildSettings(config, manifests, known);
  const builder = new RouteTableBuilder(buildSettings);

  let simulator: EdgeSimulator | undefined;
  let effective = config;
  let credentials: TunnelCredentials | undefined;
  const folderEdge = local ? folderModeEdge(config, env) : undefined;
  if (folderEdge === 'simulator') {
    ({ simulator, config: effective, credentials } = await startLocalEdge(config, logger));
    const started = simulator;
    acquired.push(() => closeLocalEdge(started));
  } else if (local) {
    effective = folderModeConfig(config);
  }

  const root = globalContainer.createChildContainer();
  root.register(TOKENS.Config, { useValue: effective });
  root.register(TOKENS.Logger, { useValue: logger });
  root.register(TOKENS.Metrics, { useValue: registry });
  root.register(TOKENS.RouteStore, { useValue: routes });
  const cloudflare = createCloudflareClientFactory({ settings: effective.cloudflare, logger, env, registry });
  root.register(TOKENS.CloudflareClient, { useValue: cloudflare });
  registerPlugins(root, plugins);

  const health = new HealthServer({ listen: effective.server.listen, registry, logger: componentLogger(logger, 'health') });
  if (effective.server.debugRoutes) health.serveRouteView((query) => describeRouteTable(routes.current, buildSettings.plugins, routeViewQuery(query)));
  let controlPlane: KubernetesControlPlane | undefined;
  let folderPlane: FolderControlPlane | undefined;
  let tunnelId: string | undefined = credentials ? credentials.tunnelId : undefined;
  /** Managed tunnels replaced before the current one (bound to the tunnel lifecycle below, when there is one). */
  let replacedTunnelIds: () => readonly string[] = () => [];
  let secrets: SecretReader;
  let events: EventSink;
  const runnables: ManagedRunnable[] = [];
  const controlPlugins = root.isRegistered(TOKENS.ControlPlugin, true) ? root.resolveAll(TOKENS.ControlPlugin) : [];
  if (simulator && controlPlugins.length) {
    throw new WarrenError(
      ErrorCode.ConfigInvalid,
      `plugin ${controlPlugins.map((p) => p.id).join(', ')} changes Cloudflare for a real tunnel, but no tunnel is configured and the built-in edge simulator's tunnel does not exist in Cloudflare: give a tunnel token (env TUNNEL_TOKEN or tunnel.tokenFile) or tunnel.credentialsFile, or disable the plugin`,
      { terminal: true },
    );
  }

  if (local) {
    folderPlane = createFolderControlPlane({ config: effective, logger, registry, routeBuilder: builder, routeStore: routes, controlPlugins, tunnelId: () => tunnelId });
    secrets = folderPlane.secrets;
    events = folderPlane.events;
    runnables.push(...folderPlane.runnables);
    health.addReadinessCheck('caches', folderPlane.readiness.caches);
  } else {
    controlPlane = createKubernetesControlPlane({
      config: effective,
      logger,
      registry,
      routeBuilder: builder,
      routeStore: routes,
      client: options.kubeClient,
      controlPlugins,
      watchSecrets: manifests.some((m) => m.annotations?.some((a) => a.secretRef)),
      tunnelId: () => tunnelId,
      formerTunnelIds: () => replacedTunnelIds(),
      identity: options.identity,
      env,
    });
    if (!options.kubeClient) {
      const client = controlPlane.client;
      acquired.push(() => client.close());
    }
    // Every Cloudflare write of a replica is leader-only work: fenced by the Lease like its Kubernetes writes.
    if (controlPlane.elector) cloudflare.fenceWrites(controlPlane.elector.fence);
    secrets = controlPlane.secrets;
    events = controlPlane.events;
    runnables.push(...controlPlane.runnables);
    health.addReadinessCheck('caches', controlPlane.readiness.caches);
  }
  if (controlPlugins.length) runnables.push(controlPluginLifecycle(controlPlugins, logger, secrets, events));
  const refreshTunnelId = (): void => {
    controlPlane?.refreshTunnelId();
    folderPlane?.refreshTunnelId();
  };
  root.register(TOKENS.Secrets, { useValue: secrets });
  root.register(TOKENS.Events, { useValue: events });

  const pipeline = new Pipeline({ container: root, config: effective, logger, metrics: registry, secrets, events, routes });
  root.register(TOKENS.ExchangeHandler, { useValue: pipeline });

  let connector: TunnelConnector | undefined;
  if (effective.tunnel.enabled) {
    // A supplied token or credentials file is followed when it changes, in a cluster and in folder mode alike;
    // only the managed tunnel of a cluster keeps credentials in a Secret (folder mode refused one above).
    const lifecycle =
      (controlPlane && !credentials) || folderEdge === 'tunnel'
        ? new TunnelLifecycle({
            config: effective,
            logger,
            clientFactory: cloudflare,
            secretStore: controlPlane
              ? new KubernetesCredentialsSecretStore(controlPlane.leaderClient, podNamespace(env), effective.cloudflare.credentialsSecretName)
              : new NoCredentialsSecretStore(),
            isLeader: () => controlPlane?.elector?.isLeader ?? true,
            env,
            existenceCheckMs: effective.cloudflare.tunnelCheckInterval,
            replacementCheckMs: Math.min(30_000, effective.cloudflare.tunnelCheckInterval),
          })
        : undefined;
    if (lifecycle) replacedTunnelIds = () => lifecycle.replacedTunnelIds;
    // Folder mode reads the supplied credentials now too: a bad token fails the start, and the startup line names the tunnel.
    if (!credentials && (!lifecycle || folderEdge === 'tunnel')) credentials = loadTunnelCredentials(effective.tunnel, env);
    if (credentials) tunnelId = credentials.tunnelId;
    const connectorLogger = logger;
    const makeConnector = (creds: TunnelCredentials | undefined): TunnelConnector =>
      new TunnelConnector({ settings: effective, handler: pipeline, logger: connectorLogger, registry, env, ...(creds ? { credentials: creds } : {}) });
    connector = lifecycle ? undefined : makeConnector(credentials);
    const tunnelRunnable: ManagedRunnable = lifecycle
      ? {
          name: 'tunnel',
          group: 'servers',
          needsLeader: false,
          async start(signal) {
            const initial = await lifecycle.resolve(signal);
            if (initial.mode === 'disabled') return;
            const runConnector = (tunnel: ResolvedTunnel, run: AbortSignal, signals: ConnectorSignals): Promise<void> => {
              const creds = tunnel.mode === 'managed' ? toTunnelCredentials(tunnel.credentials) : loadTunnelCredentials(effective.tunnel, env);
              tunnelId = creds.tunnelId;
              refreshTunnelId();
              lateConnector = makeConnector(creds);
              lateConnector.onCredentialsRefused(() => signals.credentialsRefused());
              return lateConnector.start(run);
            };
            await runResolvedTunnel({ lifecycle, initial, runConnector, logger }, signal);
          },
        }
      : managed('tunnel', 'servers', connector!);
    let lateConnector: TunnelConnector | undefined;
    runnables.push(tunnelRunnable);
    health.addReadinessCheck('tunnel', () => {
      const c = connector ?? lateConnector;
      return c && c.registeredConnections > 0 ? true : 'no registered tunnel connection';
    });
    refreshTunnelId();
  }
  if (folderEdge) logFolderModeEdge(logger, folderEdge, effective, simulator, credentials);

  const httpEntry = effective.server.proxyListen
    ? new HttpEntry({ handler: pipeline, listen: effective.server.proxyListen, logger: componentLogger(logger, 'http-entry') })
    : undefined;

  const manager = new Manager({ logger: componentLogger(logger, 'manager'), shutdownGracePeriodMs: effective.shutdownGracePeriod, elector: controlPlane?.elector });
  health.addReadinessCheck('manager', manager.readinessCheck);
  manager.add(listener('health', health, 'server.listen', effective.server.listen));
  if (httpEntry) manager.add(listener('http-entry', httpEntry, 'server.proxyListen', effective.server.proxyListen!));
  for (const r of runnables) manager.add(r);

  return {
    config: effective,
    logger,
    registry,
    container: root,
    manager,
    health,
    routes,
    pipeline,
    get connector() {
      return connector;
    },
    httpEntry,
    controlPlane,
    folderPlane,
    simulator,
    async run(signal) {
      // The pipeline is not a manager runnable: it must outlive every acceptor. The tunnel connector and the
      // entry point (servers group, stopped last) drain their in-flight exchanges through it; only then is it
      // closed, so a request the edge sends while it processes our unregistration is still served.
      const unfollow = pipeline.follow(routes);
      try {
        await manager.run(signal);
      } finally {
        unfollow();
        await pipeline.close(2_000);
      }
    },
    async close() {
      if (simulator) await closeLocalEdge(simulator);
      if (controlPlane && !options.kubeClient) await controlPlane.client.close();
      await root.dispose();
    },
  };
}

/**
 * What carries requests into a folder-mode Warren: the tunnel the settings supply (token or credentials file,
 * exactly as in Kubernetes mode), nothing (`tunnel.enabled` false), or — when no tunnel is configured — the
 * built-in edge simulator (the demo). A managed tunnel needs a cluster Secret to keep its credentials in, so folder
 * mode refuses it.
 */
export type FolderModeEdge = 'tunnel' | 'simulator' | 'none';

export function folderModeEdge(config: Readonly<Config>, env: NodeJS.ProcessEnv): FolderModeEdge {
  let mode;
  try {
    mode = tunnelMode(config, env);
  } catch (err) {
    // No tunnel at all is the demo; a half-configured managed tunnel is refused below, never silently simulated.
    if (!isWarrenError(err, ErrorCode.ConfigInvalid)) throw err;
    if (config.cloudflare.tunnelName) throw refuseManagedTunnel();
    return 'simulator';
  }
  if (mode === 'disabled') return 'none';
  if (mode === 'supplied') return 'tunnel';
  throw refuseManagedTunnel();
}

function refuseManagedTunnel(): WarrenError {
  return new WarrenError(
    ErrorCode.ConfigInvalid,
    'folder mode cannot run a managed tunnel (cloudflare.tunnelName): its credentials are kept in a cluster Secret. Give the tunnel\'s token (env TUNNEL_TOKEN or tunnel.tokenFile) or tunnel.credentialsFile instead',
    { terminal: true },
  );
}

/** Folder mode's settings: no leader election (one process leads), and health on loopback unless chosen. */
function folderModeConfig(config: Readonly<Config>, tunnel: Partial<Config['tunnel']> = {}): Readonly<Config> {
  return parseConfig({
    ...config,
    tunnel: { ...config.tunnel, ...tunnel },
    kubernetes: { ...config.kubernetes, leaderElection: { ...config.kubernetes.leaderElection, enabled: false } },
    // A laptop run keeps its health and metrics endpoint on loopback unless the user chose an address.
    server: { ...config.server, listen: config.server.listen === DEFAULT_SERVER_LISTEN ? '127.0.0.1:10254' : config.server.listen },
  });
}

/**
 * The demo's edge: the built-in edge simulator on loopback with fresh credentials and its own CA, its eyeball
 * entrance on `local.eyeballListen`, and the connector pointed at it (one edge listener per HA connection).
 */
async function startLocalEdge(config: Readonly<Config>, logger: Logger): Promise<{ simulator: EdgeSimulator; config: Readonly<Config>; credentials: TunnelCredentials }> {
  const [host, portText] = splitListen(config.local.eyeballListen);
  const simulator = new EdgeSimulator({
    edgeListeners: config.tunnel.haConnections,
    eyeball: { host, port: Number(portText) },
    logger: componentLogger(logger, 'edge-simulator'),
  });
  try {
    await simulator.start();
  } catch (err) {
    await closeLocalEdge(simulator);
    throw listenError(err, 'local.eyeballListen', config.local.eyeballListen);
  }
  const effective = folderModeConfig(config, { enabled: true, edgeAddresses: [...simulator.edgeAddresses], edgeCaFile: simulator.caFile });
  return { simulator, config: effective, credentials: toTunnelCredentials(simulator.credentials) };
}

/** Stops the demo's simulator and removes its files (CA key, tunnel token): nothing of a run stays in the temp folder. */
async function closeLocalEdge(simulator: EdgeSimulator): Promise<void> {
  await simulator.close();
  await rm(simulator.ca.dir, { recursive: true, force: true });
}

/** The startup line that says what carries requests in folder mode. */
function logFolderModeEdge(logger: Logger, edge: FolderModeEdge, config: Readonly<Config>, simulator: EdgeSimulator | undefined, credentials: TunnelCredentials | undefined): void {
  const folder = config.source.folder;
  if (edge === 'simulator') {
    logger.info(
      { edge: 'simulator', folder, eyeball: simulator!.eyeballUrl },
      'folder mode with the built-in edge simulator (demo): no tunnel is configured, so requests enter the simulator and cross a simulated tunnel',
    );
  } else if (edge === 'tunnel') {
    const t = config.tunnel;
    logger.info(
      {
        edge: 'cloudflare',
        folder,
        ...(credentials ? describeCredentials(credentials) : {}),
        edgeAddresses: t.edgeAddresses.length ? t.edgeAddresses : 'discovered by DNS',
        haConnections: t.haConnections,
      },
      'folder mode on the configured tunnel: connecting to the edge; no edge simulator',
    );
  } else {
    logger.info({ edge: 'none', folder, proxyListen: config.server.proxyListen }, 'folder mode without a tunnel (tunnel.enabled is false): requests enter only through server.proxyListen');
  }
}

/** Credentials from the tunnel lifecycle or the simulator, in the connector's shape. */
function toTunnelCredentials(c: { accountTag: string; tunnelSecret: Buffer; tunnelId: string; endpoint?: string | undefined }): TunnelCredentials {
  const bytes = uuidToBytes(c.tunnelId);
  if (!bytes) throw new WarrenError(ErrorCode.TunnelCredentials, `tunnel id "${c.tunnelId}" is not a UUID`, { terminal: true });
  return makeCredentials(c.accountTag, c.tunnelSecret, { text: c.tunnelId.toLowerCase(), bytes }, c.endpoint);
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
  process.stderr.write(lines.join('\n') + '\n');
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

const DEFAULT_SERVER_LISTEN = '0.0.0.0:10254';

function splitListen(listen: string): [string, string] {
  const i = listen.lastIndexOf(':');
  return [listen.slice(0, i).replace(/^\[|\]$/g, ''), listen.slice(i + 1)];
}

/** Provisions and validates the control plugins (DNS, firewall) while leading; disposes them when not. */
function controlPluginLifecycle(plugins: readonly ControlPluginInstance[], logger: Logger, secrets: SecretReader, events: EventSink): ManagedRunnable {
  return {
    name: 'control-plugin-lifecycle',
    needsLeader: false,
    group: 'others',
    async start(signal) {
      for (const plugin of plugins) {
        await plugin.provision?.({ logger: componentLogger(logger, 'plugin', { plugin: plugin.id }), signal, secrets, events });
        await plugin.validate?.();
      }
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      for (const plugin of plugins) await plugin.dispose?.();
    },
  };
}
