import test from 'ava';
import { eyeballRequest } from './support/client.js';
import { startHarness } from './support/harness.js';

test('graceful shutdown unregisters every connection, then releases and aborts the RPC and ends the control streams', async (t) => {
  const h = await startHarness(t, { ha: 3 });
  await h.waitForConnections(3);
  const conns = h.sim.registeredConnections();
  await h.stop();
  t.is(h.connector.registeredConnections, 0);
  for (const c of conns) {
    t.true(c.unregistered, `connection ${c.connIndex} unregistered`);
    const seq = c.rpc!.events.sequence();
    const at = (name: string) => seq.findIndex((s) => s.startsWith(name));
    t.true(at('call:unregisterConnection') > at('call:registerConnection'), seq.join(','));
    t.true(at('release') > at('call:unregisterConnection'), seq.join(','));
    t.true(at('abort') > at('release'), seq.join(','));
    const abort = c.rpc!.events.ofType('abort')[0]!;
    t.is(abort.reason, 'rpc: shutdown');
    t.true(c.controlEnded);
    t.true(c.goawayReceived, 'the connector sent GOAWAY');
    await c.closedPromise;
  }
  const metrics = await h.registry.getSingleMetricAsString('cloudflared_tunnel_ha_connections');
  t.regex(metrics, /cloudflared_tunnel_ha_connections 0/);
});

test('in-flight requests finish during the grace period; requests slower than it are cut', async (t) => {
  const h = await startHarness(t, { ha: 1, graceMs: 3000, simulator: { eyeballWaitMs: 100 } });
  await h.waitForConnections(1);
  const order: string[] = [];
  const quick = eyeballRequest(`${h.sim.eyeballUrl}/slow?ms=400`).finally(() => order.push('quick'));
  const tooSlow = eyeballRequest(`${h.sim.eyeballUrl}/slow?ms=10000`).then(
    (r) => r,
    (err: Error) => err,
  );
  await h.sim.waitFor(() => h.sim.connections[0]!.activeStreams === 2, 2000, 'two requests in flight');
  const stopping = h.stop().then(() => order.push('stopped'));
  await h.sim.waitFor(() => h.sim.connections[0]!.unregistered, 2000, 'unregister');
  t.is(h.sim.registeredConnections().length, 0, 'the edge stops routing to an unregistered connection');
  const refused = await eyeballRequest(`${h.sim.eyeballUrl}/status/200`);
  t.is(refused.status, 530, 'no connection takes new requests');
  const done = await quick;
  t.is(done.status, 200);
  t.is(done.body.toString(), 'slept 400');
  await stopping;
  t.deepEqual(order, ['quick', 'stopped'], 'shutdown waited for the in-flight request');
  const cut = await tooSlow;
  t.true(cut instanceof Error || cut.status === 502, 'a request beyond the grace period is cut off');
  await h.sim.connections[0]!.closedPromise;
});

test('stopping before the first registration returns promptly and leaves nothing registered', async (t) => {
  const h = await startHarness(t, { manualStart: true });
  h.sim.faults.noControlStream = true;
  await h.start();
  await h.sim.waitFor(() => h.sim.connections.length >= 1, 5000, 'a connection');
  await h.stop();
  t.is(h.connector.registeredConnections, 0);
  await h.sim.waitFor(() => h.sim.connections.every((c) => c.closed), 3000, 'connections closed');
  t.pass();
});
