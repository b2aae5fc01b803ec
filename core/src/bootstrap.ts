import { writeFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { container as globalContainer, type DependencyContainer } from 'tsyringe';
import { createCloudflareClientFactory } from './cloudflare/client.js';
import { KubernetesCredentialsSecretStore } from './cloudflare/secret-store.js';
import { TunnelLifecycle, type ResolvedTunnel } from './cloudflare/tunnel-lifecycle.js';
import { runResolvedTunnel } from './cloudflare/tunnel-runner.js';
import { parseConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { TOKENS } from './di/tokens.js';
import { ErrorCode, isWarrenError, WarrenError } from './errors.js';
import { startEdgeSimulator, type EdgeSimulator } from './edge-simulator/index.js';
import type { KubeClient } from './k8s/api/client.js';
import { createKubernetesControlPlane, podNamespace, type KubernetesControlPlane } from './k8s/control-plane.js';
import { managed, Manager, type ManagedRunnable } from './lifecycle/manager.js';
import { shutdownOnSignals } from './lifecycle/signals.js';
import { FolderSource } from './local/folder-source.js';
import { HealthServer } from './observability/health-server.js';
import { componentLogger, createLogger } from './observability/logger.js';
import { createMetricsRegistry } from './observability/metrics.js';
import type { ControlPlugin } from './plugin-api/control.js';
import type { EventSink, SecretReader } from './plugin-api/lifecycle.js';
import { HttpEntry } from './proxy/http-entry.js';
import { Pipeline } from './proxy/pipeline.js';
import { RouteSync } from './reconcile/route-sync.js';
import { loadBuiltinManifests } from './routes/plugins.js';
import { RouteTableBuilder, routeBuildSettings } from './routes/build.js';
import { RouteStore } from './routes/store.js';
import { registerPlugins, resolvePlugins, type PluginImporter } from './plugins/registry.js';
import { TunnelConnector } from './tunnel/connector.js';
import { loadTunnelCredentials, makeCredentials, uuidToBytes, type TunnelCredentials } from './tunnel/credentials.js';
import { CORE_VERSION } from './version.js';

export interface RunOptions {
  /** Local mode: folder source, built-in edge simulator as the entrance, no cluster, no Cloudflare account. */
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
  /** Present in local mode. */
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
  try {
    warren = await assembleWarren(config, { local: options.local, logger });
    const running = warren.run(shutdown.signal);
    if (warren.simulator) void announceLocalMode(warren, shutdown.signal);
    await running;
    logger.info('stopped');
    return 0;
  } catch (err) {
    if (isWarrenError(err) && err.terminal) {
      // Bad settings or input: one clear line for a human (and the log), no stack trace.
      logger.fatal({ code: err.code }, err.message);
      process.stderr.write(`warren: ${err.code}: ${err.message}\n`);
    } else {
      logger.fatal({ err }, 'warren stopped on an error');
    }
    return 1;
  } finally {
    await warren?.close();
    shutdown.dispose();
    logger.flush?.();
  }
}

/**
 * Wires every component (architecture §3.2):
 *   settings → plugin registry → root container → object source (informers or folder) → route sync →
 *   route store → proxy pipeline ← tunnel connector (and the optional plain-HTTP entry point),
 * plus the health/metrics server, leader election and leader-only work in Kubernetes mode.
 * Nothing starts listening or connecting until `run`, except the local edge simulator.
 */
export async function assembleWarren(config: Readonly<Config>, options: AssembleOptions = {}): Promise<Warren> {
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
  const builder = new RouteTableBuilder(routeBuildSettings(config, manifests, known));

  let simulator: EdgeSimulator | undefined;
  let effective = config;
  let credentials: TunnelCredentials | undefined;
  if (local) {
    ({ simulator, config: effective, credentials } = await startLocalEdge(config, logger));
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
  let controlPlane: KubernetesControlPlane | undefined;
  let tunnelId: string | undefined = credentials ? credentials.tunnelId : undefined;
  /** Managed tunnels replaced before the current one (bound to the tunnel lifecycle below, when there is one). */
  let replacedTunnelIds: () => readonly string[] = () => [];
  let secrets: SecretReader;
  let events: EventSink;
  const runnables: ManagedRunnable[] = [];

  if (local) {
    const folder = new FolderSource({ folder: effective.source.folder!, logger: componentLogger(logger, 'folder-source') });
    secrets = folder.secrets;
    events = loggingEventSink(componentLogger(logger, 'events'));
    runnables.push(managed('folder-source', 'caches', folder, { waitForSync: (s) => folder.waitForSync(s) }));
    runnables.push(
      managed('route-sync', 'others', new RouteSync({ source: folder, builder, store: routes, logger: componentLogger(logger, 'routes'), coalesceMs: effective.kubernetes.resyncBurstWindow })),
    );
  } else {
    const controlPlugins = root.isRegistered(TOKENS.ControlPlugin, true) ? (root.resolveAll(TOKENS.ControlPlugin) as ControlPlugin[]) : [];
    controlPlane = createKubernetesControlPlane({
      config: effective,
      logger,
      registry,
      routeBuilder: builder,
      routeStore: routes,
      client: options.kubeClient,
      controlPlugins,
      tunnelId: () => tunnelId,
      formerTunnelIds: () => replacedTunnelIds(),
      identity: options.identity,
      env,
    });
    secrets = controlPlane.secrets;
    events = controlPlane.events;
    runnables.push(...controlPlane.runnables);
    health.addReadinessCheck('caches', controlPlane.readiness.caches);
    if (controlPlugins.length) runnables.push(controlPluginLifecycle(controlPlugins, logger, secrets, events));
  }
  root.register(TOKENS.Secrets, { useValue: secrets });
  root.register(TOKENS.Events, { useValue: events });

  const pipeline = new Pipeline({ container: root, config: effective, logger, metrics: registry, secrets, events, routes });
  root.register(TOKENS.ExchangeHandler, { useValue: pipeline });

  let connector: TunnelConnector | undefined;
  if (effective.tunnel.enabled) {
    const lifecycle =
      controlPlane && !credentials
        ? new TunnelLifecycle({
            config: effective,
            logger,
            clientFactory: cloudflare,
            secretStore: new KubernetesCredentialsSecretStore(controlPlane.leaderClient, podNamespace(env), effective.cloudflare.credentialsSecretName),
            isLeader: () => controlPlane!.elector?.isLeader ?? true,
            env,
            existenceCheckMs: effective.cloudflare.tunnelCheckInterval,
            replacementCheckMs: Math.min(30_000, effective.cloudflare.tunnelCheckInterval),
          })
        : undefined;
    if (lifecycle) replacedTunnelIds = () => lifecycle.replacedTunnelIds;
    if (!credentials && !lifecycle) credentials = loadTunnelCredentials(effective.tunnel, env);
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
            const runConnector = (tunnel: ResolvedTunnel, run: AbortSignal): Promise<void> => {
              const creds = tunnel.mode === 'managed' ? toTunnelCredentials(tunnel.credentials) : loadTunnelCredentials(effective.tunnel, env);
              tunnelId = creds.tunnelId;
              controlPlane?.refreshTunnelId();
              lateConnector = makeConnector(creds);
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
    controlPlane?.refreshTunnelId();
  }

  const httpEntry = effective.server.proxyListen
    ? new HttpEntry({ handler: pipeline, listen: effective.server.proxyListen, logger: componentLogger(logger, 'http-entry') })
    : undefined;

  const manager = new Manager({ logger: componentLogger(logger, 'manager'), shutdownGracePeriodMs: effective.shutdownGracePeriod, elector: controlPlane?.elector });
  health.addReadinessCheck('manager', manager.readinessCheck);
  manager.add(managed('health', 'servers', health));
  if (httpEntry) manager.add(managed('http-entry', 'servers', httpEntry));
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
      await simulator?.close();
      if (controlPlane && !options.kubeClient) await controlPlane.client.close();
      await root.dispose();
    },
  };
}

/**
 * Local mode's edge: the built-in edge simulator on loopback with fresh credentials and a test CA, its eyeball
 * entrance on `local.eyeballListen`, and the connector pointed at it (one edge listener per HA connection).
 */
async function startLocalEdge(config: Readonly<Config>, logger: Logger): Promise<{ simulator: EdgeSimulator; config: Readonly<Config>; credentials: TunnelCredentials }> {
  const [host, portText] = splitListen(config.local.eyeballListen);
  const simulator = await startEdgeSimulator({
    edgeListeners: config.tunnel.haConnections,
    eyeball: { host, port: Number(portText) },
    logger: componentLogger(logger, 'edge-simulator'),
  });
  const dir = mkdtempSync(join(tmpdir(), 'warren-local-'));
  const caFile = join(dir, 'edge-ca.pem');
  writeFileSync(caFile, simulator.caPem);
  const effective = parseConfig({
    ...config,
    tunnel: { ...config.tunnel, enabled: true, edgeAddresses: simulator.edgeAddresses, edgeCaFile: caFile },
    kubernetes: { ...config.kubernetes, leaderElection: { ...config.kubernetes.leaderElection, enabled: false } },
    // A laptop run keeps its health and metrics endpoint on loopback unless the user chose an address.
    server: { ...config.server, listen: config.server.listen === DEFAULT_SERVER_LISTEN ? '127.0.0.1:10254' : config.server.listen },
  });
  return { simulator, config: effective, credentials: toTunnelCredentials(simulator.credentials) };
}

/** Credentials from the tunnel lifecycle or the simulator, in the connector's shape. */
function toTunnelCredentials(c: { accountTag: string; tunnelSecret: Buffer; tunnelId: string; endpoint?: string | undefined }): TunnelCredentials {
  const bytes = uuidToBytes(c.tunnelId);
  if (!bytes) throw new WarrenError(ErrorCode.TunnelCredentials, `tunnel id "${c.tunnelId}" is not a UUID`, { terminal: true });
  return makeCredentials(c.accountTag, c.tunnelSecret, { text: c.tunnelId.toLowerCase(), bytes }, c.endpoint);
}

/** Once the first route table is served, tells the user where to point curl or a browser. */
async function announceLocalMode(warren: Warren, signal: AbortSignal): Promise<void> {
  const table = await warren.routes.waitFor((t) => t.generation > 0, { signal }).catch(() => undefined);
  if (!table) return;
  const url = warren.simulator!.eyeballUrl;
  const hosts = table.hosts.filter((h) => !h.startsWith('*')).sort();
  const lines = [
    '',
    `Warren is running in local mode on the manifests in ${warren.config.source.folder}.`,
    `Requests enter the built-in edge simulator at ${url} and travel the tunnel to Warren, then to the Services.`,
    ...(hosts.length
      ? hosts.map((h) => `  curl -H 'Host: ${h}' ${url}/`)
      : [`  (no Ingress routes yet: add manifests to ${warren.config.source.folder})`]),
    `Edit the manifests in ${warren.config.source.folder} to change routing live. Ctrl-C stops.`,
    '',
  ];
  process.stderr.write(lines.join('\n') + '\n');
}

const DEFAULT_SERVER_LISTEN = '0.0.0.0:10254';

function splitListen(listen: string): [string, string] {
  const i = listen.lastIndexOf(':');
  return [listen.slice(0, i).replace(/^\[|\]$/g, ''), listen.slice(i + 1)];
}

/** Local mode has no API server to record Events in: they go to the log instead. */
function loggingEventSink(logger: Logger): EventSink {
  return {
    warning: (object, reason, message) => logger.warn({ object, reason }, message),
    normal: (object, reason, message) => logger.info({ object, reason }, message),
  };
}

/** Provisions and validates the control plugins (DNS, firewall) while leading; disposes them when not. */
function controlPluginLifecycle(plugins: readonly ControlPlugin[], logger: Logger, secrets: SecretReader, events: EventSink): ManagedRunnable {
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
