import test from 'ava';
import { ErrorCode, isWarrenError } from '../../src/errors.js';
import {
  discoverEdge,
  EdgeRegion,
  FAMILY_FALLBACK_MS,
  parseEdgeAddress,
  srvServiceName,
  type EdgeAddress,
  type EdgeResolver,
  type SrvAnswer,
} from '../../src/tunnel/discovery.js';

/** An in-memory resolver recording every query (no real DNS in tests). */
function fakeResolver(srv: Record<string, SrvAnswer[]>, hosts: Record<string, Array<{ address: string; family: number }>>) {
  const queries: string[] = [];
  const resolver: EdgeResolver = {
    async resolveSrv(name) {
      queries.push(`SRV ${name}`);
      const answer = srv[name];
      if (!answer) throw Object.assign(new Error(`queryNotFound ${name}`), { code: 'ENOTFOUND' });
      return answer;
    },
    async lookup(host) {
      queries.push(`A/AAAA ${host}`);
      const answer = hosts[host];
      if (!answer) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
      return answer;
    },
  };
  return { resolver, queries };
}

const v4 = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => ({ address: `${prefix}.${i + 1}`, family: 4 }));
const v6 = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => ({ address: `${prefix}::${i + 1}`, family: 6 }));

const regionRecords: SrvAnswer[] = [
  { name: 'region1.v2.argotunnel.com', port: 7844, priority: 1, weight: 1 },
  { name: 'region2.v2.argotunnel.com', port: 7844, priority: 2, weight: 1 },
];

test('SRV names follow the region prefix convention', (t) => {
  t.is(srvServiceName(), '_v2-origintunneld._tcp.argotunnel.com');
  t.is(srvServiceName('us'), '_us-v2-origintunneld._tcp.argotunnel.com');
  t.is(srvServiceName('fed'), '_fed-v2-origintunneld._tcp.argotunnel.com');
});

test('discovery resolves the first two SRV targets into two regions on the SRV port and spreads 4 slots 2+2', async (t) => {
  const { resolver, queries } = fakeResolver(
    { '_v2-origintunneld._tcp.argotunnel.com': [...regionRecords, { name: 'region3.v2.argotunnel.com', port: 7844, priority: 3, weight: 1 }] },
    { 'region1.v2.argotunnel.com': v4('198.18.1', 10), 'region2.v2.argotunnel.com': v4('198.18.2', 10) },
  );
  const pool = await discoverEdge({ resolver });
  t.deepEqual(queries, ['SRV _v2-origintunneld._tcp.argotunnel.com', 'A/AAAA region1.v2.argotunnel.com', 'A/AAAA region2.v2.argotunnel.com']);
  t.is(pool.regions.length, 2);
  t.is(pool.capacity, 20);
  const taken = [0, 1, 2, 3].map((i) => pool.take(i)!);
  t.deepEqual(taken.map((a) => a.region).sort(), [1, 1, 2, 2]);
  t.true(taken.every((a) => a.port === 7844));
  t.is(new Set(taken).size, 4, 'each address serves one connection');
  t.is(pool.take(2), taken[2], 'a slot keeps its address');
});

test('a region prefix changes the SRV name; fewer than two records is an error', async (t) => {
  const { resolver, queries } = fakeResolver({ '_us-v2-origintunneld._tcp.argotunnel.com': [regionRecords[0]!] }, {});
  const err = await t.throwsAsync(discoverEdge({ resolver, region: 'us' }));
  t.true(isWarrenError(err, ErrorCode.TunnelRegistration));
  t.regex(err!.message, /expected at least 2 Cloudflare regions/);
  t.deepEqual(queries, ['SRV _us-v2-origintunneld._tcp.argotunnel.com']);
  const failing = fakeResolver({}, {});
  await t.throwsAsync(discoverEdge({ resolver: failing.resolver }), { message: /SRV lookup of _v2-origintunneld/ });
});

test('static edge addresses skip every DNS lookup; repeating an address adds a slot', async (t) => {
  const { resolver, queries } = fakeResolver({}, {});
  const pool = await discoverEdge({ resolver, staticAddresses: ['127.0.0.1:7844', '127.0.0.1:7844', '[::1]:9000', 'localhost:7'] });
  t.deepEqual(queries, []);
  t.is(pool.capacity, 4);
  const taken = [0, 1, 2, 3].map((i) => pool.take(i)!);
  t.is(new Set(taken).size, 4);
  t.deepEqual(taken.map((a) => a.label).sort(), ['127.0.0.1:7844', '127.0.0.1:7844', '[::1]:9000', 'localhost:7']);
  t.is(pool.take(4), undefined, 'no fifth address');
});

test('malformed static addresses name the setting', (t) => {
  for (const bad of ['127.0.0.1', 'host:0', 'host:99999', '[127.0.0.1]:80', 'a b:1']) {
    const err = t.throws(() => parseEdgeAddress(bad));
    t.true(isWarrenError(err, ErrorCode.ConfigInvalid), bad);
    t.regex(err!.message, /tunnel\.edgeAddresses/);
  }
  t.deepEqual(parseEdgeAddress('[2606:4700::1]:7844'), { host: '2606:4700::1', port: 7844, family: 6, label: '[2606:4700::1]:7844', region: 1 });
});

test('the primary family is the family of the first resolved address; 4/6 drop the other family', async (t) => {
  const mixed = [...v6('2606:4700:a0', 2), ...v4('198.18.1', 2)];
  const { resolver } = fakeResolver(
    { '_v2-origintunneld._tcp.argotunnel.com': regionRecords },
    {
      'region1.v2.argotunnel.com': mixed,
      'region2.v2.argotunnel.com': [...v4('198.18.2', 2), ...v6('2606:4700:a8', 2)],
    },
  );
  const auto = await discoverEdge({ resolver });
  t.deepEqual(
    auto.regions[0]!.active.map((a) => a.family),
    [6, 6],
  );
  t.deepEqual(
    auto.regions[1]!.active.map((a) => a.family),
    [4, 4],
  );
  const only4 = await discoverEdge({ resolver, ipVersion: '4' });
  t.true(only4.regions.every((r) => r.active.every((a) => a.family === 4)));
  const only6 = await discoverEdge({ resolver, ipVersion: '6' });
  t.true(only6.regions.every((r) => r.active.every((a) => a.family === 6)));
  const noV6 = fakeResolver(
    { '_v2-origintunneld._tcp.argotunnel.com': regionRecords },
    {
      'region1.v2.argotunnel.com': v4('198.18.1', 2),
      'region2.v2.argotunnel.com': v4('198.18.2', 2),
    },
  );
  await t.throwsAsync(discoverEdge({ resolver: noV6.resolver, ipVersion: '6' }), { message: /has no IPv6 addresses/ });
});

test('an IPv6 connectivity failure moves a region to IPv4 for ten minutes; an IPv4 failure there moves it back', (t) => {
  let now = 0;
  const addr = (host: string, family: 4 | 6): EdgeAddress => ({ host, port: 7844, family, label: host, region: 1 });
  const a6 = addr('2606:4700:a0::1', 6);
  const a4 = addr('198.18.1.1', 4);
  const region = new EdgeRegion([a6, addr('2606:4700:a0::2', 6), a4], 'auto', () => now);
  t.deepEqual(region.active, [a6, region.active[1]!]);
  region.noteGiveBack(a6, false);
  t.false(region.usingSecondary, 'no switch without a connectivity error');
  region.noteGiveBack(a6, true);
  t.true(region.usingSecondary);
  t.deepEqual(region.active, [a4]);
  now += FAMILY_FALLBACK_MS - 1;
  region.noteGiveBack(a4, false);
  t.true(region.usingSecondary, 'still within the fallback window');
  now += 1;
  region.noteGiveBack(a4, false);
  t.false(region.usingSecondary, 'back to the primary family after the window');
  region.noteGiveBack(a6, true);
  t.true(region.usingSecondary);
  region.noteGiveBack(a4, true);
  t.false(region.usingSecondary, 'an IPv4 failure on the secondary set switches back at once');
});

test('rotation moves a slot to a different free address and keeps it when none is free', async (t) => {
  const pool = await discoverEdge({ staticAddresses: ['127.0.0.1:1', '127.0.0.1:2', '127.0.0.1:3'] });
  const first = pool.take(0)!;
  const second = pool.take(1)!;
  const rotated = pool.rotate(0, false)!;
  t.not(rotated, first);
  t.not(rotated, second);
  t.is(pool.addressOf(0), rotated);
  pool.take(2);
  const stuck = pool.rotate(0, false);
  t.truthy(stuck, 'with every other address taken the slot keeps one');
  t.is(pool.addressOf(0), stuck);
});

test('the region with more unused addresses is preferred, ties are random', async (t) => {
  const { resolver } = fakeResolver(
    { '_v2-origintunneld._tcp.argotunnel.com': regionRecords },
    {
      'region1.v2.argotunnel.com': v4('198.18.1', 3),
      'region2.v2.argotunnel.com': v4('198.18.2', 1),
    },
  );
  const pool = await discoverEdge({ resolver, random: () => 0.9 });
  t.is(pool.take(0)!.region, 1, 'region 1 has more unused');
  t.is(pool.take(1)!.region, 1, '2 unused against 1: still region 1');
  const tie = pool.take(2)!;
  t.true(tie.region === 1 || tie.region === 2);
  const seen = new Set<number>();
  for (const r of [0.1, 0.9]) {
    const p = await discoverEdge({ resolver, random: () => r });
    p.take(0);
    p.take(1);
    seen.add(p.take(2)!.region);
  }
  t.deepEqual([...seen].sort(), [1, 2], 'the random source decides ties');
});
