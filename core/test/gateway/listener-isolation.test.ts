/**
 * Listener isolation and ports on a Gateway's own tunnel: a request reaches the one listener its Gateway picks —
 * on the request's port (its Host's, else the visitor scheme's default), the most specific hostname that matches —
 * and only routes attached to that listener answer it.
 */
import test from 'ava';
import { GatewayRouteSource } from '../../src/gateway/source.js';
import { RouteTableBuilder } from '../../src/routes/build.js';
import { edgeRequestPort, listenerHostMatches } from '../../src/routes/listener-scope.js';
import type { RequestFacts, RouteTable } from '../../src/routes/types.js';
import { testRoutingConfig } from '../routes/support.js';
import { gatewaySnapshot } from './support.js';

const NS = 'infra';
const GW = `${NS}/gw`;
/** A request as Cloudflare's edge forwards it: the visitor's scheme in X-Forwarded-Proto. */
const visitor = (scheme: 'http' | 'https' = 'http'): RequestFacts => ({ method: 'GET', headers: ['x-forwarded-proto', scheme], query: '' });

interface ListenerSpec {
  readonly name: string;
  readonly port?: number;
  readonly hostname?: string;
  readonly protocol?: string;
}

function docs(
  listeners: readonly ListenerSpec[],
  routes: ReadonlyArray<{ name: string; parent: Record<string, unknown>; path: string; hostnames?: string[]; stamp?: string }>,
): unknown[] {
  return [
    { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: 'warren' }, spec: { controllerName: 'warren.dev/gateway-controller' } },
    {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: { name: 'gw', namespace: NS, creationTimestamp: '2026-01-01T00:00:00Z' },
      spec: {
        gatewayClassName: 'warren',
        listeners: listeners.map((l) => ({
          name: l.name,
          port: l.port ?? 80,
          protocol: l.protocol ?? 'HTTP',
          ...(l.hostname ? { hostname: l.hostname } : {}),
          ...(l.protocol === 'HTTPS' ? { tls: { certificateRefs: [{ name: 'cert' }] } } : {}),
          allowedRoutes: { namespaces: { from: 'All' } },
        })),
      },
    },
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: NS }, spec: { ports: [{ port: 8080 }] } },
    ...routes.map((r, i) => ({
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: r.name, namespace: NS, creationTimestamp: r.stamp ?? `2026-01-01T00:00:0${i + 1}Z` },
      spec: {
        parentRefs: [{ name: 'gw', ...r.parent }],
        ...(r.hostnames ? { hostnames: r.hostnames } : {}),
        rules: [{ matches: [{ path: { type: 'PathPrefix', value: r.path } }], backendRefs: [{ name: 'web', port: 8080 }] }],
      },
    })),
  ];
}

const tunnelPerGateway = (objects: unknown[]) =>
  new RouteTableBuilder({ ...testRoutingConfig(), sources: [new GatewayRouteSource({ perGatewayTunnels: true })] }).build(gatewaySnapshot(objects));

/** The route name a request gets on the Gateway's own tunnel, or 404. */
const answer = (table: RouteTable, host: string, path: string, scheme: 'http' | 'https' = 'http') => table.match(host, path, visitor(scheme), GW)?.ingress.name ?? 404;

const ISOLATION_LISTENERS: ListenerSpec[] = [
  { name: 'empty-hostname' },
  { name: 'wildcard-example-com', hostname: '*.example.com' },
  { name: 'wildcard-foo-example-com', hostname: '*.foo.example.com' },
  { name: 'abc-foo-example-com', hostname: 'abc.foo.example.com' },
];
/** Per request host, the listener whose route answers; every other listener's path is 404 there. */
const OWNER: Record<string, string> = {
  'bar.com': 'empty-hostname',
  'bar.example.com': 'wildcard-example-com',
  'bar.foo.example.com': 'wildcard-foo-example-com',
  'abc.foo.example.com': 'abc-foo-example-com',
};

function checkIsolation(t: import('ava').ExecutionContext, table: RouteTable): void {
  for (const [host, owner] of Object.entries(OWNER)) {
    for (const l of ISOLATION_LISTENERS) {
      t.is(answer(table, host, `/${l.name}`), l.name === owner ? `to-${l.name}` : 404, `${host} /${l.name}`);
    }
  }
}

test('each request is handled by the most specific listener whose hostname matches, and only its routes answer', (t) => {
  const routes = ISOLATION_LISTENERS.map((l) => ({ name: `to-${l.name}`, parent: { sectionName: l.name }, path: `/${l.name}` }));
  checkIsolation(t, tunnelPerGateway(docs(ISOLATION_LISTENERS, routes)));
});

test('route hostnames a more specific listener covers are not served through a less specific one', (t) => {
  const hostnames = ['bar.com', '*.example.com', '*.foo.example.com', 'abc.foo.example.com'];
  const routes = ISOLATION_LISTENERS.map((l) => ({ name: `to-${l.name}`, parent: { sectionName: l.name }, path: `/${l.name}`, hostnames }));
  checkIsolation(t, tunnelPerGateway(docs(ISOLATION_LISTENERS, routes)));
});

test('a listener without routes still takes its hosts: they get 404, not a less specific listener’s routes', (t) => {
  const table = tunnelPerGateway(docs(ISOLATION_LISTENERS.slice(0, 2), [{ name: 'any', parent: { sectionName: 'empty-hostname' }, path: '/' }]));
  t.is(answer(table, 'bar.com', '/x'), 'any');
  t.is(answer(table, 'bar.example.com', '/x'), 404);
  t.is(answer(table, 'a.b.example.com', '/x'), 404, 'a wildcard listener covers more than one label');
  t.is(answer(table, 'example.com', '/x'), 'any', 'the wildcard does not cover its parent domain');
});

test('a route attached to several listeners of a Gateway answers through each; where two routes meet, the older wins', (t) => {
  const table = tunnelPerGateway(
    docs(ISOLATION_LISTENERS.slice(0, 2), [
      { name: 'everywhere', parent: {}, path: '/', stamp: '2026-01-01T00:00:01Z' },
      { name: 'only-wildcard', parent: { sectionName: 'wildcard-example-com' }, path: '/', stamp: '2026-01-01T00:00:02Z' },
      { name: 'only-empty', parent: { sectionName: 'empty-hostname' }, path: '/x', stamp: '2026-01-01T00:00:00Z' },
    ]),
  );
  t.is(answer(table, 'bar.com', '/'), 'everywhere');
  t.is(answer(table, 'bar.example.com', '/'), 'everywhere', 'both routes are attached to the picked listener: the older wins');
  t.is(answer(table, 'bar.com', '/x'), 'only-empty');
  t.is(answer(table, 'bar.example.com', '/x'), 'everywhere', 'only-empty is not attached to the picked listener');
  t.true(
    table.diagnostics.some((d) => d.reason === 'RouteConflict' && d.object.name === 'only-wildcard'),
    'the same listener, host and path: a conflict, reported',
  );
  t.false(table.diagnostics.some((d) => d.reason === 'RouteConflict' && d.object.name === 'only-empty'));
});

test('the request’s port picks the listener: its Host’s port, else 80 for http and 443 for https', (t) => {
  const listeners: ListenerSpec[] = [
    { name: 'foo-80', port: 80, hostname: 'foo.com' },
    { name: 'foo-8080', port: 8080, hostname: 'foo.com' },
    { name: 'bar-8080', port: 8080, hostname: 'bar.com' },
  ];
  const table = tunnelPerGateway(
    docs(listeners, [
      { name: 'on-80', parent: { port: 80 }, path: '/' },
      { name: 'on-8080', parent: { port: 8080 }, path: '/' },
    ]),
  );
  t.is(answer(table, 'foo.com', '/'), 'on-80');
  t.is(answer(table, 'foo.com:80', '/'), 'on-80');
  t.is(answer(table, 'foo.com:8080', '/'), 'on-8080');
  t.is(answer(table, 'bar.com:8080', '/'), 'on-8080');
  t.is(answer(table, 'bar.com', '/'), 404, 'no listener on port 80 for bar.com');
  t.is(answer(table, 'foo.com:8880', '/'), 404, 'no listener on that port');
  t.is(answer(table, 'foo.com:1234', '/'), 'on-80', 'the edge serves no port 1234: the request came to port 80');
  t.is(answer(table, 'foo.com:8080', '/', 'https'), 'on-80', 'nor HTTPS on 8080: it came to 443, which the listeners on port 80 take here');
  t.is(answer(table, 'foo.com', '/', 'https'), 'on-80', 'no listener on 443: HTTPS visitors reach the listeners on port 80');
  t.is(answer(table, 'foo.com:8443', '/', 'https'), 404);
});

test('once a Gateway has a listener on 443, HTTPS visitors reach only that port’s listeners', (t) => {
  const listeners: ListenerSpec[] = [
    { name: 'http', port: 80 },
    { name: 'https', port: 443, protocol: 'HTTPS' },
  ];
  const table = tunnelPerGateway(
    docs(listeners, [
      { name: 'plain', parent: { sectionName: 'http' }, path: '/' },
      { name: 'secure', parent: { sectionName: 'https' }, path: '/' },
    ]),
  );
  t.is(answer(table, 'a.example', '/'), 'plain');
  t.is(answer(table, 'a.example', '/', 'https'), 'secure');
  t.is(answer(table, 'a.example:443', '/', 'https'), 'secure');
  t.is(answer(table, 'a.example:443', '/'), 'plain', 'the edge serves no plain HTTP on 443: the request came to 80');
  t.is(table.match('a.example', '/', { method: 'GET', headers: ['cf-visitor', '{"scheme":"http"}'], query: '' }, GW)?.ingress.name, 'plain', 'Cf-Visitor states the scheme');
});

test('sharing one tunnel, Gateways’ listeners are not told apart (hostnames only, as before)', (t) => {
  const routes = ISOLATION_LISTENERS.map((l) => ({ name: `to-${l.name}`, parent: { sectionName: l.name }, path: `/${l.name}` }));
  const shared = new RouteTableBuilder({ ...testRoutingConfig(), sources: [new GatewayRouteSource()] }).build(gatewaySnapshot(docs(ISOLATION_LISTENERS, routes)));
  t.is(shared.match('bar.example.com', '/empty-hostname', visitor())?.ingress.name, 'to-empty-hostname');
  t.is(shared.match('bar.example.com:8080', '/wildcard-example-com', visitor())?.ingress.name, 'to-wildcard-example-com');
});

test('the edge port of a request and listener hostname matching', (t) => {
  t.is(edgeRequestPort('a.example:8080', visitor('http')), 8080);
  t.is(edgeRequestPort('a.example:8080', visitor('https')), 443, 'the edge serves HTTPS on 8443, not 8080');
  t.is(edgeRequestPort('[::1]:8443', visitor('https')), 8443);
  t.is(edgeRequestPort('[::1]:8443', visitor('http')), 80);
  t.is(edgeRequestPort('a.example:1234', visitor('http')), 80, 'a port the edge accepts no connection on is not where the request came');
  t.is(edgeRequestPort('[::1]', visitor('http')), 80);
  t.is(edgeRequestPort('a.example:', visitor('https')), 443, 'an empty port is the default');
  t.is(edgeRequestPort('a.example', undefined), 443, 'the edge states no scheme: https, as the tunnel carries it');
  t.is(edgeRequestPort('a.example', { method: 'GET', headers: ['x-forwarded-proto', 'HTTP'], query: '' }), 80);
  t.true(listenerHostMatches('*.example.com', 'a.b.example.com'));
  t.false(listenerHostMatches('*.example.com', 'example.com'));
  t.false(listenerHostMatches('*.example.com', 'aexample.com'));
  t.true(listenerHostMatches('a.example.com', 'a.example.com'));
});
