import test from 'ava';
import { eyeballRequest } from './support/client.js';
import { eventually, startHarness } from './support/harness.js';

test('a GOAWAY with an odd last_stream_id (Go client Shutdown) drains: in-flight requests finish, then the slot reconnects', async (t) => {
  const h = await startHarness(t, { ha: 2, graceMs: 5000, simulator: { rawFrames: true } });
  await h.waitForConnections(2);
  const first = h.sim.registeredConnections();
  const draining = first.find((c) => c.connIndex === 0)!;
  const inflight = [
    eyeballRequest(`${h.sim.eyeballUrl}/slow?ms=600`),
    eyeballRequest(`${h.sim.eyeballUrl}/slow?ms=700`),
    eyeballRequest(`${h.sim.eyeballUrl}/slow?ms=800`),
    eyeballRequest(`${h.sim.eyeballUrl}/slow?ms=900`),
  ];
  // In flight means the origin has them: a stream the connector had not yet seen when its own GOAWAY went
  // out is refused (REFUSED_STREAM, safe for the edge to retry), which is correct but not what is tested here.
  await eventually(() => h.origin.seen.filter((r) => r.path.startsWith('/slow')).length === 4, 3000, 'requests at the origin');
  t.true(draining.activeStreams >= 1, 'connection 0 carries in-flight requests');
  t.is(h.sim.faults.goAwayLikeGoClient(0), 1);
  const replies = await Promise.all(inflight);
  for (const [i, reply] of replies.entries()) {
    t.is(reply.status, 200, `request ${i}: ${reply.body.toString()}`);
    t.is(reply.body.toString(), `slept ${600 + i * 100}`);
  }
  t.not(draining.goawayCode, 1, 'the connector did not answer the GOAWAY with PROTOCOL_ERROR');
  await h.sim.waitFor(() => h.sim.registeredConnections().some((c) => c.connIndex === 0 && !first.includes(c)), 5000, 'slot 0 re-registered');
  await h.sim.waitFor(() => draining.closed, 5000, 'the drained connection closed');
  t.false(first.find((c) => c.connIndex === 1)!.closed, 'the other connection was not touched');
  t.deepEqual(h.sim.violations, []);
  t.is((await eyeballRequest(`${h.sim.eyeballUrl}/status/200`)).status, 200);
});
