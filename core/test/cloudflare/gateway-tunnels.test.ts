/**
 * The Gateway tunnels part on its own: the fake Cloudflare API through the official SDK, in-memory credentials
 * Secrets and Gateways, real connectors against the edge simulator. A Gateway whose tunnel cannot be created yet
 * says so (without the API's answer) and gets its tunnel once the API works again.
 */
import test from 'ava';
import { Registry } from 'prom-client';
import { parseConfig } from '../../src/config/load.js';
import { GatewayTunnels, type GatewayRef, type GatewayTunnelSecrets } from '../../src/cloudflare/gateway-tunnels.js';
import { createCloudflareClientFactory } from '../../src/cloudflare/index.js';
import { toTunnelCredentials } from '../../src/composition/tunnel.js';
import { startEdgeSimulator } from '../../src/edge-simulator/index.js';
import { GatewayTunnelsStore } from '../../src/state/gateway-tunnels.js';
import { InMemoryCredentialsSecretStore, RecordingEventSink, capturingLogger, startFakeCloudflare } from '../../src/testing/index.js';
import { TunnelConnector } from '../../src/tunnel/connector.js';
import { eventually } from '../support/controller.js';
import { leadershipFrom } from '../support/leadership.js';

const ACCOUNT = 'b'.repeat(32);
const TOKEN = 'gateway-tunnels-unit-api-token-SECRET-0123456789';

test('a Gateway whose tunnel cannot be created reports why in its state, then gets the tunnel once the API answers', async (t) => {
  const fake = await startFakeCloudflare({ tokens: [{ value: TOKEN }] });
  t.teardown(() => fake.close());
  const sim = await startEdgeSimulator({
    authorize: (c) => fake.tunnels(ACCOUNT).some((x) => x.id === c.tunnelId && !x.deletedAt && x.secret.equals(c.tunnelSecret)),
  });
  t.teardown(() => sim.close());
  const { logger, text } = capturingLogger();
  const config = parseConfig({
    tunnel: { edgeAddresses: [...sim.edgeAddresses], edgeCaFile: sim.caFile, haConnections: 1 },
    cloudflare: { accountId: ACCOUNT, tunnelName: 'unit', apiBaseUrl: fake.baseUrl },
  });
  const env = { CLOUDFLARE_API_TOKEN: TOKEN };
  const stores = new Map<string, InMemoryCredentialsSecretStore>();
  const secrets: GatewayTunnelSecrets = {
    store: (name) => {
      let store = stores.get(name);
      if (!store) stores.set(name, (store = new InMemoryCredentialsSecretStore()));
      return store;
    },
    list: async () => [],
  };
  const gateway: GatewayRef = { key: 'apps/edge', namespace: 'apps', name: 'edge', created: 0 };
  const state = new GatewayTunnelsStore();
  const registry = new Registry();
  const part = new GatewayTunnels({
    config,
    logger,
    clientFactory: createCloudflareClientFactory({ config: config.cloudflare, logger, env, maxRetries: 0 }),
    leadership: leadershipFrom(() => true),
    env,
    gateways: { waitForSync: async () => {}, gateways: () => [gateway], onChange: () => () => {} },
    secrets,
    connector: (_gateway, credentials) =>
      new TunnelConnector({
        config: { ...config, shutdownGracePeriod: 200 },
        handler: { handle: async () => {} },
        logger,
        env: {},
        credentials: toTunnelCredentials(credentials),
      }),
    state,
    events: new RecordingEventSink(),
    retryBaseMs: 50,
    registry,
  });
  // Tunnel creation is refused for a while.
  fake.faults.apiError(4, 403, 10000, 'Authentication error: SECRET-DETAIL', 'cfd_tunnel');
  const stop = new AbortController();
  const running = part.start(stop.signal);
  t.teardown(() => stop.abort());
  const problem = await eventually('the problem reported', () => state.current.get('apps/edge')?.problem, 10_000);
  t.is(problem.reason, 'AddressNotAssigned');
  t.false(problem.message.includes('SECRET-DETAIL'), 'the API answer stays in the log');
  t.true(text().includes("the Gateway's tunnel failed; retrying"));
  const tunnel = await eventually('the tunnel, connected, once the API answers', () => {
    const now = state.current.get('apps/edge');
    return now?.tunnelId && now.registeredConnections > 0 ? now : undefined;
  });
  t.is(tunnel.problem, undefined, 'the problem is cleared');
  t.is(fake.tunnels(ACCOUNT).find((x) => x.id === tunnel.tunnelId)?.name, 'unit-gw-apps-edge');
  const metrics = await registry.metrics();
  t.regex(metrics, /^warren_gateway_tunnels 1$/m);
  t.regex(metrics, /^warren_gateway_tunnel_connections 1$/m);
  stop.abort();
  await running;
});
