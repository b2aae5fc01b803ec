import type { ExecutionContext } from 'ava';
import { parseConfig } from '../../../src/config/load.js';
import { resolvePlugins } from '../../../src/plugins/registry.js';
import type { Route } from '../../../src/routes/types.js';
import { startProxyHarness, testRouteTable, type ProxyHarness } from '../../../src/testing/index.js';
import { startHarness, type Harness, type HarnessOptions } from './harness.js';

/**
 * The connector harness with Warren's real proxy pipeline (built-in plugins) as the exchange handler instead
 * of the minimal origin forwarder: edge simulator → connector → pipeline → `routes`.
 */
export async function startProxiedHarness(
  t: ExecutionContext,
  routes: readonly Route[],
  options: Omit<HarnessOptions, 'handler'> = {},
): Promise<Harness & { proxy: ProxyHarness }> {
  const proxy = await startProxyHarness({ loadedPlugins: await resolvePlugins(parseConfig({})), table: testRouteTable(routes) });
  t.teardown(() => proxy.close());
  const harness = await startHarness(t, { ...options, handler: proxy.pipeline });
  await harness.sim.waitForRegistrations(options.ha ?? 1);
  return Object.assign(harness, { proxy });
}
