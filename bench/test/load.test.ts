import test, { type ExecutionContext } from 'ava';
import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { runLoad } from '../lib/load.js';

/** A server on loopback for the test's lifetime; resolves its URL. */
async function listen(t: ExecutionContext, server: Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** An HTTP/1.1 server that writes `answer` raw for every request head it reads, then closes when told. */
function rawServer(answer: (socket: Socket) => void): Server {
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    let head = '';
    socket.on('data', (bytes) => {
      head += bytes.toString('latin1');
      while (head.includes('\r\n\r\n')) {
        head = head.slice(head.indexOf('\r\n\r\n') + 4);
        answer(socket);
      }
    });
  });
  server.on('close', () => {
    for (const s of sockets) s.destroy();
  });
  return server;
}

const quick = { concurrency: 2, durationMs: 2_000, maxRequests: 20 } as const;

test('complete responses are counted with their bytes, statuses and a latency each', async (t) => {
  const body = Buffer.alloc(300_000, 'b');
  const url = await listen(
    t,
    createHttpServer((req: IncomingMessage, res: ServerResponse) => {
      if (req.url === '/missing') return void res.writeHead(404, { 'content-length': 0 }).end();
      res.writeHead(200, { 'content-length': body.length });
      // In pieces, so the body arrives in many chunks.
      for (let i = 0; i < body.length; i += 10_000) res.write(body.subarray(i, i + 10_000));
      res.end();
    }),
  );
  const ok = await runLoad({ url, path: '/bytes', ...quick });
  t.is(ok.requests, 20);
  t.is(ok.errors, 0);
  t.is(ok.bytes, 20 * body.length);
  t.deepEqual([...ok.statuses], [[200, 20]]);
  t.is(ok.latencies.length, 20);
  t.true(ok.latencies.every((ms, i) => ms > 0 && (i === 0 || ms >= ok.latencies[i - 1]!)));

  const missing = await runLoad({ url, path: '/missing', ...quick });
  t.is(missing.requests, 20);
  t.is(missing.errors, 20, 'an answer other than 200 is an error');
  t.deepEqual([...missing.statuses], [[404, 20]]);
});

test('a body shorter than its content-length is an error, never a complete response', async (t) => {
  const url = await listen(
    t,
    rawServer((socket) => {
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n');
      socket.end(Buffer.alloc(400, 's'));
    }),
  );
  const r = await runLoad({ url, path: '/', ...quick });
  t.true(r.requests > 0);
  t.is(r.errors, r.requests);
  t.is(r.bytes, 0, 'bytes of incomplete responses are not counted');
  t.is(r.statuses.size, 0);
});

test('a body longer than its content-length is an error', async (t) => {
  // The surplus is not part of the response (HTTP/1.1 frames it by content-length): it breaks the connection, so
  // the request that reads it fails.
  const url = await listen(
    t,
    rawServer((socket) => {
      socket.write(`HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n${'l'.repeat(25)}`);
    }),
  );
  const r = await runLoad({ url, path: '/', concurrency: 1, durationMs: 2_000, maxRequests: 4 });
  t.is(r.requests, 4);
  t.is(r.errors, 4, 'every response was followed by bytes it did not declare');
});

test('a chunked response that ends early is an error', async (t) => {
  const url = await listen(
    t,
    rawServer((socket) => {
      socket.end('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n');
    }),
  );
  const r = await runLoad({ url, path: '/', ...quick });
  t.true(r.requests > 0);
  t.is(r.errors, r.requests);
});

test('uploads send the body with every request', async (t) => {
  const received: number[] = [];
  const url = await listen(
    t,
    createHttpServer((req, res) => {
      let n = 0;
      req.on('data', (chunk: Buffer) => (n += chunk.length));
      req.on('end', () => {
        received.push(n);
        res.writeHead(200, { 'content-length': 0 }).end();
      });
    }),
  );
  const body = Buffer.alloc(200_000, 'u');
  const r = await runLoad({ url, path: '/up', ...quick, body });
  t.is(r.requests, 20);
  t.is(r.errors, 0);
  t.deepEqual(received, Array(20).fill(body.length));
});

test('a refused connection is an error per request, within the time bound', async (t) => {
  const server = createNetServer();
  const url = await listen(t, server);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const r = await runLoad({ url, path: '/', concurrency: 1, durationMs: 300, maxRequests: 50 });
  t.true(r.requests > 0);
  t.is(r.errors, r.requests);
});
