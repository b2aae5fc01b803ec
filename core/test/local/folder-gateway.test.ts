/**
 * The Gateway API in folder mode: GatewayClasses, Gateways, HTTPRoutes and GRPCRoutes read from a folder go
 * through the cluster's route source into the one route table, and requests through Warren's proxy reach real
 * origins on loopback. Problems a cluster's status would show are log lines of the event log, naming the object,
 * the field and the file. The cases and expected problems live with the objects in
 * core/test/local/fixtures/gateway-routes.yaml.
 */
import test, { type ExecutionContext } from 'ava';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { parseAllDocuments } from 'yaml';
import { assembleWarren, type Warren } from '../../src/bootstrap.js';
import { createTestCa, issueCert } from '../../src/edge-simulator/certs.js';
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { startOrigin, type TestOrigin } from '../../src/proxy/testing.js';
import type { RouteTable } from '../../src/routes/types.js';
import { capturingLogger, grpcJsonCodec } from '../../src/testing/index.js';

const FIXTURE = fileURLToPath(new URL('../../../test/local/fixtures/gateway-routes.yaml', import.meta.url));
/** Bound of every wait for a route table. */
const wait = () => ({ signal: AbortSignal.timeout(15_000) });

interface HttpCase {
  readonly host: string;
  readonly path: string;
  readonly method?: string;
  readonly headers?: Record<string, string>;
  /** An origin name (`v1`, `v2`), several (each must answer at least once), or a status code. */
  readonly expect: string | string[] | number;
  readonly repeat?: number;
  readonly upstreamHeaders?: Record<string, string>;
  readonly upstreamPath?: string;
  readonly responseHeaders?: Record<string, string>;
  readonly location?: string;
}
interface GrpcCase {
  readonly authority: string;
  readonly method: string;
  readonly expect: 'ok' | 'unimplemented';
}
interface ExpectedProblem {
  readonly reason: string;
  /** `Kind namespace/name` or `Kind name`. */
  readonly object: string;
  readonly field?: string;
  readonly contains: readonly string[];
}
interface FolderRouteTest {
  readonly cases: readonly HttpCase[];
  readonly grpc: readonly GrpcCase[];
  readonly unserved: readonly HttpCase[];
  readonly diagnostics: readonly ExpectedProblem[];
}

type Line = Record<string, unknown>;

interface Running {
  readonly warren: Warren;
  readonly folder: string;
  readonly lines: () => Line[];
  readonly names: ReadonlyMap<string, string>;
  readonly grpcPort: number;
}

/** Starts the origins, writes the fixture (ports filled in) into a new folder and runs Warren in folder mode on it. */
/** `gateway`: setting `gateway.enabled` (default true). */
async function start(t: ExecutionContext, gateway = true): Promise<{ running: Running; spec: FolderRouteTest; text: string }> {
  const origins: Record<string, TestOrigin> = { v1: await startOrigin(), v2: await startOrigin() };
  t.teardown(() => Promise.all(Object.values(origins).map((o) => o.close())));
  const grpcPort = await startGrpcOrigin(t);
  const text = readFileSync(FIXTURE, 'utf8')
    .replaceAll('PORT_V1', String(origins.v1!.port))
    .replaceAll('PORT_V2', String(origins.v2!.port))
    .replaceAll('PORT_GRPC', String(grpcPort));
  const spec = parseAllDocuments(text)[0]!.toJS() as FolderRouteTest;
  const folder = mkdtempSync(join(tmpdir(), 'warren-folder-gateway-'));
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  writeFileSync(join(folder, 'routes.yaml'), text);

  const { logger, lines } = capturingLogger();
  const config = parseConfig({
    source: { kind: 'folder', folder },
    tunnel: { enabled: false },
    server: { listen: '127.0.0.1:0', proxyListen: '127.0.0.1:0' },
    kubernetes: { resyncBurstWindow: '10ms' },
    gateway: { enabled: gateway },
  });
  const warren = await runWarren(t, config, logger);
  await warren.routes.waitFor((table) => table.generation > 0 && (!gateway || hostsOf(table).has('shop.example.test')), wait());
  const names = new Map(Object.entries(origins).map(([name, o]) => [o.key, name]));
  return { running: { warren, folder, lines, names, grpcPort }, spec, text };
}

/** Assembles and runs Warren until the test ends. */
async function runWarren(t: ExecutionContext, config: Config, logger: Logger): Promise<Warren> {
  const warren = await assembleWarren(config, { logger, env: {} });
  const stop = new AbortController();
  const run = warren.run(stop.signal);
  t.teardown(async () => {
    stop.abort();
    await run;
    await warren.close();
  });
  return warren;
}

function hostsOf(table: RouteTable): Set<string> {
  return new Set(table.routes.map((r) => r.host ?? ''));
}

interface Answer {
  readonly status: number;
  readonly origin: string | undefined;
  readonly url: string | undefined;
  readonly upstream: Record<string, string>;
  readonly headers: Record<string, string | string[] | undefined>;
}

async function send(running: Running, c: Pick<HttpCase, 'host' | 'path' | 'method' | 'headers'>): Promise<Answer> {
  const res = await request(`${running.warren.httpEntry!.url}${c.path}`, { method: (c.method ?? 'GET') as 'GET', headers: { host: c.host, ...c.headers } });
  const body = await res.body.text();
  let echo: { origin?: string; url?: string; headers?: Record<string, string> } = {};
  if (res.statusCode === 200) echo = JSON.parse(body) as typeof echo;
  return {
    status: res.statusCode,
    origin: echo.origin === undefined ? undefined : running.names.get(echo.origin),
    url: echo.url,
    upstream: echo.headers ?? {},
    headers: res.headers,
  };
}

async function checkCase(t: ExecutionContext, running: Running, c: HttpCase): Promise<void> {
  const label = `${c.method ?? 'GET'} ${c.host}${c.path}`;
  const seen = new Set<string>();
  for (let i = 0; i < (c.repeat ?? 1); i++) {
    const answer = await send(running, c);
    if (typeof c.expect === 'number') {
      t.is(answer.status, c.expect, label);
      if (c.location !== undefined) t.is(answer.headers.location, c.location, label);
      continue;
    }
    t.is(answer.status, 200, label);
    if (answer.origin !== undefined) seen.add(answer.origin);
    for (const [name, value] of Object.entries(c.upstreamHeaders ?? {})) t.is(answer.upstream[name], value, `${label}: upstream header ${name}`);
    for (const [name, value] of Object.entries(c.responseHeaders ?? {})) t.is(answer.headers[name], value, `${label}: response header ${name}`);
    if (c.upstreamPath !== undefined) t.is(answer.url, c.upstreamPath, label);
  }
  if (typeof c.expect !== 'number') t.deepEqual([...seen].sort(), [c.expect].flat().sort(), `${label}: answered by`);
}

const SERVICE: grpc.ServiceDefinition = {
  unary: { path: '/folder.Echo/Unary', requestStream: false, responseStream: false, ...grpcJsonCodec },
};

async function startGrpcOrigin(t: ExecutionContext): Promise<number> {
  const server = new grpc.Server();
  server.addService(SERVICE, {
    unary: (call: grpc.ServerUnaryCall<{ v: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, { echo: call.request.v }),
  });
  server.addService(
    { unary: { ...SERVICE.unary!, path: '/folder.Other/Unary' } },
    { unary: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, { other: true }) },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  t.teardown(() => server.forceShutdown());
  return port;
}

/** One unary call through Warren's plain-HTTP entry (h2c) with `authority` as the request host. */
async function callGrpc(running: Running, c: GrpcCase): Promise<{ code: number; reply: unknown }> {
  const Client = grpc.makeGenericClientConstructor({ unary: { ...SERVICE.unary!, path: c.method } }, 'Echo');
  const client = new Client(new URL(running.warren.httpEntry!.url).host, grpc.credentials.createInsecure(), {
    'grpc.default_authority': c.authority,
  }) as unknown as grpc.Client & {
    unary(request: unknown, options: grpc.CallOptions, callback: (err: grpc.ServiceError | null, reply: unknown) => void): void;
  };
  try {
    return await new Promise((resolve) =>
      client.unary({ v: 'from the folder' }, { deadline: Date.now() + 10_000 }, (err, reply) => resolve({ code: err ? err.code : grpc.status.OK, reply })),
    );
  } finally {
    client.close();
  }
}

const warnings = (running: Running) => running.lines().filter((l) => l.component === 'events' && l.event === 'Warning');

function objectName(line: Line): string {
  const o = line.object as { kind: string; namespace?: string; name: string };
  return `${o.kind} ${o.namespace ? `${o.namespace}/` : ''}${o.name}`;
}

/** Waits until every expected problem is logged (bounded), then checks each has a line of its own. */
async function checkProblems(t: ExecutionContext, running: Running, expected: readonly ExpectedProblem[], file = 'routes.yaml'): Promise<void> {
  const matches = (line: Line, p: ExpectedProblem) =>
    line.reason === p.reason &&
    objectName(line) === p.object &&
    p.contains.every((s) => String(line.msg).includes(s)) &&
    (p.field === undefined || String(line.msg).includes(p.field));
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && !expected.every((p) => warnings(running).some((l) => matches(l, p)))) await new Promise((resolve) => setTimeout(resolve, 25));
  const logged = warnings(running);
  for (const p of expected) {
    const line = logged.find((l) => matches(l, p));
    t.truthy(
      line,
      `logged: ${p.reason} on ${p.object} (${p.contains.join(', ')}); got:\n${logged.map((l) => `${String(l.reason)} ${objectName(l)}: ${String(l.msg)}`).join('\n')}`,
    );
    if (line) t.true(String(line.file).endsWith(file), `${p.reason}: the line names the manifest file`);
  }
}

test('HTTPRoutes from a folder serve real origins through the one route table: matches, filters, weights, ReferenceGrants', async (t) => {
  const { running, spec } = await start(t);
  for (const c of spec.cases) await checkCase(t, running, c);
});

test('a GRPCRoute from a folder routes by service and method to a real gRPC origin', async (t) => {
  const { running, spec } = await start(t);
  for (const c of spec.grpc) {
    const { code, reply } = await callGrpc(running, c);
    if (c.expect === 'ok') {
      t.is(code, grpc.status.OK, c.method);
      t.deepEqual(reply, { echo: 'from the folder' });
    } else t.is(code, grpc.status.UNIMPLEMENTED, `${c.method}: not routed`);
  }
});

test('a route whose parentRef names a Gateway of another class is not served, and the log says why, naming object, field and file', async (t) => {
  const { running, spec } = await start(t);
  for (const c of spec.unserved) await checkCase(t, running, c);
  await checkProblems(t, running, spec.diagnostics);
  // Every problem once: a problem does not repeat while it lasts.
  const keys = warnings(running).map((l) => `${String(l.reason)} ${objectName(l)} ${String(l.msg)}`);
  t.deepEqual(keys, [...new Set(keys)]);
});

test('editing the folder re-routes live; a malformed Gateway API object is left out alone, and served again once fixed', async (t) => {
  const { running, text } = await start(t);
  const { warren, folder } = running;
  const generation = () => warren.routes.current.generation;

  // An edit of the route: the canary header now goes to v1, and a new host is served.
  let before = generation();
  writeFileSync(
    join(folder, 'routes.yaml'),
    text
      .replace(
        'backendRefs: [{name: v2, port: 80}]\n    - matches: [{path: {type: PathPrefix, value: /api}}]',
        'backendRefs: [{name: v1, port: 80}]\n    - matches: [{path: {type: PathPrefix, value: /api}}]',
      )
      .replace('hostnames: [shop.example.test]', 'hostnames: [shop.example.test, store.example.test]'),
  );
  await warren.routes.waitFor((table) => table.generation > before && hostsOf(table).has('store.example.test'), wait());
  t.is((await send(running, { host: 'shop.example.test', path: '/api/x', headers: { 'x-canary': 'yes' } })).origin, 'v1');
  t.is((await send(running, { host: 'store.example.test', path: '/api/x' })).origin, 'v1');

  // A second file: a Gateway with a listener of the wrong type next to a good Gateway and its route. Only the
  // malformed Gateway is left out: its route is not served, the rest of the file is.
  const extra = (port: unknown) =>
    [
      'apiVersion: gateway.networking.k8s.io/v1',
      'kind: Gateway',
      'metadata: {name: bad, namespace: infra}',
      `spec: {gatewayClassName: cloudflare-tunnel, listeners: [{name: web, port: ${JSON.stringify(port)}, protocol: HTTP, hostname: bad.example.org, allowedRoutes: {namespaces: {from: All}}}]}`,
      '---',
      'apiVersion: gateway.networking.k8s.io/v1',
      'kind: Gateway',
      'metadata: {name: good, namespace: infra}',
      'spec: {gatewayClassName: cloudflare-tunnel, listeners: [{name: web, port: 80, protocol: HTTP, hostname: good.example.org, allowedRoutes: {namespaces: {from: All}}}]}',
      ...['bad', 'good'].flatMap((name) => [
        '---',
        'apiVersion: gateway.networking.k8s.io/v1',
        'kind: HTTPRoute',
        `metadata: {name: via-${name}, namespace: shop}`,
        `spec: {parentRefs: [{name: ${name}, namespace: infra}], rules: [{backendRefs: [{name: v2, port: 80}]}]}`,
      ]),
    ].join('\n');
  before = generation();
  writeFileSync(join(folder, 'more.yaml'), extra('eighty'));
  await warren.routes.waitFor((table) => table.generation > before && hostsOf(table).has('good.example.org'), wait());
  t.is((await send(running, { host: 'good.example.org', path: '/' })).origin, 'v2');
  t.is((await send(running, { host: 'bad.example.org', path: '/' })).status, 404, 'the malformed Gateway serves nothing');
  const rejected = running.lines().find((l) => String(l.msg).includes('Gateway infra/bad') && String(l.msg).includes('spec.listeners[0].port'));
  t.truthy(rejected, 'the log names the object and the field');
  t.regex(String(rejected?.msg), /more\.yaml, document 1/);
  t.regex(String(rejected?.msg), /left out/);
  await checkProblems(
    t,
    running,
    [{ reason: 'GatewayNotFound', object: 'HTTPRoute shop/via-bad', field: 'spec.parentRefs[0]', contains: ['Gateway infra/bad'] }],
    'more.yaml',
  );

  // Fixed: the Gateway and its route are served.
  before = generation();
  writeFileSync(join(folder, 'more.yaml'), extra(80));
  await warren.routes.waitFor((table) => table.generation > before && hostsOf(table).has('bad.example.org'), wait());
  t.is((await send(running, { host: 'bad.example.org', path: '/' })).origin, 'v2');

  // Deleted: its routes leave the table.
  before = generation();
  rmSync(join(folder, 'more.yaml'));
  await warren.routes.waitFor((table) => table.generation > before && !hostsOf(table).has('good.example.org'), wait());
  t.is((await send(running, { host: 'good.example.org', path: '/' })).status, 404);
});

test("with gateway.enabled false the folder's Gateway API objects are not served, and the log says so once", async (t) => {
  const { running } = await start(t, false);
  t.is((await send(running, { host: 'shop.example.test', path: '/api/items' })).status, 404);
  t.deepEqual(hostsOf(running.warren.routes.current), new Set());
  const deadline = Date.now() + 10_000;
  const told = () => running.lines().filter((l) => String(l.msg).includes('gateway.enabled is false'));
  while (told().length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
  t.is(told().length, 1);
  t.is(told()[0]!.level, 40);
  t.deepEqual(warnings(running), [], 'no Gateway problems are reported for objects that are not read');
});

test('a BackendTLSPolicy with its CA bundle in a folder ConfigMap verifies a real HTTPS origin; a ConfigMap edit applies live', async (t) => {
  const ca = createTestCa('Folder Backend CA');
  const other = createTestCa('Another CA');
  const cert = issueCert(ca, { dns: ['secure.backend.test'] });
  const origin = await startOrigin({ tls: { cert: cert.certPem, key: cert.keyPem } });
  t.teardown(() => origin.close());
  const { running } = await start(t);
  const { warren, folder } = running;
  const indent = (pem: string) => pem.trim().replaceAll('\n', '\n    ');
  const objects = (caPem: string) => `apiVersion: v1
kind: ConfigMap
metadata: {name: backend-ca, namespace: shop}
data:
  ca.crt: |
    ${indent(caPem)}
---
apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {name: secure, namespace: shop}
spec:
  targetRefs: [{group: "", kind: Service, name: secure}]
  validation: {hostname: secure.backend.test, caCertificateRefs: [{group: "", kind: ConfigMap, name: backend-ca}]}
---
apiVersion: v1
kind: Service
metadata: {name: secure, namespace: shop}
spec: {ports: [{name: https, port: 443, targetPort: ${origin.port}}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: secure-local, namespace: shop, labels: {kubernetes.io/service-name: secure}}
addressType: IPv4
endpoints: [{addresses: ["127.0.0.1"], conditions: {ready: true}}]
ports: [{name: https, port: ${origin.port}, protocol: TCP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: secure, namespace: shop}
spec:
  parentRefs: [{name: edge, namespace: infra, sectionName: web}]
  hostnames: [secure.example.test]
  rules: [{backendRefs: [{name: secure, port: 443}]}]
`;
  let before = warren.routes.current.generation;
  writeFileSync(join(folder, 'secure.yaml'), objects(ca.certPem));
  await warren.routes.waitFor((table) => table.generation > before && hostsOf(table).has('secure.example.test'), wait());
  const served = await send(running, { host: 'secure.example.test', path: '/tls' });
  t.is(served.status, 200);
  t.is(served.url, '/tls');
  t.is(origin.requests, 1);

  // The bundle now holds another CA: the origin's certificate no longer verifies, and no request reaches it.
  before = warren.routes.current.generation;
  writeFileSync(join(folder, 'secure.yaml'), objects(other.certPem));
  await warren.routes.waitFor((table) => table.generation > before, wait());
  const refused = await send(running, { host: 'secure.example.test', path: '/tls' });
  t.true(refused.status >= 500, `status ${refused.status}`);
  t.is(origin.requests, 1);
});

test("all Gateways of a folder share its one tunnel: two Gateways' routes answer through the demo edge, and their host-less routes meet the conflict rule", async (t) => {
  const v1 = await startOrigin();
  const v2 = await startOrigin();
  t.teardown(() => Promise.all([v1.close(), v2.close()]));
  const names = new Map([
    [v1.key, 'v1'],
    [v2.key, 'v2'],
  ]);
  const folder = mkdtempSync(join(tmpdir(), 'warren-folder-gateway-'));
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  const gateway = (name: string) =>
    `apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: ${name}, namespace: infra}\nspec: {gatewayClassName: cloudflare-tunnel, listeners: [{name: web, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}]}`;
  const route = (name: string, parent: string, backend: string, match: string, created: string) =>
    `apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: ${name}, namespace: apps, creationTimestamp: "${created}"}\nspec: {parentRefs: [{name: ${parent}, namespace: infra}], ${match}rules: [{matches: [{path: {type: PathPrefix, value: /shared}}], backendRefs: [{name: ${backend}, port: 80}]}]}`;
  const service = (name: string, port: number) =>
    `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}, namespace: apps}\nspec: {ports: [{port: 80, targetPort: ${port}}]}\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: ${name}-local, namespace: apps, labels: {kubernetes.io/service-name: ${name}}}\naddressType: IPv4\nendpoints: [{addresses: ["127.0.0.1"]}]\nports: [{port: ${port}, protocol: TCP}]`;
  writeFileSync(
    join(folder, 'gateways.yaml'),
    [
      'apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: cloudflare-tunnel}\nspec: {controllerName: warren.dev/gateway-controller}',
      gateway('one'),
      gateway('two'),
      route('one-host', 'one', 'v1', 'hostnames: [one.example.test], ', '2026-01-01T00:00:00Z'),
      route('two-host', 'two', 'v2', 'hostnames: [two.example.test], ', '2026-01-01T00:00:00Z'),
      route('one-any', 'one', 'v1', '', '2026-01-01T00:00:00Z'),
      route('two-any', 'two', 'v2', '', '2026-01-02T00:00:00Z'),
      service('v1', v1.port),
      service('v2', v2.port),
    ].join('\n---\n'),
  );
  const { logger, lines } = capturingLogger();
  const config = parseConfig({ source: { kind: 'folder', folder }, local: { eyeballListen: '127.0.0.1:0' }, server: { listen: '127.0.0.1:0' } });
  const warren = await runWarren(t, config, logger);
  await warren.routes.waitFor((table) => hostsOf(table).has('two.example.test'), wait());
  const through = async (host: string): Promise<string | number> => {
    const res = await request(`${warren.simulator!.eyeballUrl}/shared/x`, { headers: { host } });
    const body = await res.body.text();
    return res.statusCode === 200 ? (names.get((JSON.parse(body) as { origin: string }).origin) ?? 'unknown') : res.statusCode;
  };
  // The edge connects after the first route table: wait (bounded) until a request goes through.
  const deadline = Date.now() + 10_000;
  let first = await through('one.example.test');
  while (first !== 'v1' && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    first = await through('one.example.test');
  }
  t.is(first, 'v1');
  t.is(await through('two.example.test'), 'v2', "the other Gateway's route, through the same tunnel");
  t.is(await through('elsewhere.example.test'), 'v1', 'host-less routes of both Gateways: the older one wins for both');
  const conflict = () => lines().find((l) => l.component === 'events' && l.reason === 'RouteConflict' && objectName(l) === 'HTTPRoute apps/two-any');
  while (!conflict() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
  t.regex(String(conflict()?.msg), /HTTPRoute apps\/one-any/);
});
