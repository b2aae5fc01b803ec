import test from 'ava';
import { eyeballRequest } from './support/client.js';
import { startHarness } from './support/harness.js';

test('tunnel.maxConcurrentStreams is announced to the edge (default 1000) and bounds the requests in flight per connection', async (t) => {
  const plain = await startHarness(t);
  const [c] = await plain.sim.waitForRegistrations(1);
  t.is(c!.session.remoteSettings.maxConcurrentStreams, 1000);

  const h = await startHarness(t, { tunnel: { maxConcurrentStreams: 3 } });
  const [limited] = await h.sim.waitForRegistrations(1);
  t.is(limited!.session.remoteSettings.maxConcurrentStreams, 3);
  let peak = 0;
  let current = 0;
  h.origin.server.on('request', (req, res) => {
    if (!req.url?.startsWith('/slow')) return;
    peak = Math.max(peak, ++current);
    res.once('finish', () => current--);
  });
  const replies = await Promise.all(Array.from({ length: 8 }, () => eyeballRequest(`${h.sim.eyeballUrl}/slow?ms=150`)));
  t.deepEqual(
    replies.map((r) => r.status),
    new Array(8).fill(200),
    'requests beyond the limit wait at the edge, none fails',
  );
  t.true(peak <= 3, `at most 3 at once reached the origin (saw ${peak})`);
  t.true(peak >= 2, `requests did run concurrently (saw ${peak})`);
});
