import test from 'ava';
import fc from 'fast-check';
import { once } from 'node:events';
import { type ClientHttp2Stream, connect as h2connect, constants as h2, type OutgoingHttpHeaders } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { createTestCa, issueCert } from '../../src/edge-simulator/certs.js';
import { ConfigurationVersions } from '../../src/tunnel/configuration-update.js';
import { EdgeConnection } from '../../src/tunnel/connection.js';
import { makeCredentials, uuidToBytes } from '../../src/tunnel/credentials.js';
import { createEdgeSecureContext } from '../../src/tunnel/edge-tls.js';
import { TunnelConnectionError } from '../../src/tunnel/errors.js';
import { startHarness, testLogger } from './support/harness.js';

/**
 * Garbage from the edge must end at the connection boundary: a rejected `establish()`, a 400, a reset
 * stream — never an exception escaping into the process (ava fails a test file on any uncaught error).
 */

const token = fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/);
const value = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 40 });

test('property: arbitrary request headers from the edge end in a response or a reset, and the connector stays registered', async (t) => {
  const h = await startHarness(t);
  await h.sim.waitForRegistrations(1);
  await h.waitForConnections(1);
  let reconnects = 0;
  const specials = fc.constantFrom(
    ['cf-cloudflared-proxy-connection-upgrade', 'websocket'],
    ['cf-cloudflared-proxy-connection-upgrade', 'update-configuration'],
    ['cf-cloudflared-proxy-connection-upgrade', 'control-stream'],
    ['cf-cloudflared-proxy-connection-upgrade', 'WebSocket'],
    ['cf-cloudflared-proxy-src', 'x'],
    ['content-length', '5'],
    ['content-length', '-1'],
    ['cookie', 'a=1'],
    ['cf-connecting-ip', '::1'],
  );
  await fc.assert(
    fc.asyncProperty(
      fc.record({
        method: fc.oneof(fc.constantFrom('GET', 'POST', 'PUT', 'HEAD', 'OPTIONS', 'PATCH'), fc.stringMatching(/^[A-Z]{1,8}$/)),
        path: fc.oneof(
          fc.constantFrom('/echo', '/status/200', '/bytes?n=10', '*'),
          fc.string({ maxLength: 30 }).map((p) => `/${encodeURIComponent(p)}`),
        ),
        authority: fc.oneof(fc.constant('app.example.com'), token),
        headers: fc.array(fc.oneof(fc.tuple(token, value), specials), { maxLength: 12 }),
        body: fc.option(fc.uint8Array({ maxLength: 64 }), { nil: undefined }),
      }),
      async (input) => {
        const headers: OutgoingHttpHeaders = { ':method': input.method, ':scheme': 'https', ':authority': input.authority, ':path': input.path };
        for (const [name, v] of input.headers) {
          if (name === 'host' || name === 'te' || ['connection', 'upgrade', 'keep-alive', 'proxy-connection', 'transfer-encoding'].includes(name)) continue;
          headers[name] = v;
        }
        let stream: ClientHttp2Stream;
        try {
          stream = h.sim.openStream(headers, { endStream: input.body === undefined });
        } catch {
          return true; // Node's own client refused the header set; nothing reached the connector.
        }
        stream.on('error', () => undefined);
        if (input.body !== undefined) stream.end(Buffer.from(input.body));
        const outcome = await new Promise<string>((resolve) => {
          const timer = setTimeout(() => {
            stream.close(h2.NGHTTP2_CANCEL);
            resolve('timeout');
          }, 3000);
          stream.on('response', () => stream.resume());
          stream.once('close', () => {
            clearTimeout(timer);
            resolve(stream.rstCode === 0 ? 'response' : `reset ${stream.rstCode}`);
          });
        });
        if (h.sim.registeredConnections().length === 0) {
          // HTTP/2-level violations (e.g. more DATA than content-length) make Node end the whole session;
          // the connector must then come back on its own.
          reconnects++;
          await h.sim.waitForRegistrations(1, 5000);
          await h.waitForConnections(1, 5000);
        }
        return outcome !== 'timeout';
      },
    ),
    { numRuns: 150 },
  );
  t.log(`connections replaced after HTTP/2 protocol violations: ${reconnects}`);
  t.is(h.connector.registeredConnections, 1);
  t.is(h.sim.registeredConnections().length, 1);
  t.is((await h.sim.request({ path: '/status/200' })).status, 200);
});

/** A TLS "edge" that answers each accepted socket with the next scripted behaviour. */
async function scriptedEdge(t: import('ava').ExecutionContext) {
  const ca = createTestCa('Scripted Edge CA');
  const leaf = issueCert(ca, { dns: ['h2.cftunnel.com'] });
  const scripts: Array<(socket: TLSSocket) => void> = [];
  const server = createTlsServer({ cert: leaf.certPem, key: leaf.keyPem }, (socket) => {
    socket.on('error', () => undefined);
    const script = scripts.shift();
    if (script) script(socket);
    else socket.destroy();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const port = (server.address() as AddressInfo).port;
  const secureContext = createEdgeSecureContext(ca.certFile);
  const credentials = makeCredentials('acct', Buffer.alloc(32, 7), {
    text: '11111111-2222-3333-4444-555555555555',
    bytes: uuidToBytes('11111111-2222-3333-4444-555555555555')!,
  });
  const connect = (script: (socket: TLSSocket) => void) => {
    scripts.push(script);
    return new EdgeConnection({
      connIndex: 0,
      address: { host: '127.0.0.1', port, family: 4, label: `127.0.0.1:${port}`, region: 1 },
      credentials,
      client: { clientId: Buffer.alloc(16, 1), features: [], version: 'test', arch: 'test' },
      secureContext,
      handler: { handle: async (e) => e.fail({ status: 502, message: 'no' }) },
      logger: testLogger(),
      rpcTimeoutMs: 200,
      numPreviousAttempts: 0,
      configurationVersions: new ConfigurationVersions(),
    });
  };
  return { connect };
}

const H2_PREFACE_SETTINGS = Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]);

test('property: arbitrary bytes from the edge end establish() with a TunnelConnectionError', async (t) => {
  const edge = await scriptedEdge(t);
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        fc.uint8Array({ minLength: 1, maxLength: 300 }).map((b) => Buffer.from(b)),
        fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.concat([H2_PREFACE_SETTINGS, Buffer.from(b)])),
      ),
      fc.boolean(),
      async (bytes, closeAfter) => {
        const connection = edge.connect((socket) => {
          socket.write(bytes);
          if (closeAfter) socket.end();
        });
        const err = await connection.establish().then(
          () => undefined,
          (e: unknown) => e,
        );
        connection.destroy();
        await connection.closed;
        return err instanceof TunnelConnectionError;
      },
    ),
    { numRuns: 40 },
  );
  t.pass();
});

test('property: garbage on the control stream fails registration cleanly', async (t) => {
  const edge = await scriptedEdge(t);
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 400 }), fc.boolean(), async (bytes, endAfter) => {
      const connection = edge.connect((socket) => {
        const session = h2connect('https://h2.cftunnel.com', { createConnection: () => socket });
        session.on('error', () => undefined);
        const control = session.request(
          { ':method': 'GET', ':path': '/', ':scheme': 'https', ':authority': 'h2.cftunnel.com', 'cf-cloudflared-proxy-connection-upgrade': 'control-stream' },
          { endStream: false },
        );
        control.on('error', () => undefined);
        control.resume();
        control.write(Buffer.from(bytes));
        if (endAfter) control.end();
      });
      const err = await connection.establish().then(
        () => undefined,
        (e: unknown) => e,
      );
      connection.destroy();
      await connection.closed;
      return err instanceof TunnelConnectionError && (err.kind === 'rpc' || err.kind === 'closed');
    }),
    { numRuns: 40 },
  );
  t.pass();
});
