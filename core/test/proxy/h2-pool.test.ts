import http2, { type ClientHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import test from 'ava';
import type { Dispatcher } from 'undici';
import { H2cPool } from '../../src/proxy/h2-pool.js';
import { collected } from '../support/collected.js';

/** An h2c origin: `/reset` is reset by the origin after its response head, anything else answers "ok". */
async function h2cOrigin(t: { teardown: (fn: () => void) => void }): Promise<string> {
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    // Closing with an error code errors the origin's own stream too.
    stream.on('error', () => {});
    stream.resume();
    stream.on('end', () => {
      if (stream.destroyed) return;
      stream.respond({ ':status': 200 });
      if (headers[':path'] === '/reset') stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      else stream.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

interface Finished {
  stream: ClientHttp2Stream;
  body: Readable | undefined;
}

/** Dispatches the way the pipeline does: a handler whose callbacks close over state only they reach. */
function dispatchExchange(pool: H2cPool, path: string, withBody: boolean): { state: WeakRef<object>; finished: Promise<Finished> } {
  const state = { response: Buffer.alloc(64 * 1024), headers: ['x-request', 'state'] };
  const body = withBody ? Readable.from([Buffer.from('request body')]) : undefined;
  const finished = new Promise<Finished>((resolve) => {
    const settle = (controller: Dispatcher.DispatchController): void => {
      const { stream } = controller as unknown as { stream: ClientHttp2Stream };
      if (stream.destroyed) resolve({ stream, body });
      else stream.once('close', () => resolve({ stream, body }));
    };
    pool.dispatch({ path, method: withBody ? 'POST' : 'GET', headers: ['host', 'origin.test'], body } as Dispatcher.DispatchOptions, {
      onResponseStart: () => void state.headers.length,
      onResponseData: () => void state.response.length,
      onResponseEnd: (controller) => settle(controller),
      onResponseError: (controller) => settle(controller),
    });
  });
  return { state: new WeakRef(state), finished };
}

test('an upstream stream that has closed lets go of its listeners: the exchange they reach is not kept alive by the stream', async (t) => {
  const pool = new H2cPool(await h2cOrigin(t), { scheme: 'http:', http2: 'prior-knowledge', connectTimeout: 5_000 });
  t.teardown(() => pool.destroy());
  const kept: Finished[] = [];
  const states: Array<WeakRef<object>> = [];
  for (const [path, withBody] of [
    ['/ended', false],
    ['/reset', false],
    ['/with-a-request-body', true],
  ] as const) {
    const { state, finished } = dispatchExchange(pool, path, withBody);
    states.push(state);
    // The stream (and the request body) stay referenced, as a finished stream often is for a while after its end.
    kept.push(await finished);
  }
  t.deepEqual(await collected(states), [true, true, true], 'state captured by the closed streams’ listeners was collected');
  for (const { stream, body } of kept) {
    t.true(stream.destroyed);
    t.is(stream.listenerCount('data'), 0);
    t.is(stream.listenerCount('close'), 0);
    // A no-op stays for 'error', so an error raised after the end cannot crash the process.
    t.is(stream.listenerCount('error'), 1);
    t.notThrows(() => stream.emit('error', new Error('late')));
    if (body) t.is(body.listenerCount('error'), 0, 'the request body no longer reaches the exchange either');
  }
});
