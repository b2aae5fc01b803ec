import test from 'ava';
import { constants as h2 } from 'node:http2';
import { startHarness } from './support/harness.js';

/**
 * The edge multiplexes every visitor over a few connections, so a burst of cancelled requests (visitors
 * navigating away, a client timing out a fan-out) arrives as a burst of RST_STREAMs. 8,000 stream opens, each
 * cancelled at once, in about 4 s across four connections must not end any connection.
 */
test('8,000 stream opens with immediate cancels in ~4 s end no connection; requests are served throughout', async (t) => {
  t.timeout(40_000);
  const h = await startHarness(t, { ha: 4 });
  await h.waitForConnections(4);
  const before = h.sim.registeredConnections();
  const counts: number[] = [];
  h.connector.onConnectionsChange((n) => counts.push(n));
  const total = 8000;
  const batches = 40; // one batch of 200 every 100 ms
  const started = Date.now();
  for (let b = 0; b < batches; b++) {
    for (let i = 0; i < total / batches; i++) {
      const stream = h.sim.openStream({ ':method': 'GET', ':scheme': 'https', ':authority': 'app.example.com', ':path': '/slow?ms=50' }, { endStream: true });
      stream.on('error', () => undefined);
      stream.close(h2.NGHTTP2_CANCEL);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, started + (b + 1) * 100 - Date.now())));
  }
  // Paced for ~4 s (slower on a loaded machine): each connection takes ~2,000 resets, beyond nghttp2's default
  // budget of 1,000 plus 33 per second as long as the storm lasts under 30 s.
  t.log(`storm of ${total} opens and cancels took ${Date.now() - started} ms`);
  // Requests are served during and right after the storm.
  const reply = await h.sim.request({ path: '/status/200', timeoutMs: 5000 });
  t.is(reply.status, 200);
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.deepEqual(counts, [], 'the connector never lost a registered connection');
  t.deepEqual(h.sim.registeredConnections(), before, 'the same four connections are still registered');
  t.true(
    before.every((c) => !c.closed && c.goawayCode === undefined),
    'no GOAWAY from the connector',
  );
  t.deepEqual(h.sim.violations, []);
});
