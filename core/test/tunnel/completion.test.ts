import test from 'ava';
import { once } from 'node:events';
import type { Exchange } from '../../src/proxy/exchange.js';
import { eyeballRequest } from './support/client.js';
import { eventually, startHarness } from './support/harness.js';

// A request with a body whose response the pipeline wrote completely: HTTP/2 may close the stream (both
// END_STREAMs seen) before Node reports the writable side finished. That clean close is the exchange's normal
// end, not a client that went away: aborting there would log 499 for a served POST and cut its upstream.
test('a completely answered request with a body ends without aborting the exchange', async (t) => {
  const aborted: boolean[] = [];
  const handler = {
    async handle(exchange: Exchange): Promise<void> {
      exchange.body.resume();
      await once(exchange.body, 'end');
      const sink = exchange.respond({ status: 200, headers: ['content-type', 'text/plain'], contentLength: 600 });
      exchange.body.once('close', () => aborted.push(exchange.signal.aborted));
      sink.end(Buffer.alloc(600, 0x61));
    },
  };
  const h = await startHarness(t, { handler });
  await h.sim.waitForRegistrations(1);
  const requests = 20;
  for (let i = 0; i < requests; i++) {
    const res = await eyeballRequest(`${h.sim.eyeballUrl}/upload`, {
      method: 'POST',
      headers: { host: 'app.example.com', 'content-length': '16' },
      body: Buffer.from('hello-world-body'),
    });
    t.is(res.status, 200);
    t.is(res.body.length, 600);
  }
  await eventually(() => aborted.length === requests, 5000, `${requests} streams closed`);
  t.deepEqual(aborted.filter(Boolean), [], `${aborted.filter(Boolean).length} of ${requests} answered exchanges were aborted`);
});
