/**
 * The read-only debug view of the live route table: `GET /debug/routes` on the health server (real HTTP), and the
 * `warren routes` command that prints it (in-process and through the real entry point).
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import test from 'ava';
import { execFile } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { Registry } from 'prom-client';
import { request } from 'undici';
import { HealthServer } from '../../src/observability/health-server.js';
import { RouteTableBuilder } from '../../src/routes/build.js';
import { describeRouteTable, routeViewQuery, type RouteTableView } from '../../src/routes/debug-view.js';
import { RouteStore } from '../../src/routes/store.js';
import { snapshotFromObjects } from '../../src/routes/snapshot.js';
import { runRoutesCommand } from '../../src/cli-routes.js';
import { FAKE_KIND, type FakeRoute, fakeRouteSource, testRoutingConfig } from './support.js';

const SECRET_VALUE = 'c3VwZXItc2VjcmV0LWtleS1tYXRlcmlhbA==';
const MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url));

const OBJECTS = [
  { kind: 'IngressClass', metadata: { name: 'cloudflare-tunnel' }, spec: { controller: 'warren.dev/ingress-controller' } },
  {
    kind: 'Ingress',
    metadata: {
      name: 'shop',
      namespace: 'default',
      uid: 'u1',
      generation: 3,
      annotations: { 'warren.dev/proxy-ssl-secret': 'upstream-ca', 'warren.dev/backend-protocol': 'HTTPS' },
    },
    spec: {
      ingressClassName: 'cloudflare-tunnel',
      rules: [
        {
          host: 'shop.example',
          http: {
            paths: [
              { path: '/admin', pathType: 'Prefix', backend: { service: { name: 'admin-svc-typo', port: { number: 80 } } } },
              { path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { name: 'https' } } } },
              { path: '/idle', pathType: 'Exact', backend: { service: { name: 'idle', port: { number: 80 } } } },
            ],
          },
        },
      ],
    },
  },
  {
    kind: 'Ingress',
    metadata: { name: 'other', namespace: 'team', uid: 'u2', generation: 1 },
    spec: {
      ingressClassName: 'cloudflare-tunnel',
      rules: [{ host: 'other.example', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } }] } }],
    },
  },
  { kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: { ports: [{ name: 'https', port: 443 }] } },
  { kind: 'Service', metadata: { name: 'idle', namespace: 'default' }, spec: { ports: [{ port: 80 }] } },
  {
    kind: 'EndpointSlice',
    metadata: { name: 'web-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4',
    ports: [{ name: 'https', port: 8443 }],
    endpoints: [
      { addresses: ['198.18.0.2'], targetRef: { kind: 'Pod', name: 'web-abc' }, zone: 'z1' },
      { addresses: ['198.18.0.3'], conditions: { ready: false } },
    ],
  },
  { kind: 'Secret', metadata: { name: 'upstream-ca', namespace: 'default' }, data: { 'ca.crt': SECRET_VALUE } },
];

async function startHealth(t: import('ava').ExecutionContext): Promise<{ url: string; store: RouteStore }> {
  const settings = testRoutingConfig();
  const { snapshot } = snapshotFromObjects(OBJECTS);
  const store = new RouteStore();
  store.publish(new RouteTableBuilder(settings).build(snapshot));
  const health = new HealthServer({ listen: '127.0.0.1:0', registry: new Registry(), logger: pino({ level: 'silent' }) });
  health.serveRouteView((query) => describeRouteTable(store.current, settings.plugins, routeViewQuery(query)));
  const stop = new AbortController();
  const running = health.start(stop.signal);
  t.teardown(async () => {
    stop.abort();
    await running;
  });
  const { port } = await health.address();
  return { url: `http://127.0.0.1:${port}`, store };
}

async function getView(url: string): Promise<{ status: number; type: string | undefined; text: string }> {
  const res = await request(url);
  return { status: res.statusCode, type: res.headers['content-type'] as string | undefined, text: await res.body.text() };
}

test('GET /debug/routes shows every route with its source, backend, endpoints, protocol, plugins and problems', async (t) => {
  const { url } = await startHealth(t);
  const res = await getView(`${url}/debug/routes`);
  t.is(res.status, 200);
  t.regex(res.type ?? '', /^application\/json/);
  const view = JSON.parse(res.text) as RouteTableView;
  t.is(view.generation, 1);
  t.is(view.totalRoutes, 4);
  t.deepEqual(
    view.routes.map((r) => `${r.host} ${r.path} ${r.state}`),
    ['other.example / unresolved', 'shop.example / serving', 'shop.example /admin unresolved', 'shop.example /idle no-endpoints'],
  );
  const web = view.routes.find((r) => r.host === 'shop.example' && r.path === '/')!;
  t.is(web.ingress, 'default/shop');
  t.is(web.ingressGeneration, 3);
  t.deepEqual(web.backend, { namespace: 'default', service: 'web', port: 443, portName: 'https' });
  t.is(web.protocol, 'https');
  t.deepEqual(web.plugins, ['upstream.tls']);
  t.deepEqual(web.annotations, ['warren.dev/backend-protocol', 'warren.dev/proxy-ssl-secret']);
  t.deepEqual(web.secretRefs, ['default/upstream-ca']);
  t.deepEqual(web.endpoints, [{ address: '198.18.0.2', port: 8443, state: 'ready', pod: 'web-abc', zone: 'z1' }]);
  const admin = view.routes.find((r) => r.path === '/admin')!;
  t.is(admin.problem?.reason, 'ServiceNotFound');
  t.regex(admin.problem?.message ?? '', /admin-svc-typo not found; requests to this path get 503/);
  t.true(view.problems.some((p) => p.reason === 'ServiceNotFound' && p.object === 'Ingress default/shop' && p.field?.endsWith('service.name') === true));
  t.true(view.problems.some((p) => p.reason === 'ServiceNotFound' && p.object === 'Ingress team/other'));
  // Names of Secrets only, never their contents.
  t.false(res.text.includes(SECRET_VALUE));
  t.false(res.text.includes('ca.crt'));
});

test('without a view (server.debugRoutes=false) /debug/routes is not found', async (t) => {
  const health = new HealthServer({ listen: '127.0.0.1:0', registry: new Registry(), logger: pino({ level: 'silent' }) });
  const stop = new AbortController();
  const running = health.start(stop.signal);
  t.teardown(async () => {
    stop.abort();
    await running;
  });
  const { port } = await health.address();
  t.is((await getView(`http://127.0.0.1:${port}/debug/routes`)).status, 404);
});

test('the view filters by host, tells which route a request gets, and bounds its size', async (t) => {
  const { url } = await startHealth(t);
  const filtered = JSON.parse((await getView(`${url}/debug/routes?host=SHOP.example:443&path=/admin/secret`)).text) as RouteTableView;
  t.deepEqual(
    filtered.routes.map((r) => r.path),
    ['/', '/admin', '/idle'],
  );
  t.is(filtered.match?.path, '/admin');
  t.is(filtered.match?.state, 'unresolved');
  t.true(filtered.problems.every((p) => p.object === 'Ingress default/shop'));
  const none = JSON.parse((await getView(`${url}/debug/routes?host=nowhere.example&path=/`)).text) as RouteTableView;
  t.is(none.match, null);
  const limited = JSON.parse((await getView(`${url}/debug/routes?limit=1`)).text) as RouteTableView;
  t.is(limited.routes.length, 1);
  t.deepEqual(limited.truncated, { routes: 3, problems: limited.problems.length + limited.truncated.problems - 1 });
  t.is((await request(`${url}/debug/routes`, { method: 'POST' })).statusCode, 405);
});

test('warren routes prints the table, the matching route and the problems', async (t) => {
  const { url } = await startHealth(t);
  let out = '';
  let err = '';
  const code = await runRoutesCommand(
    ['--url', url, '--host', 'shop.example', '--path', '/admin/x'],
    { write: (s: string) => (out += s) },
    { write: (s: string) => (err += s) },
  );
  t.is(code, 0, err);
  t.regex(out, /^route table generation 1: 4 routes/);
  t.regex(out, /this request gets: shop\.example \/admin \(Prefix\) from default\/shop → default\/admin-svc-typo:80, 503 ServiceNotFound/);
  t.regex(out, /shop\.example\s+\/ \(Prefix\)\s+default\/shop\s+default\/web:https\s+https\s+upstream\.tls\s+1 endpoint$/m);
  t.regex(out, /shop\.example\/: 198\.18\.0\.2:8443 ready \(web-abc\)/);
  t.regex(out, /PROBLEMS\nWarning ServiceNotFound Ingress default\/shop spec\.rules\[0\]\.http\.paths\[0\]\.backend\.service\.name: /);
  t.notRegex(out, /other\.example/);
});

test('warren routes through the real entry point: JSON output, and a clear error when nothing listens', async (t) => {
  const { url } = await startHealth(t);
  const run = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [MAIN, 'routes', ...args], { timeout: 20_000 }, (e, stdout, stderr) =>
        resolve({ code: e ? Number((e as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
  const json = await run(['--url', url, '--json']);
  t.is(json.code, 0, json.stderr);
  t.is((JSON.parse(json.stdout) as RouteTableView).totalRoutes, 4);
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const { port } = closed.address() as AddressInfo;
  await new Promise((resolve) => closed.close(resolve));
  const down = await run(['--url', `http://127.0.0.1:${port}`]);
  t.is(down.code, 1);
  t.regex(down.stderr, new RegExp(`cannot reach Warren's health server at http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`));
  const bad = await run(['--path', '/x']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /--path needs --host/);
  const badLimit = await run(['--url', url, '--limit', 'ten']);
  t.is(badLimit.code, 2, 'a --limit that is not a number is refused, not ignored');
  t.regex(badLimit.stderr, /--limit must be a whole number from 1 to 10000, not "ten"/);
});

test('the view shows Gateway API routes with their kind, conditions, weights and problems, and matches a plain GET', (t) => {
  const fake: FakeRoute = {
    kind: 'FakeRoute',
    metadata: { name: 'split', namespace: 'team', creationTimestamp: '2024-01-01T00:00:00Z' },
    spec: {
      hostname: 'other.example',
      rules: [
        { path: '/api', headers: [{ name: 'x-env', value: 'canary' }], backends: [{ service: 'web', port: 80 }] },
        { path: '/api', query: [{ name: 'v', value: '2' }], backends: [{ service: 'web', port: 80, weight: 0 }] },
        { path: '/missing', backends: [{ service: 'ghost', port: 80 }] },
      ],
    },
  };
  const { snapshot } = snapshotFromObjects(OBJECTS);
  const settings = { ...testRoutingConfig(), sources: [fakeRouteSource] };
  const table = new RouteTableBuilder(settings).build({ ...snapshot, extra: new Map([[FAKE_KIND, new Map([['team/split', fake as KubernetesObject]])]]) });
  const view = describeRouteTable(table, settings.plugins, { host: 'other.example', path: '/api?v=2' });
  const byId = new Map(view.routes.map((r) => [r.id, r]));
  t.like(byId.get('HTTPRoute:team/split#r0/m0/b0'), {
    kind: 'HTTPRoute',
    ingress: 'team/split',
    conditions: { headers: [{ name: 'x-env', type: 'Exact', value: 'canary' }] },
  });
  t.like(byId.get('HTTPRoute:team/split#r1/m0/b0'), { weight: { group: 'HTTPRoute:team/split#r1', weight: 0 } });
  t.like(byId.get('HTTPRoute:team/split#r2/m0/b0'), { state: 'unresolved', problem: { status: 500 } });
  t.is(byId.get('team/other#0/0')?.kind, undefined, 'Ingress routes carry no kind');
  // A plain GET with ?v=2 gets the query match, whose only backend has weight 0: unavailable (500).
  t.like(view.match, { id: 'HTTPRoute:team/split#r1', state: 'unresolved', problem: { reason: 'NoWeight', status: 500 } });
  t.true(
    view.problems.some((p) => p.object === 'HTTPRoute team/split' && p.reason === 'BackendNotFound'),
    'problems of the host include the HTTPRoute',
  );
});
