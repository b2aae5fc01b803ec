import test, { type ExecutionContext } from 'ava';
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { request as httpRequest } from 'node:http';
import { runStreamLoad, startEdgeSimulator, type EdgeSimulator } from '../../src/edge-simulator/index.js';
import { fakeConnector } from './support/fake-connector.js';

async function simulator(t: ExecutionContext): Promise<EdgeSimulator> {
  const sim = await startEdgeSimulator({ eyeballWaitMs: 50 });
  t.teardown(() => sim.close());
  return sim;
}

const ORIGIN_HEAD = { 'cf-cloudflared-response-headers': '', 'cf-cloudflared-response-meta': '{"src":"origin"}' };
const quick = { authority: 'bench.example.com', path: '/bytes', concurrency: 2, durationMs: 5_000, maxRequests: 12 } as const;

/** Answers every stream with `size` bytes in 10 000-byte writes, content-length declared. */
function answerBytes(size: number): (stream: ServerHttp2Stream) => void {
  const body = Buffer.alloc(size, 'b');
  return (stream) => {
    stream.respond({ ':status': 200, 'content-length': size, ...ORIGIN_HEAD });
    for (let i = 0; i < size; i += 10_000) stream.write(body.subarray(i, i + 10_000));
    stream.end();
  };
}

test('complete responses are counted with their bytes, statuses and a latency each', async (t) => {
  const sim = await simulator(t);
  await fakeConnector(t, sim, { onStream: answerBytes(300_000) });
  const r = await runStreamLoad(sim, quick);
  t.is(r.requests, 12);
  t.is(r.errors, 0);
  t.is(r.bytes, 12 * 300_000);
  t.deepEqual([...r.statuses], [[200, 12]]);
  t.is(r.latencies.length, 12);
  t.true(r.latencies.every((ms, i) => ms > 0 && (i === 0 || ms >= r.latencies[i - 1]!)));
  t.deepEqual(sim.violations, []);
});

test('the connector receives the tunnel stream the eyeball entrance would open for the same request, a fresh cf-ray each', async (t) => {
  const sim = await simulator(t);
  const seen: IncomingHttpHeaders[] = [];
  await fakeConnector(t, sim, {
    onStream: (stream, headers) => {
      seen.push(headers);
      stream.respond({ ':status': 200, 'content-length': 2, ...ORIGIN_HEAD });
      stream.end('ok');
    },
  });
  await new Promise<void>((resolve, reject) =>
    httpRequest(`${sim.eyeballUrl}/bytes`, { headers: { host: 'bench.example.com' }, agent: false }, (res) => res.resume().on('end', resolve))
      .on('error', reject)
      .end(),
  );
  const r = await runStreamLoad(sim, { ...quick, concurrency: 1, maxRequests: 3 });
  t.is(r.errors, 0);
  t.is(seen.length, 4);
  const [eyeball, ...streams] = seen.map(({ 'cf-ray': ray, ...rest }) => ({ ray, rest }));
  for (const s of streams) t.deepEqual(s.rest, eyeball!.rest);
  const rays = seen.map((h) => String(h['cf-ray']));
  t.is(new Set(rays).size, 4);
  for (const ray of rays) t.regex(ray, /^[0-9a-f]{16}-SIM$/);
});

test('a stream reset after part of its body is an error, never a complete response', async (t) => {
  const sim = await simulator(t);
  await fakeConnector(t, sim, {
    onStream: (stream) => {
      stream.respond({ ':status': 200, 'content-length': 1000, ...ORIGIN_HEAD });
      stream.write(Buffer.alloc(400, 't'), () => stream.close(0x8));
    },
  });
  const r = await runStreamLoad(sim, quick);
  t.is(r.requests, 12);
  t.is(r.errors, 12);
  t.is(r.bytes, 0, 'bytes of incomplete responses are not counted');
  t.is(r.statuses.size, 0);
});

test('a stream that ends short of its content-length is an error', async (t) => {
  const sim = await simulator(t);
  await fakeConnector(t, sim, {
    onStream: (stream) => {
      stream.respond({ ':status': 200, 'content-length': 1000, ...ORIGIN_HEAD });
      stream.end(Buffer.alloc(400, 's'));
    },
  });
  const r = await runStreamLoad(sim, quick);
  t.is(r.requests, 12);
  t.is(r.errors, 12);
  t.is(r.bytes, 0);
});

test('an answer other than 200 is an error, counted by its status', async (t) => {
  const sim = await simulator(t);
  await fakeConnector(t, sim, {
    onStream: (stream) => {
      stream.respond({ ':status': 404, 'content-length': 0, ...ORIGIN_HEAD });
      stream.end();
    },
  });
  const r = await runStreamLoad(sim, quick);
  t.is(r.errors, 12);
  t.deepEqual([...r.statuses], [[404, 12]]);
});

test('uploads send the body with its content-length on every stream', async (t) => {
  const sim = await simulator(t);
  const received: Array<[string | undefined, number]> = [];
  await fakeConnector(t, sim, {
    onStream: (stream, headers) => {
      let n = 0;
      stream.on('data', (chunk: Buffer) => (n += chunk.length));
      stream.on('end', () => {
        received.push([headers['content-length'], n]);
        stream.respond({ ':status': 200, 'content-length': 0, ...ORIGIN_HEAD });
        stream.end();
      });
    },
  });
  const body = Buffer.alloc(200_000, 'u');
  const r = await runStreamLoad(sim, { ...quick, body });
  t.is(r.errors, 0);
  t.deepEqual(received, Array(12).fill(['200000', 200_000]));
});

test('without a registered connection every request is an error, within the time bound', async (t) => {
  const sim = await simulator(t);
  const started = Date.now();
  const r = await runStreamLoad(sim, { ...quick, concurrency: 1, durationMs: 200, maxRequests: 1000 });
  t.true(r.requests > 0);
  t.is(r.errors, r.requests);
  t.true(Date.now() - started < 2_000);
});
