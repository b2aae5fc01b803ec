import test from 'ava';
import { rm } from 'node:fs/promises';
import { setTimeout } from 'node:timers/promises';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { createRootContainer } from '../../src/composition/root.js';
import { provideTunnel, toTunnelCredentials, TUNNEL } from '../../src/composition/tunnel.js';
import { parseConfig } from '../../src/config/load.js';
import { TOKENS } from '../../src/di/tokens.js';
import { startEdgeSimulator, type TunnelReply } from '../../src/edge-simulator/index.js';
import { startOrigin, startProxyHarness, testRoute, testRouteTable } from '../../src/testing/index.js';
import type { TunnelState } from '../../src/state/tunnel.js';
import { eventually } from '../support/controller.js';

test('the tunnel part publishes its id at assembly, then its registered connections, down to none at the stop', async (t) => {
  const sim = await startEdgeSimulator({ edgeListeners: 2 });
  t.teardown(async () => {
    await sim.close();
    await rm(sim.ca.dir, { recursive: true, force: true });
  });
  const config = parseConfig({ tunnel: { enabled: true, haConnections: 2, edgeAddresses: [...sim.edgeAddresses], edgeCaFile: sim.caFile }, shutdownGracePeriod: 1_000 });
  const root = createRootContainer(config, { logger: pino({ level: 'silent' }), registry: new Registry(), env: {} });
  root.register(TOKENS.ExchangeHandler, { useValue: { handle: async () => undefined } });
  const credentials = toTunnelCredentials(sim.credentials);
  provideTunnel(root, { credentials, cluster: false });
  const state = root.resolve(TOKENS.TunnelState);
  t.is(state.current.id, undefined);
  const part = root.resolve(TUNNEL);
  t.deepEqual(state.current, { id: credentials.tunnelId, formerIds: [], registeredConnections: 0 }, 'the id is known before any connection');
  const seen: TunnelState[] = [];
  state.subscribe((s) => seen.push(s));

  const stop = new AbortController();
  const running = part.start(stop.signal);
  await eventually('both connections registered', () => state.current.registeredConnections === 2, 10_000);
  t.is(part.connector?.registeredConnections, 2);
  stop.abort();
  await running;
  t.is(state.current.registeredConnections, 0);
  t.deepEqual(
    seen.slice(0, 2).map((s) => s.registeredConnections),
    [1, 2],
    'connections are published as they register',
  );
  t.is(seen.at(-1)?.registeredConnections, 0);
  t.true(seen.every((s) => s.id === credentials.tunnelId));
});

test('the connector registers only once the pipeline routes, so a request the edge sends at registration is served', async (t) => {
  const sim = await startEdgeSimulator({ edgeListeners: 1 });
  const origin = await startOrigin();
  const proxy = await startProxyHarness({
    settings: { tunnel: { enabled: true, haConnections: 1, edgeAddresses: [...sim.edgeAddresses], edgeCaFile: sim.caFile }, shutdownGracePeriod: 1_000 },
  });
  provideTunnel(proxy.container, { credentials: toTunnelCredentials(sim.credentials), cluster: false });
  const part = proxy.container.resolve(TUNNEL);
  const store = proxy.container.resolve(TOKENS.RouteStore);
  // What the edge does: a registered connection gets requests at once.
  const atRegistration: Array<Promise<TunnelReply>> = [];
  sim.on('registered', () => atRegistration.push(sim.request({ authority: 'first.test', path: '/' })));
  const stop = new AbortController();
  const serving = proxy.pipeline.start(stop.signal);
  const running = part.start(stop.signal);
  t.teardown(async () => {
    stop.abort();
    await Promise.all([running, serving]);
    await Promise.all([proxy.close(), origin.close(), sim.close()]);
    await rm(sim.ca.dir, { recursive: true, force: true });
  });

  await eventually('the connector started', () => part.connector !== undefined, 10_000);
  await setTimeout(500);
  t.is(sim.registeredConnections().length, 0, 'no connection registers before the first route table is live');
  t.is(proxy.pipeline.generation, undefined);

  store.publish(testRouteTable([testRoute({ host: 'first.test', endpoints: [origin.key] })], 1));
  await eventually('a connection registered', () => atRegistration.length === 1, 10_000);
  const first = await atRegistration[0]!;
  t.is(first.status, 200, `the first request is routed: ${first.body.toString().slice(0, 200)}`);
});
