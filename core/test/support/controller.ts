/**
 * Runs Warren's Kubernetes control plane in-process against the test apiserver: informers, route sync, leader
 * election, status, events and finalizers under the lifecycle Manager, with a real RouteTableBuilder and
 * RouteStore. By default it authenticates with a ServiceAccount token bound only to deploy/rbac.yaml, so every
 * test that uses it also proves the RBAC is sufficient.
 */
import type { KubeClient } from '../../src/k8s/api/client.js';
import { Writable } from 'node:stream';
import { z } from 'zod';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { KUBERNETES, provideKubernetes, type KubernetesControlPlane } from '../../src/composition/kubernetes.js';
import { createRootContainer } from '../../src/composition/root.js';
import { HTTP_ENTRY, PIPELINE, provideHealth, provideHttpEntry, provideProxy } from '../../src/composition/servers.js';
import { parseConfig } from '../../src/config/load.js';
import type { Config, ConfigInput } from '../../src/config/schema.js';
import { PARTS, type NamedRunnable } from '../../src/composition/parts.js';
import { TOKENS } from '../../src/di/tokens.js';
import type { Manager } from '../../src/lifecycle/manager.js';
import type { HealthServer } from '../../src/observability/health-server.js';
import { createLogger } from '../../src/observability/logger.js';
import { loadBuiltinManifests } from '../../src/plugins/builtin.js';
import type { ControlPluginInstance } from '../../src/plugin-api/registered.js';
import { defineAnnotation, type PluginManifest } from '../../src/plugin-api/manifest.js';
import type { UpstreamPlugin } from '../../src/plugin-api/upstream.js';
import type { Pipeline } from '../../src/proxy/pipeline.js';
import type { RouteStore } from '../../src/routes/store.js';
import type { TunnelStateStore } from '../../src/state/tunnel.js';
import type { GatewayTunnelsStore } from '../../src/state/gateway-tunnels.js';
import { provideGatewayTunnels } from '../../src/composition/tunnel.js';
import { CONTROLLER_NAMESPACE, type TestApiServer } from './apiserver.js';

/** Collects pino's JSON lines in memory. */
export class LogCapture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    for (const line of chunk.toString('utf8').split('\n')) if (line) this.lines.push(line);
    cb();
  }
  get text(): string {
    return this.lines.join('\n');
  }
  parsed(): Array<Record<string, unknown>> {
    return this.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}

export interface TestControllerOptions {
  /** Settings layered over the test defaults (deep-merged one level into `kubernetes`). */
  readonly config?: ConfigInput;
  /** Use this client instead of one with a fresh controller ServiceAccount token. */
  readonly kubeClient?: KubeClient;
  /** The tunnel id published at start (default `test-tunnel-0000`); change it through `TestController.tunnel`. */
  readonly tunnelId?: string;
  readonly controlPlugins?: readonly ControlPluginInstance[];
  readonly identity?: string;
  /** Extra runnables (e.g. a leader-only probe). */
  readonly extraRunnables?: readonly NamedRunnable[];
  /** Also run the health server on 127.0.0.1:0. */
  readonly health?: boolean;
  /** Also run the proxy pipeline (following the RouteStore) behind the plain-HTTP entry point on 127.0.0.1:0. */
  readonly proxy?: boolean;
  /** Data-plane plugins the pipeline resolves (fresh instances per plugin set), registered under {@link TEST_MANIFEST}. */
  readonly upstreamPlugins?: ReadonlyArray<() => UpstreamPlugin>;
  /** Manifests of enabled plugins, for their annotations (e.g. a test manifest with a `secretRef` annotation). */
  readonly manifests?: readonly PluginManifest[];
  readonly cleanup?: { maxAttempts?: number; retryBaseMs?: number };
  /** Release the Lease on stop (default true); false simulates a killed process. */
  readonly releaseOnCancel?: boolean;
  /** Run the Gateway tunnels part (a managed tunnel per Gateway; needs `proxy` and managed-tunnel settings). */
  readonly gatewayTunnels?: boolean;
  /** Environment of the controller (default empty). */
  readonly env?: NodeJS.ProcessEnv;
}

export interface TestController {
  readonly cp: KubernetesControlPlane;
  readonly store: RouteStore;
  /** The tunnel's published state (what the tunnel part writes in production). */
  readonly tunnel: TunnelStateStore;
  /** The Gateways' own tunnels (written by the Gateway tunnels part when `gatewayTunnels` is set). */
  readonly gatewayTunnels: GatewayTunnelsStore;
  /** The proxy pipeline when `proxy` was set. */
  readonly pipeline: Pipeline | undefined;
  readonly manager: Manager;
  readonly registry: Registry;
  readonly logs: LogCapture;
  readonly logger: Logger;
  readonly config: Readonly<Config>;
  readonly health: HealthServer | undefined;
  /** `http://127.0.0.1:<port>` of the plain-HTTP entry point when `proxy` was set. */
  readonly entryUrl: string | undefined;
  /** Resolves when the manager's run ended (after stop). */
  readonly done: Promise<void>;
  /** Graceful stop (SIGTERM equivalent). Idempotent. */
  stop(): Promise<void>;
}

/**
 * A policy plugin manifest used only by tests: it owns `warren.dev/test-ca-secret`, an annotation naming a Secret,
 * so tests can make routes reference Secrets the way the tls plugin's annotations do.
 */
export const TEST_MANIFEST: PluginManifest = {
  id: 'test.secret-user',
  name: 'test-secret-user',
  description: 'test-only plugin that references a Secret',
  coreRange: '*',
  kind: 'policy',
  order: 0,
  annotations: [defineAnnotation({ key: 'test-ca-secret', description: 'Secret with a CA bundle', example: 'my-ca', secretRef: true, schema: z.string().min(1) })],
};

/** Test defaults: tunnel off, Lease in the controller namespace, short coalescing window. */
export function testConfig(overrides: ConfigInput = {}): Readonly<Config> {
  const base: ConfigInput = {
    logLevel: 'debug',
    tunnel: { enabled: false },
    kubernetes: {
      leaderElection: { leaseNamespace: CONTROLLER_NAMESPACE, leaseName: 'warren-leader' },
      resyncBurstWindow: 20,
    },
    server: { listen: '127.0.0.1:0' },
    shutdownGracePeriod: 5_000,
  };
  const merged: Record<string, unknown> = { ...base, ...overrides };
  merged.kubernetes = {
    ...(base.kubernetes as object),
    ...((overrides.kubernetes as object | undefined) ?? {}),
    leaderElection: { ...(base.kubernetes!.leaderElection as object), ...((overrides.kubernetes?.leaderElection as object | undefined) ?? {}) },
  };
  return parseConfig(merged);
}

/**
 * Assembles the Kubernetes side of Warren the way production does (the same container providers), with the test's
 * API client, identity, manifests and control plugins registered over the defaults, and runs it.
 */
export async function startController(server: TestApiServer, options: TestControllerOptions = {}): Promise<TestController> {
  const config = testConfig(options.config);
  const client = options.kubeClient ?? server.clientForToken(await server.controllerToken());
  const logs = new LogCapture();
  const logger = createLogger({ level: 'debug', destination: logs });
  const registry = new Registry();
  // Like production: the built-in manifests are known, so a disabled plugin's protocol is named as unavailable.
  const root = createRootContainer(config, { logger, registry, env: options.env ?? {}, knownManifests: await loadBuiltinManifests() });
  root.register(TOKENS.EnabledManifests, { useValue: options.manifests ?? [TEST_MANIFEST] });
  root.register(PARTS.KubeClient, { useValue: client });
  if (options.identity !== undefined) root.register(PARTS.Identity, { useValue: options.identity });
  for (const plugin of options.controlPlugins ?? []) root.register(TOKENS.ControlPlugin, { useValue: plugin });
  for (const make of options.upstreamPlugins ?? []) root.register(TOKENS.UpstreamPlugin, { useFactory: () => ({ plugin: make(), manifest: TEST_MANIFEST }) });
  provideKubernetes(root, { releaseLeaseOnStop: options.releaseOnCancel ?? true, cleanup: options.cleanup });
  if (options.health) provideHealth(root);
  if (options.proxy) {
    provideProxy(root);
    provideHttpEntry(root, '127.0.0.1:0');
  }
  if (options.gatewayTunnels) provideGatewayTunnels(root);
  for (const r of options.extraRunnables ?? []) root.register(PARTS.Runnable, { useValue: r });
  const tunnel = root.resolve(PARTS.TunnelState);
  tunnel.identify(options.tunnelId ?? 'test-tunnel-0000');
  const manager: Manager = root.resolve(PARTS.Manager);
  const cp = root.resolve(KUBERNETES);
  const store = root.resolve(TOKENS.RouteStore);
  const health: HealthServer | undefined = options.health ? root.resolve(PARTS.Health) : undefined;
  const pipeline = options.proxy ? root.resolve(PIPELINE) : undefined;
  const controller = new AbortController();
  const done = manager.run(controller.signal);
  const entryUrl = options.proxy ? await eventually('the plain-HTTP entry to listen', () => root.resolve(HTTP_ENTRY).url, 10_000) : undefined;
  let stopping: Promise<void> | undefined;
  return {
    cp,
    store,
    tunnel,
    gatewayTunnels: root.resolve(PARTS.GatewayTunnels),
    pipeline,
    manager,
    registry,
    logs,
    logger,
    config,
    health,
    entryUrl,
    done,
    stop() {
      stopping ??= (async () => {
        controller.abort();
        await done;
        if (!options.kubeClient) await client.close();
      })();
      return stopping;
    },
  };
}

/** Polls `check` every 25 ms until it returns a truthy value; fails after `timeoutMs` with `what`. */
export async function eventually<T>(what: string, check: () => T | Promise<T>, timeoutMs = 15_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}
