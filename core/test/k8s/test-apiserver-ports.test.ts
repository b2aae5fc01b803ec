import test from 'ava';
import { createServer } from 'node:net';
import { startApiServer } from '../support/apiserver.js';
import { freePort } from '../support/ports.js';

test('a port taken between being picked and being bound makes the test apiserver start again on fresh ports', async (t) => {
  // Another process holds the port the harness is about to give kube-apiserver.
  const squatter = createServer();
  await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
  t.teardown(() => squatter.close());
  const taken = (squatter.address() as { port: number }).port;
  let picks = 0;
  const server = await startApiServer({
    // etcd client, etcd peer, then kube-apiserver: the first start's kube-apiserver port is the taken one.
    pickPort: async () => (++picks === 3 ? taken : freePort()),
  });
  t.teardown(() => server.stop());
  t.is(picks, 6, 'a second start picked three fresh ports');
  t.not(new URL(server.url).port, String(taken));
  const namespaces = await server.adminClient().request<{ items: unknown[] }>('GET', '/api/v1/namespaces');
  t.true(namespaces.items.length > 0, 'the second start serves');
});
