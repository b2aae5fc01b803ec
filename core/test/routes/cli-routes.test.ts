/**
 * `warren routes` output for Gateway API routes: the object they come from is named by its kind (never read as
 * an Ingress of the same name), with their conditions, weights and the status their unresolved backends answer.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import test from 'ava';
import { formatRouteTableView } from '../../src/cli-routes.js';
import { RouteTableBuilder } from '../../src/routes/build.js';
import { describeRouteTable, type RouteTableView } from '../../src/routes/debug-view.js';
import { snapshotFromObjects } from '../../src/routes/snapshot.js';
import { FAKE_KIND, type FakeRoute, fakeRouteSource, testRoutingConfig } from './support.js';

const OBJECTS = [
  { kind: 'IngressClass', metadata: { name: 'cloudflare-tunnel' }, spec: { controller: 'warren.dev/ingress-controller' } },
  {
    kind: 'Ingress',
    metadata: { name: 'web', namespace: 'team', uid: 'u1', generation: 1, creationTimestamp: '2025-01-01T00:00:00Z' },
    spec: {
      ingressClassName: 'cloudflare-tunnel',
      rules: [{ host: 'shop.example', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } }] } }],
    },
  },
  { kind: 'Service', metadata: { name: 'web', namespace: 'team' }, spec: { ports: [{ port: 80 }] } },
];

/** An HTTPRoute with the Ingress's namespace and name: a different object, on the same host. */
const HTTP_ROUTE: FakeRoute = {
  kind: 'FakeRoute',
  metadata: { name: 'web', namespace: 'team', uid: 'h1', creationTimestamp: '2026-01-01T00:00:00Z' },
  spec: {
    hostname: 'shop.example',
    rules: [
      {
        path: '/api',
        method: 'POST',
        headers: [{ name: 'X-Env', value: 'canary' }],
        query: [{ name: 'v', value: '2|3', type: 'RegularExpression' }],
        backends: [{ service: 'web', port: 80 }],
      },
      { path: '/split', backends: [{ service: 'web', port: 80, weight: 3 }] },
      { path: '/missing', backends: [{ service: 'ghost', port: 80 }] },
    ],
  },
};

function view(query: { host?: string; path?: string } = {}): RouteTableView {
  const { snapshot } = snapshotFromObjects(OBJECTS);
  const settings = { ...testRoutingConfig(), sources: [fakeRouteSource] };
  const table = new RouteTableBuilder(settings).build({ ...snapshot, extra: new Map([[FAKE_KIND, new Map([['team/web', HTTP_ROUTE as KubernetesObject]])]]) });
  return describeRouteTable(table, settings.plugins, query);
}

test('warren routes names the object of each route by kind and shows conditions, weights and the status of unresolved backends', (t) => {
  const out = formatRouteTableView(view());
  t.regex(out, /^HOST\s+PATH\s+FROM\s+BACKEND\s+PROTOCOL\s+PLUGINS\s+STATE$/m);
  t.regex(out, /^shop\.example\s+\/ \(Prefix\)\s+team\/web\s+team\/web:80\s+http\s+core\s+503 no ready endpoints$/m, 'an Ingress reads as before');
  t.regex(out, /^shop\.example\s+\/api \(Prefix\) \[POST x-env=canary \?v~2\|3\]\s+HTTPRoute team\/web\s+team\/web:80\s/m);
  t.regex(out, /^shop\.example\s+\/split \(Prefix\) weight 3\s+HTTPRoute team\/web\s/m);
  t.regex(out, /^shop\.example\s+\/missing \(Prefix\)\s+HTTPRoute team\/web\s+team\/ghost:80\s+http\s+core\s+500 ServiceNotFound$/m);
  t.regex(out, /PROBLEMS\nWarning BackendNotFound HTTPRoute team\/web spec\.rules\[2\]\.backends\[0\]: /);
});

test('the route a request gets names its object by kind', (t) => {
  const out = formatRouteTableView(view({ host: 'shop.example', path: '/missing' }));
  t.regex(out, /this request gets: shop\.example \/missing \(Prefix\) from HTTPRoute team\/web → team\/ghost:80, 500 ServiceNotFound/);
});
