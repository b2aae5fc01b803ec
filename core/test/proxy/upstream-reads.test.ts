import test from 'ava';
import { createPool } from '../../src/proxy/transport.js';
import { startOrigin } from '../../src/testing/index.js';

/**
 * The upstream read path under backpressure: a response body that waits for a slower client after every chunk
 * reaches the handler as the socket's own reads, never as copies that join two reads.
 */

/** Largest single socket read (libuv's read buffer). */
const READ_SIZE = 64 * 1024;

test('a response paused after every chunk arrives as single socket reads, not joined copies', async (t) => {
  const size = 8 * 1024 * 1024;
  const body = Buffer.alloc(size, 'x');
  const origin = await startOrigin({ handler: (_req, res) => res.writeHead(200, { 'content-length': size }).end(body) });
  t.teardown(() => origin.kill());
  const pool = createPool(`http://${origin.key}`, { scheme: 'http:', http2: 'off', connectTimeout: 2_000, keepAlive: { timeout: 2_000, maxConnections: 1 } });
  t.teardown(() => pool.destroy());

  const chunks: number[] = [];
  const received = await new Promise<number>((resolve, reject) => {
    let bytes = 0;
    const timer = setTimeout(() => reject(new Error('response not complete within 20 s')), 20_000);
    pool.dispatch(
      { origin: `http://${origin.key}`, path: '/', method: 'GET', headers: ['host', 'test'] },
      {
        onRequestStart: () => {},
        onResponseStart: () => {},
        // A client slower than the origin: pause on every chunk, resume a moment later (as the response writer
        // does when the client's stream is full).
        onResponseData: (controller, chunk: Buffer) => {
          bytes += chunk.length;
          chunks.push(chunk.length);
          controller.pause();
          setTimeout(() => controller.resume(), 1);
        },
        onResponseEnd: () => {
          clearTimeout(timer);
          resolve(bytes);
        },
        onResponseError: (_c, err) => {
          clearTimeout(timer);
          reject(err);
        },
      },
    );
  });

  t.is(received, size);
  const joined = chunks.filter((n) => n > READ_SIZE);
  t.deepEqual(joined, [], `${joined.length} of ${chunks.length} chunks were larger than one read`);
});
