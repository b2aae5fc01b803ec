/**
 * The firewall's origin side: address matching, the verdict on a request head, and the proxy refusing through the
 * real pipeline (403 with a fixed body, the metric, the reason in the access log).
 * Traffic through the edge simulator with the fake Cloudflare API at the plan limit is in
 * core/test/cloudflare/firewall-origin.test.ts.
 */
import test from 'ava';
import { Writable } from 'node:stream';
import 'reflect-metadata';
import { pino } from 'pino';
import { ErrorCode, WarrenError, httpStatusOf } from '@warren/core';
import { capturingLogger, runExchange, startOrigin, startProxyHarness, testRoute, testRouteTable } from '@warren/core/testing';
import type { RequestHead } from '@warren/core/plugin';
import firewallModule, { AddressSet, compileOriginLists, refusalOf } from '../src/index.js';
import { annotate } from './support.js';
import { parseIpv6 } from '../src/addresses.js';

test('addresses: IPv4 ranges merge and bisect, IPv6 prefixes match on any bit boundary, mapped IPv4 counts as IPv4', (t) => {
  const set = new AddressSet(['10.0.0.0/8', '10.1.0.0/16', '192.0.2.7', '198.51.100.0/25', '2001:db8::/32', '2001:db8:ff00::/41', '::1', '2a00:1450:4001:81b::200e']);
  for (const yes of [
    '10.0.0.0',
    '10.255.255.255',
    '192.0.2.7',
    '198.51.100.127',
    '2001:db8::',
    '2001:DB8:ffff::1',
    '::1',
    '2a00:1450:4001:81b::200e',
    '::ffff:10.2.3.4',
    '::ffff:c000:207',
  ]) {
    t.true(set.has(yes), yes);
  }
  for (const no of ['11.0.0.0', '9.255.255.255', '192.0.2.6', '192.0.2.8', '198.51.100.128', '2001:db9::', '::2', '::', '2a00:1450:4001:81b::200f', '::ffff:11.0.0.1']) {
    t.false(set.has(no), no);
  }
  const narrow = new AddressSet(['2001:db8:ff00::/41']);
  t.true(narrow.has('2001:db8:ff7f:ffff::'), 'the 41st bit and below are free');
  t.false(narrow.has('2001:db8:ff80::'), 'the 41st bit is part of the network');
  for (const junk of [
    '',
    'localhost',
    '10.0.0',
    '10.0.0.0.1',
    '010.0.0.1',
    '256.0.0.1',
    '1.2.3.4:80',
    '[::1]',
    'fe80::1%eth0',
    ':::',
    '1::2::3',
    '1:2:3:4:5:6:7:8:9',
    '12345::',
    ' 10.0.0.1',
  ]) {
    t.is(set.has(junk), undefined, `"${junk}" is not an address`);
  }
  const words = new Uint16Array(8);
  t.true(parseIpv6('1:2:3:4:5:6:1.2.3.4', words));
  t.deepEqual([...words], [1, 2, 3, 4, 5, 6, 0x0102, 0x0304]);
  t.true(parseIpv6('1::', words));
  t.deepEqual([...words], [1, 0, 0, 0, 0, 0, 0, 0]);
  t.false(parseIpv6('1:2:3:4:5:6:7:8::', words), ':: must stand for at least one group');
});

const edge = (ip: string | undefined, country?: string): RequestHead => ({
  method: 'GET',
  scheme: 'https',
  authority: 'shop.example.com',
  path: '/',
  forwardedBy: 'edge',
  headers: [
    'x-forwarded-for',
    '203.0.113.9', // a visitor's claim: never read
    ...(ip === undefined ? [] : ['cf-connecting-ip', ip]),
    ...(country === undefined ? [] : ['cf-ipcountry', country]),
  ],
});

test('verdict: deny lists, allow lists and countries as the edge states them; what nobody vouches for is refused', (t) => {
  const compiled = compileOriginLists({
    annotations: annotate({ 'firewall-allow-ips': '203.0.113.0/24, 2001:db8::/32', 'firewall-deny-ips': '203.0.113.66', 'firewall-deny-countries': 'T1' }),
  })!;
  t.is(refusalOf(compiled, edge('203.0.113.5', 'DE')), undefined);
  t.is(refusalOf(compiled, edge('2001:db8::5', 'DE')), undefined);
  t.is(refusalOf(compiled, edge('203.0.113.66', 'DE')), 'deny-ips');
  t.is(refusalOf(compiled, edge('198.51.100.1', 'DE')), 'allow-ips');
  t.is(refusalOf(compiled, edge('203.0.113.5', 'T1')), 'deny-countries');
  t.is(refusalOf(compiled, edge(undefined, 'DE')), 'no-client-address', 'an edge request without cf-connecting-ip');
  t.is(refusalOf(compiled, edge('not-an-address', 'DE')), 'no-client-address');
  t.is(refusalOf(compiled, { ...edge('203.0.113.5', 'DE'), forwardedBy: undefined }), 'not-from-edge', 'a direct client states nothing the lists can use');

  const countries = compileOriginLists({ annotations: annotate({ 'firewall-allow-countries': 'DE, fr' }) })!;
  t.is(refusalOf(countries, edge(undefined, 'DE')), undefined, 'country lists need no address');
  t.is(refusalOf(countries, edge('192.0.2.1', 'fr')), undefined);
  t.is(refusalOf(countries, edge('192.0.2.1', 'US')), 'allow-countries');
  t.is(refusalOf(countries, edge('192.0.2.1')), 'allow-countries', 'no cf-ipcountry counts as XX, unknown');
  t.is(refusalOf(compileOriginLists({ annotations: annotate({ 'firewall-allow-countries': 'DE XX' }) })!, edge('192.0.2.1')), undefined, 'unless XX is allowed');
  t.is(refusalOf(compileOriginLists({ annotations: annotate({ 'firewall-deny-countries': 'XX' }) })!, edge('192.0.2.1')), 'deny-countries');

  t.is(compileOriginLists({ annotations: annotate({ 'firewall-action': 'challenge' }) }), undefined, 'no list, nothing to enforce');
  t.is(compileOriginLists({ annotations: annotate({ 'firewall-allow-ips': '10.1.2.3/8' }) }), undefined, 'a list without a valid entry enforces nothing (as at the edge)');
});

async function proxy(t: import('ava').ExecutionContext, annotations: Record<string, string>, settings: Record<string, unknown> = {}) {
  const origin = await startOrigin({ handler: (_req, res) => res.end('from origin') });
  const lines: string[] = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _e, cb) {
        lines.push(chunk.toString());
        cb();
      },
    }),
  );
  const h = await startProxyHarness({
    plugins: [{ module: firewallModule, config: settings }],
    settings: { proxy: { accessLog: { enabled: true } } },
    logger,
    table: testRouteTable([
      testRoute({ host: 'shop.example.com', namespace: 'shop', ingress: 'web', endpoints: [origin.key], annotations: annotate(annotations) }),
      testRoute({ host: 'open.example.com', namespace: 'shop', ingress: 'open', endpoints: [origin.key] }),
    ]),
  });
  t.teardown(() => Promise.all([h.close(), origin.close()]));
  return { h, lines };
}

test('the proxy refuses with 403 and a fixed body, counts the refusal and logs the reason; other routes are untouched', async (t) => {
  const { h, lines } = await proxy(t, { 'firewall-allow-ips': '203.0.113.0/24' });
  const allowed = await runExchange(h.pipeline, { ...edge('203.0.113.5'), authority: 'shop.example.com' });
  t.is(allowed.response?.status, 200);
  t.is(allowed.body.toString(), 'from origin');
  const refused = await runExchange(h.pipeline, { ...edge('198.51.100.1'), authority: 'shop.example.com', path: '/<script>?q=x' });
  t.is(refused.failure?.status, 403);
  t.regex(String(refused.failure?.body), /^access denied\nreference: [\w-]+\n$/, 'nothing of the request or the lists is reflected');
  t.is(refused.response, undefined, 'the origin was not asked');
  const direct = await runExchange(h.pipeline, { authority: 'shop.example.com', clientAddress: '203.0.113.5' });
  t.is(direct.failure?.status, 403, 'the plain-HTTP entry has no edge to vouch for the address');
  t.is((await runExchange(h.pipeline, { authority: 'open.example.com', clientAddress: '198.51.100.1' })).response?.status, 200, 'an Ingress without lists costs nothing');
  // gRPC clients get PERMISSION_DENIED for it (the gRPC plugin's mapping, tested there).
  t.is(httpStatusOf(new WarrenError(ErrorCode.Forbidden, 'refused')), 403);

  const metric = await h.metrics.getSingleMetric('warren_firewall_origin_refusals_total')!.get();
  const value = (reason: string) => metric.values.find((v) => v.labels.reason === reason && v.labels.ingress === 'web')?.value;
  t.is(value('allow-ips'), 1);
  t.is(value('not-from-edge'), 1);
  const access = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.component === 'access' && l.status === 403);
  t.is(access.length, 2);
  t.true(JSON.stringify(access[0]).includes('refused by the firewall lists of Ingress shop/web (allow-ips)'));
});

test('an HTTPRoute with lists is refused in the proxy under its own kind: metric label and access-log reason name it', async (t) => {
  const origin = await startOrigin({ handler: (_req, res) => res.end('from origin') });
  const { logger, lines } = capturingLogger();
  const gatewayRoute = (() => {
    const r = testRoute({
      host: 'api.example.com',
      namespace: 'shop',
      ingress: 'web',
      endpoints: [origin.key],
      annotations: annotate({ 'firewall-deny-ips': '198.51.100.0/24' }),
    });
    return { ...r, id: 'HTTPRoute:shop/web#r0/m0', ingress: { ...r.ingress, kind: 'HTTPRoute' as const, uid: 'uid-httproute-web' } };
  })();
  const h = await startProxyHarness({
    plugins: [{ module: firewallModule, config: {} }],
    settings: { proxy: { accessLog: { enabled: true } } },
    logger,
    table: testRouteTable([gatewayRoute]),
  });
  t.teardown(() => Promise.all([h.close(), origin.close()]));
  t.is((await runExchange(h.pipeline, { ...edge('198.51.100.1'), authority: 'api.example.com' })).failure?.status, 403);
  const metric = await h.metrics.getSingleMetric('warren_firewall_origin_refusals_total')!.get();
  t.deepEqual(
    metric.values.map((v) => v.labels),
    [{ namespace: 'shop', kind: 'HTTPRoute', ingress: 'web', reason: 'deny-ips' }],
  );
  const access = lines().filter((l) => l.component === 'access' && l.status === 403);
  t.is(access.length, 1);
  t.regex(String(access[0]!.error), /refused by the firewall lists of HTTPRoute shop\/web \(deny-ips\)/);
  t.is(access[0]!.route, 'HTTPRoute:shop/web#r0/m0');
});

test('originEnforcement block-only leaves Ingresses with a challenge action to the edge; all (default) refuses them too', async (t) => {
  const challenge = { 'firewall-deny-countries': 'T1', 'firewall-action': 'managed_challenge' };
  const strict = await proxy(t, challenge);
  t.is((await runExchange(strict.h.pipeline, { ...edge('192.0.2.1', 'T1'), authority: 'shop.example.com' })).failure?.status, 403);
  const lenient = await proxy(t, challenge, { originEnforcement: 'block-only' });
  t.is((await runExchange(lenient.h.pipeline, { ...edge('192.0.2.1', 'T1'), authority: 'shop.example.com' })).response?.status, 200);
  const blocking = await proxy(t, { 'firewall-deny-countries': 'T1' }, { originEnforcement: 'block-only' });
  t.is((await runExchange(blocking.h.pipeline, { ...edge('192.0.2.1', 'T1'), authority: 'shop.example.com' })).failure?.status, 403);
});
