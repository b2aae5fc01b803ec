import anyTest, { type TestFn } from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { parseConfig, resolvePlugins, RouteTableBuilder, routingConfig, snapshotFromObjects, type LoadedPlugin, type RouteTable } from '@warren/core';
import { capturedLogger, loggedError, startProxyHarness } from '@warren/core/testing';
import { startPhpFpm, type PhpFpm } from './support/php-fpm.js';
import { freePort } from './support/ports.js';
import { SCRIPTS } from './support/scripts.js';

/**
 * `warren.dev/backend-protocol: FCGI` end to end: Ingress objects through Warren's routing model, the plugin
 * loaded by package name through `extraPlugins` as the controller loads it, requests through the real pipeline
 * and plain-HTTP entry point to a real PHP-FPM.
 */

const test = anyTest as TestFn<{ fpm: PhpFpm; plugins: LoadedPlugin[] }>;
const PACKAGE = '@warren-examples/plugin-fastcgi';

test.before(async (t) => {
  t.context.fpm = await startPhpFpm({ scripts: SCRIPTS, workers: 4 });
  t.context.plugins = await resolvePlugins(parseConfig({ extraPlugins: [{ package: PACKAGE, config: { documentRoot: '/nonexistent' } }] }));
});

test.after.always(async (t) => {
  await t.context.fpm?.stop();
});

/** The route table Warren builds for one Ingress to a Service whose endpoints are `ports` on 127.0.0.1. */
function table(plugins: readonly LoadedPlugin[], annotations: Record<string, string>, ports: readonly number[]): RouteTable {
  const objects = [
    { kind: 'IngressClass', metadata: { name: 'cloudflare-tunnel' }, spec: { controller: 'warren.dev/ingress-controller' } },
    { kind: 'Service', metadata: { name: 'php', namespace: 'web' }, spec: { ports: [{ name: 'fastcgi', port: 9000, targetPort: 9000 }] } },
    ...ports.map((port, i) => ({
      kind: 'EndpointSlice',
      metadata: { name: `php-${i}`, namespace: 'web', labels: { 'kubernetes.io/service-name': 'php' } },
      addressType: 'IPv4',
      ports: [{ name: 'fastcgi', port }],
      endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true } }],
    })),
    {
      kind: 'Ingress',
      metadata: { name: 'php', namespace: 'web', annotations },
      spec: {
        ingressClassName: 'cloudflare-tunnel',
        rules: [{ host: 'php.test', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'php', port: { name: 'fastcgi' } } } }] } }],
      },
    },
  ];
  const { snapshot, problems } = snapshotFromObjects(objects);
  if (problems.length > 0) throw new Error(JSON.stringify(problems));
  const config = parseConfig({});
  return new RouteTableBuilder(
    routingConfig(
      config,
      plugins.map((p) => p.module.manifest),
    ),
  ).build(snapshot);
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** Set when the response was cut off. */
  error?: string;
}

function send(url: string, options: { method?: string; path?: string; headers?: Record<string, string>; body?: Buffer } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}${options.path ?? '/'}`, { method: options.method ?? 'GET', agent: false, headers: { host: 'php.test', ...options.headers } }, (res) => {
      const chunks: Buffer[] = [];
      const done = (error?: string): void => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks), ...(error ? { error } : {}) });
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => done());
      res.on('error', (err) => done(err.message));
      res.on('aborted', () => done('aborted'));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

const ANNOTATIONS = (fpm: PhpFpm): Record<string, string> => ({
  'warren.dev/backend-protocol': 'FCGI',
  'warren.dev/fastcgi-script-root': fpm.root,
  'warren.dev/fastcgi-index': 'echo.php',
  'warren.dev/fastcgi-params': '# comments and blank lines are skipped\n\nAPP_MODE=cluster\n',
});

test('backend-protocol FCGI: routing model, pipeline and PHP-FPM; annotations choose root, index and params', async (t) => {
  const { fpm, plugins } = t.context;
  const routes = table(plugins, ANNOTATIONS(fpm), [fpm.port]);
  t.deepEqual(routes.diagnostics, []);
  t.is(routes.routes[0]!.protocol, 'fcgi');
  const proxy = await startProxyHarness({ loadedPlugins: plugins, table: routes });
  t.teardown(() => proxy.close());

  const index = await send(proxy.url, { path: '/?q=1' });
  t.is(index.status, 200);
  const seen = JSON.parse(index.body.toString()) as { server: Record<string, string>; get: Record<string, string> };
  t.like(seen.server, { SCRIPT_NAME: '/echo.php', DOCUMENT_ROOT: fpm.root, APP_MODE: 'cluster', QUERY_STRING: 'q=1', HTTP_HOST: 'php.test', REMOTE_ADDR: '127.0.0.1' });
  t.is(seen.server.HTTP_X_FORWARDED_FOR, '127.0.0.1', "core's forwarding fields reach the script");

  const body = randomBytes(2 << 20);
  const upload = await send(proxy.url, { method: 'POST', path: '/echo.php', body, headers: { 'content-type': 'application/octet-stream' } });
  const echoed = JSON.parse(upload.body.toString()) as { bytes: number; sha256: string };
  t.is(echoed.bytes, body.length);
  t.is(echoed.sha256, createHash('sha256').update(body).digest('hex'));

  const created = await send(proxy.url, { path: '/status.php' });
  t.is(created.status, 201);
  t.deepEqual(created.headers['set-cookie'], ['a=1', 'b=2']);
  const moved = await send(proxy.url, { path: '/redirect.php' });
  t.is(moved.status, 302);
  t.is(moved.headers.location, '/elsewhere?from=php');
  t.is((await send(proxy.url, { path: '/nope.php' })).status, 404, "PHP-FPM's own 404 for an unknown script");

  const download = await send(proxy.url, { path: '/big.php?mb=16' });
  t.is(download.body.length, 16 << 20);
});

test('a worker killed mid-response reaches the client cut off, and the log says why', async (t) => {
  const { fpm, plugins } = t.context;
  const { logger, lines } = capturedLogger();
  const proxy = await startProxyHarness({ loadedPlugins: plugins, table: table(plugins, ANNOTATIONS(fpm), [fpm.port]), logger });
  t.teardown(() => proxy.close());
  const reply = await send(proxy.url, { path: '/killed.php' });
  t.is(reply.status, 200);
  t.truthy(reply.error, 'the client sees a broken response');
  t.true(reply.body.length < 100_000);
  t.regex(loggedError(lines), /closed the connection|ECONNRESET|UND_ERR_SOCKET/);
});

test('PHP-FPM not listening: core ejects the endpoint and retries on the live one; with none live, 502', async (t) => {
  const { fpm, plugins } = t.context;
  const dead = await freePort(); // nothing listens there
  const proxy = await startProxyHarness({ loadedPlugins: plugins, table: table(plugins, ANNOTATIONS(fpm), [dead, fpm.port]) });
  t.teardown(() => proxy.close());
  // The balancer breaks ties at random: send until the dead endpoint was picked once (bounded), then some more.
  const retries = async (): Promise<string> => proxy.metrics.getSingleMetricAsString('warren_upstream_retries_total');
  for (let i = 0; i < 30 && !/ 1$/m.test(await retries()); i++) t.is((await send(proxy.url, { path: '/status.php' })).status, 201);
  for (let i = 0; i < 4; i++) t.is((await send(proxy.url, { path: '/status.php' })).status, 201);
  // Tried once, ejected (not tried again), and that request retried on the live endpoint.
  t.regex(await retries(), /^warren_upstream_retries_total 1$/m);
  t.regex(await proxy.metrics.getSingleMetricAsString('warren_upstream_ejections_total'), /^warren_upstream_ejections_total\S* 1$/m);

  const { logger, lines } = capturedLogger();
  const down = await startProxyHarness({ loadedPlugins: plugins, table: table(plugins, ANNOTATIONS(fpm), [dead]), logger });
  t.teardown(() => down.close());
  const reply = await send(down.url, { path: '/status.php' });
  t.is(reply.status, 502);
  t.regex(reply.body.toString(), /the origin could not be reached/);
  t.regex(loggedError(lines), /ECONNREFUSED/);
});

test('a WebSocket upgrade to a FastCGI route is answered by the script as a plain request (FastCGI cannot upgrade)', async (t) => {
  const { fpm, plugins } = t.context;
  const proxy = await startProxyHarness({ loadedPlugins: plugins, table: table(plugins, ANNOTATIONS(fpm), [fpm.port]) });
  t.teardown(() => proxy.close());
  const reply = await send(proxy.url, {
    path: '/echo.php',
    headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' },
  });
  t.is(reply.status, 200);
  const seen = JSON.parse(reply.body.toString()) as { server: Record<string, string> };
  t.is(seen.server.REQUEST_METHOD, 'GET');
  t.false('HTTP_UPGRADE' in seen.server, 'hop-by-hop fields are not forwarded');
});

test('invalid FastCGI annotations skip the Ingress with InvalidAnnotation saying what is expected', (t) => {
  const { fpm, plugins } = t.context;
  const cases: Array<[string, string, RegExp]> = [
    ['warren.dev/fastcgi-index', '../secret.php', /a file name such as "index.php"/],
    ['warren.dev/fastcgi-script-root', 'relative/path', /an absolute path such as "\/var\/www\/html"/],
    ['warren.dev/fastcgi-script-root', '/srv/../etc', /without "\." or "\.\." elements/],
    ['warren.dev/fastcgi-params', 'SCRIPT_FILENAME=/a.php\nnot a pair', /line 2 does not start with a NAME=/],
    ['warren.dev/fastcgi-params', 'A=1\nA=2', /line 2 repeats A/],
  ];
  for (const [key, value, message] of cases) {
    const routes = table(plugins, { ...ANNOTATIONS(fpm), [key]: value }, [fpm.port]);
    t.is(routes.routes.length, 0, `${key}: ${value}`);
    const d = routes.diagnostics.find((x) => x.reason === 'InvalidAnnotation');
    t.truthy(d, `${key}: ${value}`);
    t.true(d!.message.includes(key), d!.message);
    t.regex(d!.message, message);
  }
  const unknown = table(plugins, { 'warren.dev/backend-protocol': 'FCGX' }, [fpm.port]);
  t.regex(unknown.diagnostics.find((x) => x.reason === 'InvalidAnnotation')!.message, /FCGI|fcgi/, 'the accepted protocols are listed');
});

test('bad settings are refused at load time with the key named', async (t) => {
  const err = await t.throwsAsync(resolvePlugins(parseConfig({ extraPlugins: [{ package: PACKAGE, config: { documentRoot: 'www', maxParamsBytes: 10, colour: 'red' } }] })));
  t.regex(err!.message, /extraPlugins\[0\]\.config\.documentRoot/);
  t.regex(err!.message, /extraPlugins\[0\]\.config\.maxParamsBytes/);
  t.regex(err!.message, /unknown setting "extraPlugins\[0\]\.config\.colour"/);
});
