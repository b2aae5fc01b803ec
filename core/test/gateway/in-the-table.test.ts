/**
 * The Gateway API source and the route builder together: HTTPRoutes land in the one route table with their
 * conditions, and their wildcard hostnames cover hosts of any depth while an Ingress wildcard covers one label.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { GatewayRouteSource } from '../../src/gateway/source.js';
import { RouteTableBuilder } from '../../src/routes/build.js';
import { describeRouteTable, routeViewQuery } from '../../src/routes/debug-view.js';
import { formatRouteTableView, runRoutesCommand } from '../../src/cli-routes.js';
import type { RequestFacts } from '../../src/routes/types.js';
import { testRoutingConfig } from '../routes/support.js';
import { gatewaySnapshot } from './support.js';

const DIR = fileURLToPath(new URL('../../../test/gateway/fixtures/', import.meta.url));
const objects = (file: string) =>
  parseAllDocuments(readFileSync(DIR + file, 'utf8'))
    .map((d) => d.toJS() as { kind?: string })
    .filter((d) => d?.kind !== 'GatewayTest');
const get = (headers: string[] = [], query = '', method = 'GET'): RequestFacts => ({ method, headers, query });
const build = (docs: readonly unknown[]) => new RouteTableBuilder({ ...testRoutingConfig(), sources: [new GatewayRouteSource()] }).build(gatewaySnapshot(docs));

test('HTTPRoute rules join the table with their conditions, and a request failing them falls through', (t) => {
  const table = build(objects('attach-and-weights.yaml'));
  t.true(table.hosts.includes('web.example.com'));
  t.regex(table.match('web.example.com', '/api', get(['x-canary', 'yes'], 'Debug=on'))?.id ?? '', /^HTTPRoute:apps\/web#r0\/m0\/b\d$/);
  t.is(table.match('web.example.com', '/api', get(['x-canary', 'yes'], 'Debug=on', 'POST'))?.id, 'HTTPRoute:apps/web#r1/m0');
});

test('a Gateway wildcard hostname covers hosts of any depth; an Ingress wildcard exactly one label', (t) => {
  const docs = objects('hostnames-and-backends.yaml');
  const table = build(docs);
  const one = table.match('x.example.com', '/', get());
  const deep = table.match('x.y.example.com', '/', get());
  t.truthy(one, 'one label below the wildcard');
  t.truthy(deep, 'two labels below the wildcard');
  t.is(deep?.ingress.kind, 'HTTPRoute');

  // An Ingress `*.example.org` beside it answers one label below, never two.
  const mixed = build([
    ...docs,
    { apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass', metadata: { name: 'cloudflare-tunnel' }, spec: { controller: 'warren.dev/ingress-controller' } },
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name: 'wild', namespace: 'apps' },
      spec: {
        ingressClassName: 'cloudflare-tunnel',
        rules: [{ host: '*.example.org', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } }] } }],
      },
    },
  ]);
  t.is(mixed.match('a.example.org', '/', get())?.ingress.name, 'wild');
  t.is(mixed.match('a.b.example.org', '/', get()), undefined);
  t.is(mixed.match('x.y.example.com', '/', get())?.ingress.kind, 'HTTPRoute');
});

/** Two Gateways with identical host-less routes, a route attached to both, and a host-less Ingress with a default backend. */
function twoGateways(): unknown[] {
  const gateway = (name: string) => ({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name, namespace: 'apps', creationTimestamp: '2026-01-01T00:00:00Z' },
    spec: { gatewayClassName: 'warren', listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] },
  });
  const route = (name: string, parents: string[], rule: Record<string, unknown>, stamp: string) => ({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name, namespace: 'apps', creationTimestamp: stamp },
    spec: { parentRefs: parents.map((p) => ({ name: p })), rules: [rule] },
  });
  const service = (name: string) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'apps' }, spec: { ports: [{ port: 80 }] } });
  return [
    { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: 'warren' }, spec: { controllerName: 'warren.dev/gateway-controller' } },
    gateway('g1'),
    gateway('g2'),
    service('one'),
    service('two'),
    service('both'),
    route('r1', ['g1'], { backendRefs: [{ name: 'one', port: 80 }] }, '2026-01-01T00:00:01Z'),
    route('r2', ['g2'], { backendRefs: [{ name: 'two', port: 80 }] }, '2026-01-01T00:00:02Z'),
    route('r3', ['g1', 'g2'], { matches: [{ path: { type: 'PathPrefix', value: '/both' } }], backendRefs: [{ name: 'both', port: 80 }] }, '2026-01-01T00:00:03Z'),
    { apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass', metadata: { name: 'cloudflare-tunnel' }, spec: { controller: 'warren.dev/ingress-controller' } },
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name: 'ing', namespace: 'apps' },
      spec: {
        ingressClassName: 'cloudflare-tunnel',
        defaultBackend: { service: { name: 'one', port: { number: 80 } } },
        rules: [{ http: { paths: [{ path: '/ing', pathType: 'Prefix', backend: { service: { name: 'one', port: { number: 80 } } } }] } }],
      },
    },
  ];
}

test('a tunnel per Gateway: each entrance matches only its own Gateway’s routes; the main one only Ingress routes', (t) => {
  const table = new RouteTableBuilder({ ...testRoutingConfig(), sources: [new GatewayRouteSource({ perGatewayTunnels: true })] }).build(gatewaySnapshot(twoGateways()));
  const at = (path: string, gateway?: string) => table.match('any.example', path, get(), gateway);
  t.is(at('/', 'apps/g1')?.ingress.name, 'r1');
  t.is(at('/', 'apps/g2')?.ingress.name, 'r2', 'the same host-less path on another Gateway is that Gateway’s route');
  t.is(at('/both/x', 'apps/g1')?.ingress.name, 'r3', 'a route attached to both Gateways is served through both');
  t.is(at('/both/x', 'apps/g2')?.ingress.name, 'r3');
  t.is(at('/both/x', 'apps/g2')?.gateway, 'apps/g2');
  t.is(at('/ing/x', 'apps/g1')?.ingress.name, 'r1', 'an Ingress path is not served through a Gateway’s tunnel');
  t.is(at('/', 'apps/other'), undefined, 'no default backend through a Gateway’s tunnel');
  t.is(at('/ing/x')?.ingress.name, 'ing');
  t.is(at('/both/x')?.ingress.name, 'ing', 'no Gateway route through the main tunnel: the Ingress default backend answers');
  t.false(
    table.diagnostics.some((d) => d.reason === 'RouteConflict'),
    table.diagnostics.map((d) => d.message).join('\n'),
  );

  // Sharing one tunnel, the two host-less routes claim the same (host, path): the older wins, the other is reported.
  const shared = new RouteTableBuilder({ ...testRoutingConfig(), sources: [new GatewayRouteSource()] }).build(gatewaySnapshot(twoGateways()));
  t.is(shared.match('any.example', '/', get())?.ingress.name, 'r1');
  t.true(shared.diagnostics.some((d) => d.reason === 'RouteConflict' && d.object.name === 'r2'));
});

test('the route table view matches as a request on a Gateway’s own tunnel when asked, and names each route’s Gateway', (t) => {
  const table = new RouteTableBuilder({ ...testRoutingConfig(), sources: [new GatewayRouteSource({ perGatewayTunnels: true })] }).build(gatewaySnapshot(twoGateways()));
  const view = (gateway?: string) => describeRouteTable(table, undefined, { host: 'any.example', path: '/', gateway });
  t.is(view('apps/g2').match?.ingress, 'apps/r2');
  t.is(view('apps/g1').match?.ingress, 'apps/r1');
  t.is(view().match?.ingress, 'apps/ing', 'the main tunnel: the Ingress default backend');
  t.deepEqual(
    view()
      .routes.filter((r) => r.ingress === 'apps/r3')
      .map((r) => r.gateway)
      .sort(),
    ['apps/g1', 'apps/g2'],
  );
  t.is(routeViewQuery(new URLSearchParams('host=a&path=/&gateway=apps/g1')).gateway, 'apps/g1');
  t.regex(formatRouteTableView(view('apps/g2')), /this request gets: \* \/ \(Prefix\) from HTTPRoute apps\/r2 via Gateway apps\/g2 → apps\/two:80/);
});

test('warren routes --gateway needs --path', async (t) => {
  const err: string[] = [];
  const code = await runRoutesCommand(['--host', 'a.example', '--gateway', 'apps/g1'], { write: () => true }, { write: (s: string) => err.push(s) });
  t.is(code, 2);
  t.regex(err.join(''), /--gateway needs --host and --path/);
});
