import test from 'ava';
import { readFileSync } from 'node:fs';
import type { ServerHttp2Stream, IncomingHttpHeaders } from 'node:http2';
import { spawnJsonChild } from '../lib/child.js';
import { streamLoadIn } from '../lib/stream-load-client.js';
import type * as Credentials from '../../core/src/tunnel/credentials.js';
import type * as FakeConnector from '../../core/test/edge-simulator/support/fake-connector.js';
import type { EdgeSimulator } from '../../core/src/edge-simulator/index.js';

const core = (path: string) => new URL(`../../../core/build/${path}`, import.meta.url).href;
const { parseTunnelToken } = (await import(core('src/tunnel/credentials.js'))) as typeof Credentials;
const { fakeConnector } = (await import(core('test/edge-simulator/support/fake-connector.js'))) as typeof FakeConnector;

test('a stream load run inside the simulator process comes back with every latency, its bytes and statuses', async (t) => {
  const sim = spawnJsonChild(process.execPath, [new URL('../lib/simulator-process.js', import.meta.url).pathname], { input: true });
  t.teardown(() => sim.stop());
  const info = await sim.next<{ edge: string; caFile: string; token: string }>((m) => typeof m.edge === 'string', 20_000);
  const credentials = parseTunnelToken(info.token);
  // What the fake connector reads of a simulator: where to connect, whom to trust, which tunnel to register.
  const edge = { edgeAddresses: [info.edge], caPem: readFileSync(info.caFile, 'utf8'), credentials } as unknown as EdgeSimulator;
  const sizes: number[] = [];
  const registered = await fakeConnector(t, edge, {
    onStream: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
      const size = Number(/^\/bytes\/(\d+)$/.exec(String(headers[':path']))?.[1] ?? 0);
      sizes.push(size);
      stream.respond({ ':status': 200, 'content-length': size, 'cf-cloudflared-response-headers': '', 'cf-cloudflared-response-meta': '{"src":"origin"}' });
      stream.end(Buffer.alloc(size, 'x'));
    },
  });
  t.true(registered.ok);
  await sim.next((m) => m.registered === 1, 10_000);

  const r = await streamLoadIn(sim, { authority: 'bench.example.com', path: '/bytes/70000', concurrency: 3, durationMs: 10_000, maxRequests: 25 }, 20_000);
  t.is(r.requests, 25);
  t.is(r.errors, 0);
  t.is(r.bytes, 25 * 70_000);
  t.deepEqual([...r.statuses], [[200, 25]]);
  t.is(r.latencies.length, 25);
  t.true(r.latencies.every((ms, i) => ms > 0 && ms < 20_000 && (i === 0 || ms >= r.latencies[i - 1]!)));
  t.deepEqual(sizes, Array(25).fill(70_000));
});
