import test from 'ava';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { injectable } from 'tsyringe';
import type { Dispatcher } from 'undici';
import { z } from 'zod';
import { defineManifest } from '../../src/plugin-api/manifest.js';
import { definePlugin } from '../../src/plugin-api/module.js';
import type { UpstreamDispatch, UpstreamInterceptor, UpstreamPlugin } from '../../src/plugin-api/upstream.js';
import { createPool } from '../../src/proxy/transport.js';
import { getText, startOrigin, startProxyHarness, testRoute, testRouteTable } from '../../src/testing/index.js';

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

/** A policy plugin whose interceptor wraps every upstream handler with `observe`. */
function observingPlugin(observe: (handler: Dispatcher.DispatchHandler) => Dispatcher.DispatchHandler) {
  @injectable()
  class Observer implements UpstreamPlugin {
    interceptor(): UpstreamInterceptor {
      return (next: UpstreamDispatch) => (options, handler) => next(options, observe(handler));
    }
  }
  const manifest = defineManifest({
    id: 'test.observer',
    name: 'test-observer',
    description: 'test',
    coreRange: '^0.1.0',
    kind: 'policy',
    order: 10,
    configSchema: z.object({}).strict(),
  });
  return definePlugin({ manifest, plugin: Observer });
}

test('the response head, once handled, does not keep alive the socket read that also carried the first body bytes', async (t) => {
  // Head and 48 KiB of body in one write: the proxy reads them in one socket read, as it does a large response.
  const body = Buffer.alloc(48 * 1024, 'b');
  const head = Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nX-Case: Kept\r\nContent-Length: ${body.length}\r\n\r\n`, 'latin1');
  const origin = createServer((socket) => {
    socket.on('error', () => undefined);
    socket.once('data', () => socket.write(Buffer.concat([head, body])));
  });
  origin.listen(0, '127.0.0.1');
  await once(origin, 'listening');
  t.teardown(() => origin.close());
  const key = `127.0.0.1:${(origin.address() as AddressInfo).port}`;

  const atStart: string[][] = [];
  const afterStart: Array<{ fields: string[]; sharesBodyRead: boolean }> = [];
  const observer = observingPlugin((handler) => ({
    ...handler,
    onRequestStart: (controller, context) => handler.onRequestStart?.(controller, context),
    onResponseStart: (controller, status, headers, message) => {
      atStart.push((controller.rawHeaders as Buffer[]).map((field) => field.toString('latin1')));
      handler.onResponseStart?.(controller, status, headers, message);
    },
    onResponseData: (controller, chunk: Buffer) => {
      if (afterStart.length === 0) {
        const raw = controller.rawHeaders as Buffer[];
        afterStart.push({ fields: raw.map((field) => field.toString('latin1')), sharesBodyRead: raw.some((field) => field.buffer === chunk.buffer) });
      }
      handler.onResponseData?.(controller, chunk);
    },
    onResponseEnd: (controller, trailers) => handler.onResponseEnd?.(controller, trailers),
    onResponseError: (controller, err) => handler.onResponseError?.(controller, err),
  }));
  const proxy = await startProxyHarness({ plugins: [{ module: observer }], table: testRouteTable([testRoute({ endpoints: [key] })]) });
  t.teardown(() => proxy.close());

  const reply = await getText(`${proxy.url}/`, 'x.test');
  t.is(reply.status, 200);
  t.is(reply.body, body.toString('latin1'));
  t.is(atStart.length, 1);
  t.is(afterStart.length, 1);
  t.deepEqual(atStart[0]!.slice(0, 6), ['Content-Type', 'application/octet-stream', 'X-Case', 'Kept', 'Content-Length', String(body.length)]);
  t.deepEqual(afterStart[0]!.fields, atStart[0], 'the same fields, byte for byte, after the head');
  t.false(afterStart[0]!.sharesBodyRead, 'the raw header fields still point into the read that carried the body');
});
