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
