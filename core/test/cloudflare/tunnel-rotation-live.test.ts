/**
 * A token rotated after the connectors registered: real connectors against the edge simulator, which accepts
 * exactly the tunnel secrets the fake Cloudflare API holds. When a connection has to re-register, the edge refuses
 * the old secret, and the replicas must move to the new credentials at once — not after the periodic tunnel check.
 */
import test, { type ExecutionContext } from 'ava';
import { parseConfig } from '../../src/config/load.js';
import { tunnelSchema } from '../../src/config/schema.js';
import { TunnelLifecycle, createCloudflareClientFactory, encodeTunnelToken, type ResolvedTunnel } from '../../src/cloudflare/index.js';
import { runResolvedTunnel, type TunnelRunnerOptions } from '../../src/cloudflare/tunnel-runner.js';
import { startEdgeSimulator, type EdgeSimulator } from '../../src/edge-simulator/index.js';
import type { ExchangeHandler } from '../../src/proxy/exchange.js';
import { InMemoryCredentialsSecretStore, capturingLogger, startFakeCloudflare, type FakeCloudflare } from '../../src/testing/index.js';
import { TunnelConnector } from '../../src/tunnel/connector.js';
import { leadershipFrom } from '../support/leadership.js';

const ACCOUNT = 'e'.repeat(32);
const TOKEN = 'live-rotation-api-token-SECRET-0123456789';
const HOUR = 3_600_000;

/** Answers every tunnel request with 204; these tests are about registration only. */
const handler: ExchangeHandler = {
  async handle(exchange) {
    exchange.respond({ status: 204, headers: [] }).end();
  },
};

async function setup(t: ExecutionContext) {
  const fake = await startFakeCloudflare({ tokens: [{ value: TOKEN }] });
  t.teardown(() => fake.close());
  const sim = await startEdgeSimulator({
    authorize: (c) => fake.tunnels(ACCOUNT).some((tunnel) => tunnel.id === c.tunnelId && !tunnel.deletedAt && tunnel.secret.equals(c.tunnelSecret)),
  });
  t.teardown(() => sim.close());
  const store = new InMemoryCredentialsSecretStore();
  return { fake, sim, store };
}

/**
 * One replica: its lifecycle (checks far apart, as in production relative to a test) and the runner with a real
 * connector. Returns the registered secrets seen, in order.
 */
function replica(
  t: ExecutionContext,
  env: { fake: FakeCloudflare; sim: EdgeSimulator; store: InMemoryCredentialsSecretStore },
  role: { leader: boolean; replacementCheckMs: number; existenceCheckMs: number },
) {
  const { logger, text } = capturingLogger();
  const config = parseConfig({ cloudflare: { accountId: ACCOUNT, tunnelName: 'warren-live', apiBaseUrl: env.fake.baseUrl } });
  const processEnv = { CLOUDFLARE_API_TOKEN: TOKEN };
  const lifecycle = new TunnelLifecycle({
    config,
    logger,
    clientFactory: createCloudflareClientFactory({ config: config.cloudflare, logger, env: processEnv, maxRetries: 0 }),
    secretStore: env.store,
    leadership: leadershipFrom(() => role.leader),
    env: processEnv,
    pollIntervalMs: 20,
    replacementCheckMs: role.replacementCheckMs,
    existenceCheckMs: role.existenceCheckMs,
  });
  const registeredWith: Buffer[] = [];
  const connectors: TunnelConnector[] = [];
  const runConnector: TunnelRunnerOptions['runConnector'] = (tunnel, signal, signals) => {
    if (tunnel.mode !== 'managed') throw new Error('expected managed mode');
    const connector = new TunnelConnector({
      config: {
        tunnel: tunnelSchema.parse({ edgeAddresses: env.sim.edgeAddresses, edgeCaFile: env.sim.caFile, haConnections: 1, rpcTimeout: 2000 }),
        shutdownGracePeriod: 200,
      },
      env: { TUNNEL_TOKEN: encodeTunnelToken(tunnel.credentials) },
      handler,
      logger,
      registrationIntervalMs: 20,
      backoff: { baseMs: 20 },
    });
    connectors.push(connector);
    connector.onConnectionsChange((n) => {
      if (n > 0) registeredWith.push(tunnel.credentials.tunnelSecret);
    });
    connector.onCredentialsRefused(() => signals.credentialsRefused());
    return connector.start(signal);
  };
  const stop = new AbortController();
  t.teardown(() => stop.abort());
  const run = async (initial: ResolvedTunnel) => runResolvedTunnel({ lifecycle, initial, logger, runConnector }, stop.signal);
  return { lifecycle, registeredWith, connectors, run, stop, logs: text };
}

async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('a token rotated after registration: the reconnect the edge refuses makes the leader fetch the token at once', async (t) => {
  const env = await setup(t);
  // The periodic checks are an hour apart: only the refusal can explain a switch within seconds.
  const leader = replica(t, env, { leader: true, replacementCheckMs: HOUR, existenceCheckMs: HOUR });
  const initial = await leader.lifecycle.resolve(AbortSignal.timeout(10_000));
  if (initial.mode !== 'managed') return t.fail('expected managed mode');
  const running = leader.run(initial);
  await until(() => leader.registeredWith.length === 1, 5_000, 'first registration');

  const rotated = env.fake.rotateTunnelSecret(initial.credentials.tunnelId);
  t.is(env.sim.faults.dropConnection(), 1, 'the registered connection is dropped: it has to register again');
  await until(() => leader.registeredWith.length === 2, 5_000, 'registration with the rotated secret');
  t.true(leader.registeredWith[1]!.equals(rotated));
  t.is(leader.connectors.length, 2, 'one restart of the connector, on the new credentials');
  t.true(leader.logs().includes('the edge refused the tunnel credentials on a registration'));
  t.false(leader.logs().includes(rotated.toString('base64')), 'the secret is never logged');
  leader.stop.abort();
  await running;
});

test('a follower refused on a reconnect re-reads the Secret within seconds, not after the check interval', async (t) => {
  const env = await setup(t);
  const leader = replica(t, env, { leader: true, replacementCheckMs: 20, existenceCheckMs: HOUR });
  const follower = replica(t, env, { leader: false, replacementCheckMs: HOUR, existenceCheckMs: HOUR });
  const initial = await leader.lifecycle.resolve(AbortSignal.timeout(10_000));
  if (initial.mode !== 'managed') return t.fail('expected managed mode');
  const followerInitial = await follower.lifecycle.resolve(AbortSignal.timeout(10_000));
  const running = follower.run(followerInitial);
  await until(() => follower.registeredWith.length === 1, 5_000, 'first registration');

  const rotated = env.fake.rotateTunnelSecret(initial.credentials.tunnelId);
  // The leader stores the new token (as its own refusal would make it do), a moment after the follower was refused.
  env.sim.faults.dropConnection();
  await until(() => follower.logs().includes('the edge refused the tunnel credentials on a registration'), 5_000, 'refusal seen');
  const stored = await leader.lifecycle.watchForReplacement(initial.credentials, AbortSignal.timeout(5_000), { refused: true });
  t.is(stored.mode, 'managed');
  await until(() => follower.registeredWith.length === 2, 5_000, 'follower registered with the rotated secret');
  t.true(follower.registeredWith[1]!.equals(rotated));
  follower.stop.abort();
  await running;
});

test('a refusal that was no rotation costs the leader a few token reads, backing off to the check interval', async (t) => {
  const env = await setup(t);
  const leader = replica(t, env, { leader: true, replacementCheckMs: 20, existenceCheckMs: 400 });
  const initial = await leader.lifecycle.resolve(AbortSignal.timeout(10_000));
  if (initial.mode !== 'managed') return t.fail('expected managed mode');
  env.fake.resetLog();
  const watching = new AbortController();
  const watch = leader.lifecycle.watchForReplacement(initial.credentials, watching.signal, { refused: true }).catch(() => undefined);
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  watching.abort();
  await watch;
  const reads = env.fake.count('GET /accounts/:account/cfd_tunnel/:tunnel/token');
  // At once, then after 20, 40, 80, 160, 320 ms and every 400 ms: about 7 in a second, not one per 20 ms (about 50).
  t.true(reads >= 2 && reads <= 10, `${reads} token reads`);
});
