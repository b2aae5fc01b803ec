import test from 'ava';
import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { startEdgeSimulator } from '../../src/edge-simulator/simulator.js';
import { dialLikeCloudflared, registerLikeCloudflared } from '../tunnel/support/cloudflared-standin.js';
import { GOLDEN_REGISTRATION } from '../tunnel/support/cloudflared-vectors.js';

/** A TCP relay to `target` whose traffic can be frozen: both sockets stay open, nothing passes any more. */
async function freezableRelay(target: string) {
  const pairs: Array<[Socket, Socket]> = [];
  const colon = target.lastIndexOf(':');
  const server = createServer((client) => {
    const upstream = connect(Number(target.slice(colon + 1)), target.slice(0, colon));
    for (const s of [client, upstream]) s.on('error', () => undefined);
    client.pipe(upstream);
    upstream.pipe(client);
    pairs.push([client, upstream]);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    freeze() {
      for (const [a, b] of pairs) {
        a.unpipe(b);
        b.unpipe(a);
        a.pause();
        b.pause();
      }
    },
    close() {
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
      server.close();
    },
  };
}

test('a slot held by a live connection is EDUPCONN; one held by a dead connection is released to the new registration', async (t) => {
  const sim = await startEdgeSimulator({
    credentials: { accountTag: GOLDEN_REGISTRATION.accountTag, tunnelSecret: GOLDEN_REGISTRATION.tunnelSecret, tunnelId: GOLDEN_REGISTRATION.tunnelId },
    livenessTimeoutMs: 300,
  });
  t.teardown(() => sim.close());
  const relay = await freezableRelay(sim.edgeAddress);
  t.teardown(() => relay.close());

  // First connection through the relay registers slot 0 of the recorded connector.
  const first = await dialLikeCloudflared(relay.address, sim.caPem);
  t.teardown(() => first.session.destroy());
  t.true((await registerLikeCloudflared(first)).ok);
  const [holder] = await sim.waitForRegistrations(1);

  // While it answers, the same slot registering again is a duplicate.
  const second = await dialLikeCloudflared(sim.edgeAddress, sim.caPem);
  t.teardown(() => second.session.destroy());
  t.like(await registerLikeCloudflared(second), { ok: false, error: { cause: 'EDUPCONN' } });
  t.true(holder!.routable);

  // Once it no longer answers (TCP still open, nothing passes), the next registration takes the slot.
  relay.freeze();
  const third = await dialLikeCloudflared(sim.edgeAddress, sim.caPem);
  t.teardown(() => third.session.destroy());
  t.true((await registerLikeCloudflared(third)).ok);
  t.false(holder!.routable, 'the dead holder lost its registration');
  const registered = sim.registeredConnections();
  t.is(registered.length, 1);
  t.not(registered[0], holder);
});
