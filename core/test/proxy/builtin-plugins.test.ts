import test, { type ExecutionContext } from 'ava';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { container as rootContainer } from 'tsyringe';
import { parseConfig } from '../../src/config/load.js';
import { TOKENS } from '../../src/di/tokens.js';
import { ErrorCode, isWarrenError } from '../../src/errors.js';
import { registerPlugins, resolvePlugins } from '../../src/plugins/registry.js';
import { PluginSetMembers } from '../../src/proxy/plugin-set.js';
import { capturedLogger, loggedError, startOrigin, startProxyHarness, testRoute, testRouteTable, type TestRouteInit } from '../../src/testing/index.js';

/**
 * The built-in plugins loaded by package name, exactly as the controller loads them (they must be built:
 * `npx tsc -b` or `npm test`).
 */

const UPSTREAM = ['keepalive', 'tls', 'http2', 'websocket', 'grpc', 'sse'] as const;
const noCloudflare = (): never => {
  throw new Error('no Cloudflare API in this test');
};

function get(url: string, headers: http.OutgoingHttpHeaders = {}): Promise<{ status: number; body: string; complete: boolean; headers?: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false, headers }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, body, complete: res.complete }));
        res.on('aborted', () => resolve({ status: res.statusCode!, body, complete: false }));
        res.on('error', () => resolve({ status: res.statusCode!, body, complete: false }));
      })
      .on('error', reject);
  });
}

test('container smoke test: every built-in plugin enabled, a generation child resolves every registered token', async (t) => {
  const config = parseConfig({ plugins: { dns: { enabled: true }, firewall: { enabled: true } } });
  const loaded = await resolvePlugins(config);
  t.deepEqual(loaded.map((p) => p.module.manifest.id).sort(), [
    'cloud.dns',
    'cloud.firewall',
    'upstream.grpc',
    'upstream.http2',
    'upstream.keepalive',
    'upstream.sse',
    'upstream.tls',
    'upstream.websocket',
  ]);
  const root = rootContainer.createChildContainer();
  root.register(TOKENS.CloudflareClient, { useValue: noCloudflare });
  registerPlugins(root, loaded);
  const child = root.createChildContainer();
  for (const plugin of loaded) t.is(child.resolve(plugin.module.manifest.configToken), plugin.config, plugin.module.manifest.name);
  const upstream = child.resolveAll(TOKENS.UpstreamPlugin);
  const control = child.resolveAll(TOKENS.ControlPlugin);
  // The firewall's lists are enforced in the proxy too, so it is an upstream plugin besides a control plugin.
  t.deepEqual(upstream.map((p) => p.manifest.id).sort(), ['cloud.firewall', ...UPSTREAM.map((n) => `upstream.${n}`)].sort());
  t.deepEqual(control.map((p) => p.id).sort(), ['cloud.dns', 'cloud.firewall']);
  t.is(child.resolve(TOKENS.EnabledManifests).length, 8);
  const generation = child.resolve(PluginSetMembers);
  t.is(generation.plugins.length, 7);
  t.true(
    generation.plugins.every((p) => upstream.includes(p)),
    'one instance per generation: the same objects as resolveAll',
  );
  const next = root.createChildContainer().resolve(PluginSetMembers);
  t.false(
    next.plugins.some((p) => generation.plugins.includes(p)),
    'the next generation gets fresh instances',
  );
  await child.dispose();
});

test('grpc cannot be enabled without http2', async (t) => {
  const err = await t.throwsAsync(resolvePlugins(parseConfig({ plugins: { http2: { enabled: false } } })));
  t.true(isWarrenError(err, ErrorCode.PluginDependency));
  t.regex(err!.message, /upstream\.grpc .* needs plugin upstream\.http2/);
});

async function withPlugins(t: ExecutionContext, disabled: readonly string[], route: TestRouteInit) {
  const plugins = Object.fromEntries(disabled.map((name) => [name, { enabled: false }]));
  const loaded = await resolvePlugins(parseConfig({ plugins }));
  const { logger, lines } = capturedLogger();
  const proxy = await startProxyHarness({ loadedPlugins: loaded, table: testRouteTable([testRoute(route)]), logger });
  t.teardown(() => proxy.close());
  const ids = proxy.container
    .createChildContainer()
    .resolve(PluginSetMembers)
    .plugins.map((p) => p.manifest.id);
  for (const name of disabled) t.false(ids.includes(`upstream.${name}`), `${name} is not registered`);
  return Object.assign(proxy, { lines });
}

test('disabled keepalive is absent: one upstream connection per request', async (t) => {
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const on = await withPlugins(t, [], { endpoints: [origin.key] });
  for (let i = 0; i < 4; i++) await get(on.url);
  t.is(origin.connections, 1);
  const off = await withPlugins(t, ['keepalive'], { endpoints: [origin.key] });
  for (let i = 0; i < 4; i++) await get(off.url);
  t.is(origin.connections, 5);
});

test('disabled tls is absent: an https route is not served', async (t) => {
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const proxy = await withPlugins(t, ['tls'], { endpoints: [origin.key], protocol: 'https' });
  const reply = await get(proxy.url);
  t.is(reply.status, 502);
  t.regex(loggedError(proxy.lines), /backend protocol "https" .* is served by no enabled plugin/);
  t.is(reply.body.split('\n')[0], 'the origin could not be reached', 'the client is not told the route or the protocol');
});

test('disabled http2 (and grpc) are absent: h2c and grpc routes are not served', async (t) => {
  const h2 = http2.createServer((_req, res) => res.end('h2'));
  await new Promise<void>((resolve) => h2.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => h2.close(() => resolve())));
  const key = `127.0.0.1:${(h2.address() as AddressInfo).port}`;
  const on = await withPlugins(t, [], { endpoints: [key], protocol: 'h2c' });
  t.deepEqual(await get(on.url), { status: 200, body: 'h2', complete: true });
  const off = await withPlugins(t, ['http2', 'grpc'], { endpoints: [key], protocol: 'h2c' });
  t.is((await get(off.url)).status, 502);
  // Without the gRPC plugin nothing in Warren speaks gRPC: the failure is core's HTTP error page (gRPC clients
  // read a 502 as UNAVAILABLE). With it, the same failure is a trailers-only gRPC status (error-pages.test.ts).
  const grpcOff = await withPlugins(t, ['grpc'], { endpoints: [key], protocol: 'grpc' });
  const reply = await get(grpcOff.url, { 'content-type': 'application/grpc' });
  t.is(reply.status, 502);
  t.is(reply.body.split('\n')[0], 'the origin could not be reached');
  t.regex(loggedError(grpcOff.lines), /backend protocol "grpc" .* is served by no enabled plugin/);
});

test('disabled websocket is absent: an upgrade request reaches the upstream as plain HTTP', async (t) => {
  const seen: Array<string | undefined> = [];
  const origin = await startOrigin({
    handler: (req, res) => {
      seen.push(req.headers.upgrade);
      res.writeHead(426).end('upgrade required');
    },
  });
  origin.server.on('upgrade', (req, socket) => {
    seen.push(`upgrade:${req.headers.upgrade}`);
    // The accept value RFC 6455 gives for the sample key below.
    socket.end('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n');
  });
  t.teardown(() => origin.kill());
  const upgrade = (url: string): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = http.get(url, {
        agent: false,
        headers: { connection: 'upgrade', upgrade: 'websocket', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' },
      });
      req.on('upgrade', (res, socket) => {
        socket.destroy();
        resolve(res.statusCode!);
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
    });
  const on = await withPlugins(t, [], { endpoints: [origin.key] });
  t.is(await upgrade(on.url), 101);
  const off = await withPlugins(t, ['websocket'], { endpoints: [origin.key] });
  t.is(await upgrade(off.url), 426);
  t.deepEqual(seen, ['upgrade:websocket', undefined]);
});

test('disabled sse is absent: a quiet event stream is cut by the idle timeout', async (t) => {
  const origin = await startOrigin({
    handler: (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: 1\n\n');
      setTimeout(() => res.end('data: 2\n\n'), 500);
    },
  });
  t.teardown(() => origin.kill());
  const route = { endpoints: [origin.key], annotations: { 'idle-timeout': 200 } };
  const on = await withPlugins(t, [], route);
  t.deepEqual(await get(on.url), { status: 200, body: 'data: 1\n\ndata: 2\n\n', complete: true });
  const off = await withPlugins(t, ['sse'], route);
  t.deepEqual(await get(off.url), { status: 200, body: 'data: 1\n\n', complete: false });
});
