import test from 'ava';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { configSchema } from '../../src/config/schema.js';
import { createRootContainer } from '../../src/composition/root.js';
import { provideTunnel, TUNNEL } from '../../src/composition/tunnel.js';
import { PARTS } from '../../src/composition/parts.js';
import { TOKENS } from '../../src/di/tokens.js';
import { Backoff } from '../../src/tunnel/backoff.js';
import { parseConfigurationUpdate } from '../../src/tunnel/configuration-update.js';
import { originLocalIp } from '../../src/tunnel/connection.js';
import { encodeTunnelToken } from '../../src/tunnel/credentials.js';
import { buildRequestHead } from '../../src/tunnel/request-head.js';
import { classifyStream } from '../../src/tunnel/stream-classifier.js';

test('stream classification follows the reference precedence and compares values exactly', (t) => {
  const u = 'cf-cloudflared-proxy-connection-upgrade';
  const src = 'cf-cloudflared-proxy-src';
  t.is(classifyStream({ [u]: 'update-configuration', [src]: 'x' }), 'configuration');
  t.is(classifyStream({ [u]: 'websocket', [src]: 'x' }), 'websocket');
  t.is(classifyStream({ [src]: 'warp', [u]: 'control-stream' }), 'tcp');
  t.is(classifyStream({ [src]: '', [u]: 'control-stream' }), 'control');
  t.is(classifyStream({ [u]: 'WebSocket' }), 'http');
  t.is(classifyStream({}), 'http');
  t.is(classifyStream({ [u]: ['websocket', 'control-stream'] as unknown as string }), 'websocket');
});

test('request heads keep header order, join cookies, drop transport headers and validate the pseudo-headers', (t) => {
  const raw = [
    ':method',
    'PUT',
    ':scheme',
    'http',
    ':authority',
    'a.example:8443',
    ':path',
    '/x?y=1',
    'b',
    '1',
    'cookie',
    'c=1',
    'cf-cloudflared-proxy-connection-upgrade',
    'websocket',
    'a',
    '2',
    'cookie',
    'd=2',
    'content-length',
    '4',
    'cf-connecting-ip',
    '198.18.0.3',
  ];
  const r = buildRequestHead(raw, undefined);
  if (!r.ok) return t.fail(r.problem);
  t.deepEqual(r.head.headers, ['b', '1', 'a', '2', 'content-length', '4', 'cf-connecting-ip', '198.18.0.3', 'cookie', 'c=1; d=2']);
  t.is(r.head.scheme, 'https');
  t.is(r.head.contentLength, 4);
  t.is(r.head.clientAddress, '198.18.0.3');
  const noBody = buildRequestHead([':method', 'GET', ':path', '/', 'host', 'h.example'], undefined, true);
  t.true(noBody.ok && noBody.head.authority === 'h.example' && noBody.head.contentLength === 0);
  const streamed = buildRequestHead([':method', 'POST', ':path', '/', ':authority', 'h'], undefined, false);
  t.true(streamed.ok && streamed.head.contentLength === undefined);
  const ws = buildRequestHead([':method', 'GET', ':path', '/', ':authority', 'h', 'content-length', '0'], 'websocket', true);
  t.true(ws.ok && ws.head.upgrade === 'websocket' && ws.head.contentLength === undefined);
  t.deepEqual(buildRequestHead([':path', '/', ':authority', 'h'], undefined), { ok: false, field: ':method', problem: 'missing' });
  t.like(buildRequestHead([':method', 'GET', ':authority', 'h'], undefined), { ok: false, field: ':path' });
  t.like(buildRequestHead([':method', 'GET', ':path', '*', ':authority', 'h'], undefined), { ok: false, field: ':path' });
  t.true(buildRequestHead([':method', 'OPTIONS', ':path', '*', ':authority', 'h'], undefined).ok);
  t.like(buildRequestHead([':method', 'GET', ':path', '/'], undefined), { ok: false, field: ':authority' });
  t.like(buildRequestHead([':method', 'GET', ':path', '/', ':authority', 'h', 'content-length', '1', 'content-length', '2'], undefined), {
    ok: false,
    field: 'content-length',
  });
  t.like(buildRequestHead([':method', 'GET', ':path', '/', ':authority', 'h', 'content-length', '0x10'], undefined), { ok: false, field: 'content-length' });
});

test('backoff waits are random below base × 2^retries, capped, honour a minimum and reset', (t) => {
  const max = new Backoff(100, 3, () => 0.999);
  t.deepEqual([max.next(), max.next(), max.next(), max.next()], [199, 399, 799, 799]);
  t.is(max.retries, 3);
  max.reset();
  t.is(max.retries, 0);
  const min = new Backoff(100, 3, () => 0);
  t.is(min.next(), 0);
  t.is(min.next(250), 250, 'the edge retryAfter is a floor');
});

test('the origin local IP is 16 bytes with IPv4 mapped', (t) => {
  t.deepEqual(originLocalIp('127.0.0.1'), Buffer.from('00000000000000000000ffff7f000001', 'hex'));
  t.deepEqual(originLocalIp('::ffff:198.18.0.2'), Buffer.from('00000000000000000000ffffc6120002', 'hex'));
  t.deepEqual(originLocalIp('2606:4700::1'), Buffer.from('26064700000000000000000000000001', 'hex'));
  t.deepEqual(originLocalIp('::1'), Buffer.from('00000000000000000000000000000001', 'hex'));
  t.is(originLocalIp('not-an-ip'), undefined);
  t.is(originLocalIp(undefined), undefined);
});

test('configuration pushes must be {"version": int32, "config": …}', (t) => {
  t.deepEqual(parseConfigurationUpdate(Buffer.from('{"version":0,"config":{"ingress":[]}}')), { version: 0, config: { ingress: [] } });
  for (const bad of ['', 'x', '[]', 'null', '{"version":1.5}', '{"version":"1"}', '{"version":2147483648}']) t.is(parseConfigurationUpdate(Buffer.from(bad)), undefined, bad);
});

test('the tunnel part is built from the root container and publishes the tunnel id before it connects', (t) => {
  const tunnelId = '11111111-2222-3333-4444-555555555555';
  const env = { TUNNEL_TOKEN: encodeTunnelToken({ accountTag: 'account', tunnelSecret: Buffer.alloc(32, 7), tunnelId }) };
  const config = configSchema.parse({ tunnel: { edgeAddresses: ['127.0.0.1:7844'], haConnections: 2 } });
  const root = createRootContainer(config, { logger: pino({ level: 'silent' }), registry: new Registry(), env });
  root.register(TOKENS.ExchangeHandler, { useValue: { handle: async () => undefined } });
  const credentials = provideTunnel(root, { cluster: false });
  t.is(credentials?.tunnelId, tunnelId, 'folder mode reads the supplied credentials at assembly');
  const part = root.resolve(TUNNEL);
  t.false(part.needsLeader);
  t.is(part.connector, undefined, 'no connector before the start');
  t.deepEqual(root.resolve(TOKENS.TunnelState).current, { id: tunnelId, formerIds: [], registeredConnections: 0 });
  t.is<unknown, unknown>(root.resolve(PARTS.TunnelState), root.resolve(TOKENS.TunnelState), 'one store: the writer side is the published one');
});
