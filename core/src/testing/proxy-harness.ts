import { pino, type Logger } from 'pino';
import { Registry } from 'prom-client';
import type { DependencyContainer } from 'tsyringe';
import { createRootContainer } from '../composition/root.js';
import { HTTP_ENTRY, PIPELINE, provideHttpEntry, provideProxy } from '../composition/servers.js';
import { parseConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { TOKENS } from '../di/tokens.js';
import type { LoadedPlugin } from '../plugins/registry.js';
import type { HttpEntry } from '../proxy/http-entry.js';
import type { Pipeline } from '../proxy/pipeline.js';
import { loadTestPlugins, MemoryEvents, MemorySecrets, type TestPlugin } from '../proxy/testing.js';
import type { RouteTable } from '../routes/types.js';

export interface ProxyHarnessOptions {
  readonly plugins?: readonly TestPlugin[];
  /** Plugins as `resolvePlugins` returns them (used instead of `plugins`). */
  readonly loadedPlugins?: readonly LoadedPlugin[];
  /** Extra values for the root container (e.g. `TOKENS.CloudflareClient` for control plugins). */
  readonly rootValues?: ReadonlyArray<readonly [symbol, unknown]>;
  /** Raw settings (as in the settings file), parsed with the real schema. */
  readonly settings?: Record<string, unknown>;
  readonly table?: RouteTable;
  readonly secrets?: MemorySecrets;
  /** pino level; default `silent` (set WARREN_TEST_LOG=debug to see logs). */
  readonly logLevel?: string;
  /** A logger to use instead (e.g. one writing to a stream the test reads). */
  readonly logger?: Logger;
  /** Passed to the pipeline: how long a retired generation may wait for its exchanges. */
  readonly drainLimitMs?: number;
}

export interface ProxyHarness {
  /** `http://127.0.0.1:port` of the entry point. */
  readonly url: string;
  readonly port: number;
  readonly pipeline: Pipeline;
  readonly entry: HttpEntry;
  readonly container: DependencyContainer;
  readonly config: Readonly<Config>;
  readonly metrics: Registry;
  readonly secrets: MemorySecrets;
  readonly events: MemoryEvents;
  readonly logger: Logger;
  /** Makes `table` live; resolves once it serves, rejects (the previous table serving on) when a plugin fails to provision. */
  setTable(table: RouteTable, options?: { readonly freshPlugins?: boolean }): Promise<void>;
  close(): Promise<void>;
}

/**
 * Runs the real pipeline with the given plugins behind a plain-HTTP entry point on 127.0.0.1 (random port),
 * assembled by the composition root as Warren is, with in-memory Secrets and Events in place of a control plane.
 * The test drives the pipeline's tables itself (`setTable`) instead of a route store. Call `close()` in
 * `t.teardown`.
 */
export async function startProxyHarness(options: ProxyHarnessOptions = {}): Promise<ProxyHarness> {
  const config = parseConfig(options.settings ?? {});
  const logger = options.logger ?? pino({ level: options.logLevel ?? process.env.WARREN_TEST_LOG ?? 'silent' });
  const metrics = new Registry();
  const secrets = options.secrets ?? new MemorySecrets();
  const events = new MemoryEvents();
  const plugins = options.loadedPlugins ?? loadTestPlugins(options.plugins ?? []);
  const container = createRootContainer(config, { logger, registry: metrics, env: {}, plugins });
  container.register(TOKENS.Secrets, { useValue: secrets });
  container.register(TOKENS.Events, { useValue: events });
  for (const [token, value] of options.rootValues ?? []) container.register(token, { useValue: value });
  provideProxy(container, { drainLimitMs: options.drainLimitMs });
  provideHttpEntry(container, '127.0.0.1:0');
  const pipeline = container.resolve(PIPELINE);
  if (options.table) await pipeline.setTable(options.table);
  const entry = container.resolve(HTTP_ENTRY);
  const address = await entry.listen();
  return {
    url: entry.url,
    port: address.port,
    pipeline,
    entry,
    container,
    config,
    metrics,
    secrets,
    events,
    logger,
    setTable: (table, tableOptions) => pipeline.setTable(table, tableOptions),
    async close() {
      await entry.close(100);
      await pipeline.close(1_000);
    },
  };
}
