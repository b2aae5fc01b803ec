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
import { parseConfig } from '../../src/config/load.js';
import type { Config, ConfigInput } from '../../src/config/schema.js';
import { createKubernetesControlPlane, type KubernetesControlPlane } from '../../src/k8s/control-plane.js';
import { Manager, type ManagedRunnable } from '../../src/lifecycle/manager.js';
import { HealthServer } from '../../src/observability/health-server.js';
import { createLogger } from '../../src/observability/logger.js';
import type { ControlPlugin } from '../../src/plugin-api/control.js';
import type { PluginManifest } from '../../src/plugin-api/manifest.js';
import { RouteTableBuilder, routeBuildSettings } from '../../src/routes/build.js';
import { loadBuiltinManifests } from '../../src/routes/plugins.js';
import { RouteStore } from '../../src/routes/store.js';
import { HttpEntry } from '../../src/proxy/http-entry.js';
import { Pipeline } from '../../src/proxy/pipeline.js';
import { container } from 'tsyringe';
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
  readonly tunnelId?: () => string | undefined;
  readonly controlPlugins?: readonly ControlPlugin[];
  readonly identity?: string;
  /** Extra runnables (e.g. a leader-only probe). */
  readonly extraRunnables?: readonly ManagedRunnable[];
  /** Also run the health server on 127.0.0.1:0. */
  readonly health?: boolean;
  /** Also run the proxy pipeline (following the RouteStore) behind the plain-HTTP entry point on 127.0.0.1:0. */
  readonly proxy?: boolean;
  /** Manifests of enabled plugins, for their annotations (e.g. a test manifest with a `secretRef` annotation). */
  readonly manifests?: readonly PluginManifest[];
  readonly cleanup?: { maxAttempts?: number; retryBaseMs?: number };
  /** Release the Lease on stop (default true); false simulates a killed process. */
  readonly releaseOnCancel?: boolean;
}

export interface TestController {
  readonly cp: KubernetesControlPlane;
  readonly store: RouteStore;
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
  annotations: [
    { key: 'test-ca-secret', description: 'Secret with a CA bundle', example: 'my-ca', secretRef: true, schema: z.string().min(1) },
  ],
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

export async function startController(server: TestApiServer, options: TestControllerOptions = {}): Promise<TestController> {
  const config = testConfig(options.config);
  const client = options.kubeClient ?? server.clientForToken(await server.controllerToken());
  const logs = new LogCapture();
  const logger = createLogger({ level: 'debug', destination: logs });
  const registry = new Registry();
  const store = new RouteStore();
  // Like production: the built-in manifests are known, so a disabled plugin's protocol is named as unavailable.
  const builder = new RouteTableBuilder(routeBuildSettings(config, options.manifests ?? [TEST_MANIFEST], await loadBuiltinManifests()));
  const cp = createKubernetesControlPlane({
    config,
    logger,
    registry,
    routeBuilder: builder,
    routeStore: store,
    client,
    tunnelId: options.tunnelId ?? (() => 'test-tunnel-0000'),
    controlPlugins: options.controlPlugins,
    identity: options.identity,
    releaseLeaseOnStop: options.releaseOnCancel ?? true,
    cleanup: options.cleanup,
  });
  const manager = new Manager({ logger, shutdownGracePeriodMs: config.shutdownGracePeriod, elector: cp.elector });
  let health: HealthServer | undefined;
  if (options.health) {
    health = new HealthServer({ listen: config.server.listen, registry, logger });
    health.addReadinessCheck('manager', manager.readinessCheck);
    health.addReadinessCheck('caches', cp.readiness.caches);
    manager.add({ name: 'health', group: 'servers', needsLeader: false, start: (s) => health!.start(s) });
  }
  let entryUrl: string | undefined;
  if (options.proxy) {
    const pipeline = new Pipeline({
      container: container.createChildContainer(),
      config,
      logger,
      metrics: registry,
      secrets: cp.secrets,
      events: cp.events,
      routes: store,
    });
    const entry = new HttpEntry({ handler: pipeline, listen: '127.0.0.1:0', logger });
    entryUrl = `http://127.0.0.1:${(await entry.listen()).port}`;
    manager.add({ name: 'proxy-entry', group: 'servers', needsLeader: false, start: async (s) => {
      if (!s.aborted) await new Promise((r) => s.addEventListener('abort', r, { once: true }));
      await entry.close(1_000);
    } });
    manager.add({ name: 'pipeline', group: 'servers', needsLeader: false, start: (s) => pipeline.start(s) });
  }
  for (const r of cp.runnables) manager.add(r);
  for (const r of options.extraRunnables ?? []) manager.add(r);
  const controller = new AbortController();
  const done = manager.run(controller.signal);
  let stopping: Promise<void> | undefined;
  return {
    cp,
    store,
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
