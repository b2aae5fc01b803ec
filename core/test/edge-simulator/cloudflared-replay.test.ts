import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import http from 'node:http';
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { startEdgeSimulator } from '../../src/edge-simulator/simulator.js';
import { grpcJsonCodec } from '../../src/testing/index.js';
import { encodeFinish } from '../../src/tunnel/rpc/messages.js';
import { bytesToUuid } from '../../src/tunnel/credentials.js';
import { dialLikeCloudflared, GO_ARTEFACTS, registerLikeCloudflared } from '../tunnel/support/cloudflared-standin.js';
import { CLOUDFLARED_RPC, GOLDEN_REGISTRATION, SERIALIZED_HEADERS_EXAMPLE } from '../tunnel/support/cloudflared-vectors.js';

/**
 * Conformance of the edge simulator itself: a connector that answers with cloudflared's recorded bytes and
 * header forms (not Warren's connector) registers, serves an HTTP request, a cloudflared-generated error, a
 * WebSocket and a trailers-only gRPC error through the simulator's eyeball, and shuts down.
 */

const hex = (h: string) => Buffer.from(h, 'hex');
const ORIGIN_META = '{"src":"origin"}';
const ws = (headers: Array<[string, string]>) =>
  headers.map(([n, v]) => `${Buffer.from(n).toString('base64').replace(/=+$/, '')}:${Buffer.from(v).toString('base64').replace(/=+$/, '')}`).join(';');

/** Answers one request stream the way cloudflared does. */
function serve(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
  stream.on('error', () => undefined);
  if (headers['cf-cloudflared-proxy-connection-upgrade'] === 'websocket') {
    stream.respond({
      ':status': 200,
      'cf-cloudflared-response-headers': ws([
        ['Connection', 'Upgrade'],
        ['Sec-Websocket-Accept', 's3pPLMBiTxaQ9kYGzzhZRbK+xOo='],
        ['Upgrade', 'websocket'],
      ]),
      'cf-cloudflared-response-meta': ORIGIN_META,
      ...GO_ARTEFACTS,
    });
    stream.pipe(stream); // an echoing origin, bytes piped as cloudflared pipes them
    return;
  }
  const path = String(headers[':path']);
  if (path === '/error') {
    stream.respond({ ':status': 502, 'cf-cloudflared-response-meta': '{"src":"cloudflared"}', ...GO_ARTEFACTS }, { endStream: true });
    return;
  }
  stream.resume();
  if (path.startsWith('/test.Echo/')) {
    // Trailers-only gRPC error: the status in the serialized head, then an empty DATA frame with END_STREAM.
    stream.respond({
      ':status': 200,
      'cf-cloudflared-response-headers': ws([
        ['Content-Type', 'application/grpc'],
        ['Grpc-Message', 'no%20such%20thing'],
        ['Grpc-Status', '5'],
      ]),
      'cf-cloudflared-response-meta': ORIGIN_META,
      ...GO_ARTEFACTS,
    });
    stream.end();
    return;
  }
  stream.respond({
    ':status': 200,
    'cf-cloudflared-response-headers': `${SERIALIZED_HEADERS_EXAMPLE};${ws([['Content-Length', '5']])}`,
    'cf-cloudflared-response-meta': ORIGIN_META,
    'content-length': '5',
    ...GO_ARTEFACTS,
  });
  stream.end('hello');
}

test('cloudflared recorded: registration, config push, HTTP, error, WebSocket, trailers-only gRPC error, shutdown', async (t) => {
  const sim = await startEdgeSimulator({
    credentials: { accountTag: GOLDEN_REGISTRATION.accountTag, tunnelSecret: GOLDEN_REGISTRATION.tunnelSecret, tunnelId: GOLDEN_REGISTRATION.tunnelId },
    locationName: 'LIS',
  });
  t.teardown(() => sim.close());
  const standIn = await dialLikeCloudflared(sim.edgeAddress, sim.caPem, serve);
  t.teardown(() => standIn.session.destroy());
  t.is(standIn.socket.alpnProtocol, false);
  const { edge, control: stream } = standIn;

  // Registration, pipelined on the bootstrap answer.
  const result = await registerLikeCloudflared(standIn);
  const bootstrap = edge.received.find((d) => d.message.type === 'return' && d.message.answerId === 0)!;
  t.like(bootstrap.message, { type: 'return', result: { kind: 'results', payload: { capTable: [{ kind: 'senderHosted', id: 0 }] } } });
  t.true(result.ok);
  if (result.ok) {
    t.is(result.details.uuid.length, 16);
    t.is(result.details.locationName, 'LIS');
    t.false(result.details.tunnelIsRemotelyManaged);
  }
  edge.send(hex(CLOUDFLARED_RPC.finish), encodeFinish(1, false));
  edge.send(hex(CLOUDFLARED_RPC.updateCall));
  await edge.waitForCount(3);
  t.like(edge.received[2]!.message, { type: 'return', answerId: 2, result: { kind: 'results' } });
  edge.send(encodeFinish(2, false));

  const [connection] = await sim.waitForRegistrations(1);
  const reg = connection!.registration!;
  t.is(reg.connIndex, 0);
  t.is(bytesToUuid(reg.options.client.clientId), GOLDEN_REGISTRATION.clientId);
  t.deepEqual(reg.options.client.features, [...GOLDEN_REGISTRATION.features]);
  t.is(reg.options.client.version, GOLDEN_REGISTRATION.version);
  t.is(reg.options.client.arch, GOLDEN_REGISTRATION.arch);
  t.is(connection!.controlStatus, 200);
  await sim.waitFor(() => connection!.localConfigs.length === 1, 2000, 'the config push');
  t.is(connection!.localConfigs[0]!.toString(), '{"ingress":[]}');

  // An HTTP response with serialized headers: repeated Set-Cookie, empty value, content-length from HTTP/2.
  const reply = await new Promise<{ status: number; raw: string[]; body: string }>((resolve, reject) => {
    http
      .get(`${sim.eyeballUrl}/page`, { headers: { host: 'app.example.com' }, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, raw: res.rawHeaders, body }));
      })
      .on('error', reject);
  });
  t.is(reply.status, 200);
  t.is(reply.body, 'hello');
  const pairs = [];
  for (let i = 0; i < reply.raw.length; i += 2) pairs.push([reply.raw[i]!.toLowerCase(), reply.raw[i + 1]!]);
  t.deepEqual(
    pairs.filter(([n]) => n === 'set-cookie').map(([, v]) => v),
    ['a=1', 'b=2'],
  );
  t.deepEqual(
    pairs.filter(([n]) => ['content-type', 'x-empty', 'content-length'].includes(n!)),
    [
      ['content-type', 'text/plain'],
      ['x-empty', ''],
      ['content-length', '5'],
    ],
  );

  // A cloudflared-generated error: 502, meta src cloudflared, no serialized headers.
  const error = await new Promise<number>((resolve, reject) => {
    http
      .get(`${sim.eyeballUrl}/error`, { headers: { host: 'app.example.com' }, agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      })
      .on('error', reject);
  });
  t.is(error, 502);

  // A WebSocket: the eyeball sees 101 with the origin's accept, then bytes both ways unchanged.
  const eyeball = new URL(sim.eyeballUrl);
  const raw = netConnect(Number(eyeball.port), eyeball.hostname);
  t.teardown(() => raw.destroy());
  raw.write(
    'GET /chat HTTP/1.1\r\nHost: app.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  let received = Buffer.alloc(0);
  raw.on('data', (c: Buffer) => (received = Buffer.concat([received, c])));
  const until = async (what: string, ok: () => boolean) => {
    const deadline = Date.now() + 3000;
    while (!ok()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(received.toString('latin1'))}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  await until('the 101 head', () => received.includes('\r\n\r\n'));
  const head = received.subarray(0, received.indexOf('\r\n\r\n')).toString('latin1');
  t.regex(head, /^HTTP\/1\.1 101 /);
  t.regex(head, /\r\nSec-Websocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/i);
  const frame = Buffer.from([0x81, 0x85, 1, 2, 3, 4, 0x69, 0x67, 0x6f, 0x68, 0x6e]); // masked "hello"
  raw.write(frame);
  await until('the echoed frame', () => received.length >= head.length + 4 + frame.length);
  t.deepEqual(received.subarray(head.length + 4), frame);
  raw.destroy();

  // A trailers-only gRPC error in cloudflared's form reaches a gRPC client with its status.
  const service: grpc.ServiceDefinition = { unary: { path: '/test.Echo/unary', requestStream: false, responseStream: false, ...grpcJsonCodec } };
  const Client = grpc.makeGenericClientConstructor(service, 'Echo');
  const client = new Client(eyeball.host, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'grpc.example.com' }) as unknown as grpc.Client & {
    unary(request: unknown, callback: (err: grpc.ServiceError | null) => void): void;
  };
  t.teardown(() => client.close());
  const status = await new Promise<grpc.ServiceError | null>((resolve) => client.unary({ v: 'x' }, resolve));
  t.is(status?.code, grpc.status.NOT_FOUND, status?.message);
  t.is(status?.details, 'no such thing');

  // Graceful shutdown: unregister, then Release + Abort, then the end of the control stream.
  edge.send(hex(CLOUDFLARED_RPC.unregisterCall));
  await edge.waitForCount(4);
  t.like(edge.received[3]!.message, { type: 'return', answerId: 1, result: { kind: 'results' } });
  edge.send(encodeFinish(1, false), hex(CLOUDFLARED_RPC.release), hex(CLOUDFLARED_RPC.abort));
  stream.end();
  await sim.waitFor(() => connection!.unregistered && connection!.controlEnded, 2000, 'unregister and the end of the control stream');
  t.false(connection!.routable);
  const seq = connection!.rpc!.events.sequence();
  const at = (name: string) => seq.findIndex((s) => s.startsWith(name));
  t.true(at('release:0') > at('call:unregisterConnection'), seq.join(','));
  t.true(at('abort') > at('release:0'), seq.join(','));
  t.deepEqual(sim.violations, []);
});
