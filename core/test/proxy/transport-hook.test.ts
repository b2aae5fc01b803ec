import test from 'ava';
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { defineManifest, type PluginManifest } from '../../src/plugin-api/manifest.js';
import { definePlugin } from '../../src/plugin-api/module.js';
import type { DispatchHandler, PoolDispatchOptions, RouteBinding, TransportProfile, UpstreamPlugin, UpstreamPool } from '../../src/plugin-api/upstream.js';
import { RequestController } from '../../src/proxy/controller.js';
import { RoutingPlugins } from '../../src/routes/plugins.js';
import { usesTls } from '../../src/proxy/compile.js';
import { ProtocolCatalog, chooseProtocol } from '../../src/routes/protocol.js';
import { capturedLogger, getText, loggedError, startOrigin, startProxyHarness, testRoute, testRouteTable } from '../../src/testing/index.js';

/**
 * The transport hook: a plugin that serves a backend protocol of its own (here a made-up one, `line`: the request
 * line goes out as one text line, the reply is whatever the server writes before closing) gets the per-endpoint
 * pools of its routes from its `createPool`, while core still picks endpoints, retries connect failures and counts
 * pool references.
 */

const opened: Array<{ origin: string; profile: TransportProfile; route: string }> = [];
/** Every connection a LinePool opened. */
const connections: Socket[] = [];

/** One connection per request: writes `METHOD PATH ROUTE-ID\n`, reads until the server closes. */
class LinePool implements UpstreamPool {
  readonly #host: string;
  readonly #port: number;
  readonly #connectTimeout: number;
  readonly #sockets = new Set<Socket>();
  #closed = false;

  constructor(origin: string, profile: TransportProfile) {
    const url = new URL(origin);
    this.#host = url.hostname;
    this.#port = Number(url.port);
    this.#connectTimeout = profile.connectTimeout;
  }

  dispatch(options: PoolDispatchOptions, handler: DispatchHandler): boolean {
    const socket = connect({ host: this.#host, port: this.#port, timeout: this.#connectTimeout });
    const controller = new RequestController((reason) => socket.destroy(reason));
    this.#sockets.add(socket);
    connections.push(socket);
    handler.onRequestStart?.(controller, {});
    if (this.#closed) socket.destroy(Object.assign(new Error('pool closed'), { code: 'UND_ERR_CLOSED' }));
    const chunks: Buffer[] = [];
    let failed = false;
    socket.once('connect', () => socket.end(`${options.method} ${options.path} ${options.context?.route.id ?? '-'}\n`));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('end', () => {
      if (failed) return;
      const body = Buffer.concat(chunks);
      handler.onResponseStart?.(controller, 200, { 'content-type': 'text/plain', 'content-length': String(body.length) }, 'OK');
      handler.onResponseData?.(controller, body);
      handler.onResponseEnd?.(controller, {});
    });
    socket.once('error', (err) => {
      failed = true;
      handler.onResponseError?.(controller, err);
    });
    socket.once('close', () => this.#sockets.delete(socket));
    return true;
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  async destroy(): Promise<void> {
    this.#closed = true;
    for (const s of this.#sockets) s.destroy();
  }
}

class LinePlugin implements UpstreamPlugin {
  createPool(binding: RouteBinding, origin: string, profile: TransportProfile): UpstreamPool {
    opened.push({ origin, profile, route: binding.route.id });
    return new LinePool(origin, profile);
  }
}

const lineManifest = defineManifest({
  id: 'test.line',
  name: 'line',
  description: 'serves the line protocol',
  coreRange: '^0.1.0',
  kind: 'protocol',
  order: 1,
  protocols: ['line'],
  appProtocols: { 'example.com/line': 'line' },
  configSchema: z.object({}).strict(),
});

const linePlugin = definePlugin({ manifest: lineManifest, plugin: LinePlugin });

/** A `line` server on loopback: answers `seen: <request line>` and closes. */
async function startLineServer(): Promise<{ key: string; lines: string[]; close(): Promise<void> }> {
  const lines: string[] = [];
  const server: Server = createServer((socket) => {
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
      const end = text.indexOf('\n');
      if (end < 0) return;
      lines.push(text.slice(0, end));
      socket.end(`seen: ${text.slice(0, end)}`);
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { key: `127.0.0.1:${port}`, lines, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** A loopback port nothing listens on (it was just closed). */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

test.serial('a route whose protocol a plugin serves gets its pools from the plugin, keyed by its id and shared per endpoint', async (t) => {
  opened.length = 0;
  const line = await startLineServer();
  const origin = await startOrigin();
  const a = testRoute({ id: 'ns/a#0/', host: 'a.test', endpoints: [line.key], protocol: 'line' });
  const b = testRoute({ id: 'ns/b#0/', host: 'b.test', endpoints: [line.key], protocol: 'line' });
  const plain = testRoute({ id: 'ns/plain#0/', host: 'plain.test', endpoints: [origin.key] });
  const proxy = await startProxyHarness({ plugins: [{ module: linePlugin }], table: testRouteTable([a, b, plain]) });
  t.teardown(() => Promise.all([proxy.close(), line.close(), origin.close()]));

  const first = await getText(`${proxy.url}/x?y=1`, 'a.test');
  t.is(first.status, 200);
  t.is(first.body, 'seen: GET /x?y=1 ns/a#0/');
  const second = await getText(`${proxy.url}/z`, 'b.test');
  t.is(second.body, 'seen: GET /z ns/b#0/', 'per-route facts reach the shared pool with each request');
  t.is((await getText(`${proxy.url}/`, 'plain.test')).status, 200, 'core still serves http through its own pools');

  t.deepEqual(line.lines, ['GET /x?y=1 ns/a#0/', 'GET /z ns/b#0/']);
  t.is(opened.length, 1, 'both routes share the one pool of the endpoint');
  t.is(opened[0]!.origin, `http://${line.key}`);
  t.is(opened[0]!.profile.connectTimeout, proxy.config.proxy.connectTimeout, 'the pool gets the profile core and the transport plugins made');
  const keys = [...proxy.pipeline.liveCompiled!.pools];
  t.is(keys.filter((k) => k.startsWith('test.line|')).length, 1);
  t.is(keys.filter((k) => !k.startsWith('test.line|')).length, 1, 'the http route has a pool of its own');
  t.is(proxy.pipeline.openPools, 2);
});

test.serial('the same endpoint as http and as the plugin protocol gets two pools that never mix', async (t) => {
  opened.length = 0;
  const line = await startLineServer();
  const asLine = testRoute({ id: 'ns/l#0/', host: 'l.test', endpoints: [line.key], protocol: 'line' });
  const asHttp = testRoute({ id: 'ns/h#0/', host: 'h.test', endpoints: [line.key] });
  const proxy = await startProxyHarness({ plugins: [{ module: linePlugin }], table: testRouteTable([asLine, asHttp]) });
  t.teardown(() => Promise.all([proxy.close(), line.close()]));
  await proxy.pipeline.whenCompiled();
  const compiled = proxy.pipeline.liveCompiled!.routes;
  const lineKey = compiled.get(asLine)!.poolKeys[0]!;
  const httpKey = compiled.get(asHttp)!.poolKeys[0]!;
  t.not(lineKey, httpKey);
  t.true(lineKey.startsWith('test.line|'));
  t.is(lineKey.slice('test.line|'.length), httpKey, 'same origin and profile, told apart only by the plugin');
  t.is((await getText(`${proxy.url}/q`, 'l.test')).body, 'seen: GET /q ns/l#0/');
  t.is(opened.length, 1);
});

test.serial('core retries a connect failure of a plugin pool on the next endpoint', async (t) => {
  opened.length = 0;
  const line = await startLineServer();
  const dead = `127.0.0.1:${await deadPort()}`;
  const route = testRoute({ id: 'ns/r#0/', host: 'r.test', endpoints: [dead, line.key], protocol: 'line' });
  const proxy = await startProxyHarness({ plugins: [{ module: linePlugin }], table: testRouteTable([route]), settings: { proxy: { loadBalancing: 'round-robin' } } });
  t.teardown(() => Promise.all([proxy.close(), line.close()]));
  for (let i = 0; i < 4; i++) {
    const reply = await getText(`${proxy.url}/${i}`, 'r.test');
    t.is(reply.status, 200, `request ${i}`);
  }
  t.is(line.lines.length, 4);
  t.is(opened.length, 2, 'one pool per endpoint, the dead one included');
  t.true(opened.some((o) => o.origin === `http://${dead}`));
});

test('backend-protocol accepts what an enabled manifest lists, and nothing else', (t) => {
  const withLine = new RoutingPlugins([lineManifest]);
  const spec = withLine.annotation('backend-protocol')!.spec;
  t.deepEqual(RoutingPlugins.parse(spec, ' Line '), { ok: true, value: 'line' });
  t.deepEqual(RoutingPlugins.parse(spec, 'HTTP'), { ok: true, value: 'http' });
  t.deepEqual(RoutingPlugins.parse(spec, 'auto_http'), { ok: true, value: 'auto' });
  const refused = RoutingPlugins.parse(spec, 'FTP');
  t.false(refused.ok);
  t.regex((refused as { expected: string }).expected, /one of HTTP, LINE, AUTO, AUTO_HTTP \(case-insensitive\)/);

  const without = new RoutingPlugins([]);
  t.false(RoutingPlugins.parse(without.annotation('backend-protocol')!.spec, 'LINE').ok, 'no enabled or known plugin lists it');
  const disabled = new RoutingPlugins([], [lineManifest]);
  t.true(RoutingPlugins.parse(disabled.annotation('backend-protocol')!.spec, 'LINE').ok, "a known but disabled plugin's protocol parses, to be reported as unavailable");
  t.false(disabled.serves('line'));
  t.is(disabled.disabledProtocolOwner('line'), 'test.line (plugins.line.enabled)');
});

test('a Service port appProtocol maps through the manifest to the plugin protocol', (t) => {
  const plugins = new RoutingPlugins([lineManifest]);
  const backend = { namespace: 'ns', service: 's', port: 9000, appProtocol: 'Example.com/LINE', endpoints: [] };
  t.is(chooseProtocol(undefined, backend, plugins), 'line');
  t.is(chooseProtocol('auto', backend, plugins), 'line');
  t.is(chooseProtocol(undefined, backend, new RoutingPlugins([])), 'http', 'an appProtocol nobody maps is ignored');
});

test.serial('an upgrading plugin may give upgrade requests pools of another profile', async (t) => {
  class Upgrader implements UpstreamPlugin {
    upgradeProfile(_binding: RouteBinding, profile: Readonly<TransportProfile>): TransportProfile {
      return { ...profile, keepAlive: undefined };
    }
    onUpgrade(): Promise<void> {
      return Promise.resolve();
    }
  }
  const upgrader = definePlugin({
    manifest: defineManifest({
      id: 'test.upgrader',
      name: 'upgrader',
      description: 'upgrades',
      coreRange: '^0.1.0',
      kind: 'protocol',
      order: 2,
      configSchema: z.object({}).strict(),
    }),
    plugin: Upgrader,
  });
  class KeepAlive implements UpstreamPlugin {
    configureTransport(_binding: RouteBinding, profile: TransportProfile): void {
      profile.keepAlive = { timeout: 1_000, maxConnections: 2 };
    }
  }
  const keep = definePlugin({
    manifest: defineManifest({
      id: 'test.keep',
      name: 'keep',
      description: 'keeps alive',
      coreRange: '^0.1.0',
      kind: 'transport',
      order: 1,
      configSchema: z.object({}).strict(),
    }),
    plugin: KeepAlive,
  });
  const route = testRoute({ host: 'u.test', endpoints: ['127.0.0.1:9'] });
  const proxy = await startProxyHarness({ plugins: [{ module: upgrader }, { module: keep }], table: testRouteTable([route]) });
  t.teardown(() => proxy.close());
  await proxy.pipeline.whenCompiled();
  const compiled = proxy.pipeline.liveCompiled!.routes.get(route)!;
  t.is(compiled.upgradePoolKeys!.length, 1);
  t.not(compiled.upgradePoolKeys![0], compiled.poolKeys[0]);
  t.regex(compiled.poolKeys[0]!, /\|1000\/2\|/, 'requests keep their kept-alive pool');
  t.regex(compiled.upgradePoolKeys![0]!, /\|close\|/, 'upgrades get the profile the plugin asked for');
  t.deepEqual(new Set(proxy.pipeline.liveCompiled!.pools), new Set([compiled.poolKeys[0], compiled.upgradePoolKeys![0]]), 'the generation holds both');
});

test('AUTO and TLS come from manifest data: a plugin protocol is guessed from its port name or port, and its traits pick TLS', (t) => {
  const manifest: PluginManifest = { ...lineManifest, protocols: ['line', 'lines'], protocolTraits: { lines: { tls: true, ports: [7443] } } };
  const catalog = new ProtocolCatalog([manifest]);
  t.is(catalog.infer('line', 80), 'line');
  t.is(catalog.infer('Lines-admin', 80), 'lines', 'Istio-style <protocol>-<suffix>, the longest declared head');
  t.is(catalog.infer(undefined, 7443), 'lines', 'a port the manifest declares');
  t.is(catalog.infer('web', 443), 'http', 'nothing declares 443 here: core knows no https');
  t.is(catalog.infer('example.com/line', 80), 'line', 'a mapped appProtocol value names the protocol too');
  const route = (protocol: string, port = 80, portName?: string) => testRoute({ endpoints: [`127.0.0.1:${port}`], port, portName, protocol });
  t.true(usesTls(route('lines'), catalog));
  t.false(usesTls(route('line'), catalog));
  t.true(usesTls(route('auto', 7443), catalog));
  t.false(usesTls(route('auto', 443), catalog));
  t.true(new ProtocolCatalog([], [manifest]).traits('lines')?.tls, "a disabled plugin's protocols are known, to name the plugin");
});

test.serial("core bounds the wait for a plugin pool's response head (response-header-timeout)", async (t) => {
  const held: Socket[] = [];
  const silent = createServer((socket) => {
    held.push(socket);
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const s of held) s.destroy();
    silent.close();
  });
  const key = `127.0.0.1:${(silent.address() as AddressInfo).port}`;
  const route = testRoute({ host: 's.test', endpoints: [key], protocol: 'line', annotations: { 'response-header-timeout': 300 } });
  const { logger, lines } = capturedLogger();
  const proxy = await startProxyHarness({ plugins: [{ module: linePlugin }], table: testRouteTable([route]), logger });
  t.teardown(() => proxy.close());
  const started = Date.now();
  const reply = await getText(`${proxy.url}/`, 's.test');
  const elapsed = Date.now() - started;
  t.is(reply.status, 504);
  t.true(elapsed >= 250 && elapsed < 3_000, `answered after ${elapsed} ms`);
  t.regex(loggedError(lines), /no response head in time/);
  t.is(held.length, 1);
  t.true(connections.at(-1)!.destroyed, "the pool's request was aborted: its connection is closed");
});
