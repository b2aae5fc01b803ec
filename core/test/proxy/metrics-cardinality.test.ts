import test from 'ava';
import type { Registry } from 'prom-client';
import { OTHER_ROUTES } from '../../src/proxy/metrics.js';
import { runExchange, startOrigin, startProxyHarness, testRoute, testRouteTable, type ProxyHarness } from '../../src/testing/index.js';

/** `count` Ingresses in 10 namespaces, one host each, over 5 Services per namespace. */
function ingressRoutes(count: number, endpoint: string) {
  return Array.from({ length: count }, (_, i) =>
    testRoute({ host: `app-${i}.test`, namespace: `ns-${i % 10}`, ingress: `app-${i}`, service: `svc-${i % 50}`, endpoints: [endpoint] }),
  );
}

/** Sends one GET (and every tenth a POST) to each of the first `hosts` hosts, sequentially (bounded by count). */
async function traffic(proxy: ProxyHarness, hosts: number, from = 0): Promise<void> {
  for (let i = from; i < from + hosts; i++) {
    const r = await runExchange(proxy.pipeline, { authority: `app-${i}.test`, path: '/x' });
    if (r.response?.status !== 200) throw new Error(`app-${i}.test answered ${r.response?.status ?? r.failure?.status}`);
    if (i % 10 === 0) await runExchange(proxy.pipeline, { authority: `app-${i}.test`, method: 'POST', path: '/x' });
  }
  await runExchange(proxy.pipeline, { authority: 'nowhere.test' }); // 404: no route
}

/** Series (sample lines) of the proxy's request metrics, and the size of the whole exposition. */
async function exposition(registry: Registry): Promise<{ series: number; bytes: number; text: string }> {
  const text = await registry.metrics();
  const series = text.split('\n').filter((l) => /^warren_(requests_total|request_duration_seconds|upgraded_session|upstream_retries)/.test(l)).length;
  return { series, bytes: Buffer.byteLength(text), text };
}

test('by default the request metrics have the same series whatever the number of Ingresses and hosts with traffic', async (t) => {
  t.timeout(120_000);
  const origin = await startOrigin();
  const routes = ingressRoutes(2_000, origin.key);
  const proxy = await startProxyHarness({ table: testRouteTable(routes) });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));

  await traffic(proxy, 20);
  const few = await exposition(proxy.metrics);
  await traffic(proxy, routes.length - 20, 20);
  const all = await exposition(proxy.metrics);

  t.true(few.series > 0);
  t.is(all.series, few.series, 'traffic to 100 times more hosts adds no series');
  t.notRegex(all.text, /^warren_request(s_total|_duration_seconds_bucket)\{[^}]*(ingress|host|namespace)=/m, 'no route labels by default');
  t.regex(all.text, /^warren_requests_total\{status_class="2xx",method="GET"\} 2000$/m);
  t.regex(all.text, /^warren_requests_total\{status_class="2xx",method="POST"\} 200$/m);
  t.regex(all.text, /^warren_requests_total\{status_class="4xx",method="GET"\} 2$/m);
  t.regex(all.text, /^warren_request_duration_seconds_count\{status_class="2xx"\} 2200$/m);
  // Histogram: 11 buckets + le="+Inf" + sum + count per status class.
  t.is(all.text.split('\n').filter((l) => l.startsWith('warren_request_duration_seconds_bucket{') && l.includes('status_class="2xx"')).length, 12);
  t.true(all.bytes < 64 * 1024, `the whole /metrics is ${all.bytes} bytes`);
});

test('proxy.metrics.routeLabels labels requests by route, up to maxRouteLabelSets; further routes count as _other', async (t) => {
  t.timeout(120_000);
  const origin = await startOrigin();
  const routes = ingressRoutes(120, origin.key);
  const proxy = await startProxyHarness({ table: testRouteTable(routes), settings: { proxy: { metrics: { routeLabels: true, maxRouteLabelSets: 50 } } } });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));

  await traffic(proxy, routes.length);
  const { text } = await exposition(proxy.metrics);
  const ingresses = new Set([...text.matchAll(/^warren_requests_total\{[^}]*ingress="([^"]*)"/gm)].map((m) => m[1]));
  // 50 labelled, the rest as _other, and the empty set of the request that matched no route.
  t.is(ingresses.size, 52, [...ingresses].join(' '));
  t.true(ingresses.has(OTHER_ROUTES));
  t.regex(text, /^warren_requests_total\{namespace="ns-0",kind="Ingress",ingress="app-0",service="svc-0",host="app-0.test",status_class="2xx",method="GET"\} 1$/m);
  t.regex(text, /^warren_requests_total\{namespace="ns-0",kind="Ingress",ingress="app-0",service="svc-0",host="app-0.test",status_class="2xx",method="POST"\} 1$/m);
  t.regex(
    text,
    new RegExp(
      `^warren_requests_total\\{namespace="${OTHER_ROUTES}",kind="${OTHER_ROUTES}",ingress="${OTHER_ROUTES}",service="${OTHER_ROUTES}",host="${OTHER_ROUTES}",status_class="2xx",method="GET"\\} 70$`,
      'm',
    ),
    'the 70 routes beyond the cap share one label set',
  );
  t.regex(text, /^warren_requests_total\{namespace="",kind="",ingress="",service="",host="",status_class="4xx",method="GET"\} 1$/m);
  t.regex(text, /^warren_request_duration_seconds_count\{namespace="ns-1",kind="Ingress",ingress="app-1",service="svc-1",status_class="2xx"\} 1$/m);

  // A labelled route keeps its labels, and a new one still counts as _other.
  await traffic(proxy, 1, 3);
  await traffic(proxy, 1, 100);
  const again = (await exposition(proxy.metrics)).text;
  t.regex(again, /^warren_requests_total\{namespace="ns-3",kind="Ingress",ingress="app-3",service="svc-3",host="app-3.test",status_class="2xx",method="GET"\} 2$/m);
  t.regex(again, new RegExp(`^warren_requests_total\\{namespace="${OTHER_ROUTES}"[^}]*method="GET"\\} 71$`, 'm'));
});

test('table-health gauges follow the served table when scraped: ready endpoints per Service, warnings by reason', async (t) => {
  const a = testRoute({ host: 'a.test', namespace: 'ns', service: 'two', endpoints: ['127.0.0.1:1', '127.0.0.2:1'] });
  const b = testRoute({ host: 'b.test', namespace: 'ns', service: 'none', endpoints: [] });
  const proxy = await startProxyHarness({ table: testRouteTable([a, b], 1) });
  t.teardown(() => proxy.close());
  const first = await proxy.metrics.metrics();
  t.regex(first, /^warren_backend_ready_endpoints\{namespace="ns",service="two"\} 2$/m);
  t.regex(first, /^warren_backend_ready_endpoints\{namespace="ns",service="none"\} 0$/m);

  // Several swaps between scrapes: the scrape shows the table served last, and nothing of the earlier ones.
  const c = testRoute({ host: 'c.test', namespace: 'ns', service: 'three', endpoints: ['127.0.0.1:1', '127.0.0.2:1', '127.0.0.3:1'] });
  await proxy.setTable(testRouteTable([a], 2));
  const warned = {
    ...testRouteTable([c], 3),
    diagnostics: [{ type: 'Warning' as const, reason: 'ServiceNotFound', object: { kind: 'Ingress' as const, namespace: 'ns', name: 'x' }, message: 'm' }],
  };
  await proxy.setTable(warned);
  const last = await proxy.metrics.metrics();
  t.regex(last, /^warren_backend_ready_endpoints\{namespace="ns",service="three"\} 3$/m);
  t.notRegex(last, /service="(two|none)"/);
  t.regex(last, /^warren_route_warnings\{reason="ServiceNotFound"\} 1$/m);
  t.is(await proxy.metrics.metrics(), last, 'an unchanged table scrapes the same');
});

test('route labels name the kind of the routing object: an HTTPRoute and a GRPCRoute are never counted as the Ingress of their name', async (t) => {
  const origin = await startOrigin();
  const ingressRoute = testRoute({ host: 'i.test', namespace: 'shop', ingress: 'web', service: 'front', endpoints: [origin.key] });
  const owned = (kind: 'HTTPRoute' | 'GRPCRoute', host: string) => {
    const r = testRoute({ host, namespace: 'shop', ingress: 'web', service: 'front', endpoints: [origin.key] });
    return { ...r, id: `${kind}:shop/web#r0/m0`, ingress: { ...r.ingress, kind, uid: `uid-${kind}-web` } };
  };
  const proxy = await startProxyHarness({
    table: testRouteTable([ingressRoute, owned('HTTPRoute', 'h.test'), owned('GRPCRoute', 'g.test')]),
    settings: { proxy: { metrics: { routeLabels: true, maxRouteLabelSets: 2 } } },
  });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));
  for (const host of ['h.test', 'i.test', 'h.test', 'g.test']) t.is((await runExchange(proxy.pipeline, { authority: host, path: '/' })).response?.status, 200);
  const { text } = await exposition(proxy.metrics);
  t.regex(text, /^warren_requests_total\{namespace="shop",kind="HTTPRoute",ingress="web",service="front",host="h.test",status_class="2xx",method="GET"\} 2$/m);
  t.regex(text, /^warren_requests_total\{namespace="shop",kind="Ingress",ingress="web",service="front",host="i.test",status_class="2xx",method="GET"\} 1$/m);
  t.regex(text, /^warren_request_duration_seconds_count\{namespace="shop",kind="HTTPRoute",ingress="web",service="front",status_class="2xx"\} 2$/m);
  // The kind is part of the capped combination: the third object counts as _other, it adds no series.
  t.regex(text, new RegExp(`^warren_requests_total\\{namespace="${OTHER_ROUTES}",kind="${OTHER_ROUTES}"[^}]*method="GET"\\} 1$`, 'm'));
  t.notRegex(text, /kind="GRPCRoute"/);
});
