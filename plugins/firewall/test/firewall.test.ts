import test, { type ExecutionContext } from 'ava';
import { Registry } from 'prom-client';
import 'reflect-metadata';
import { HostedControlPlugin, registerPlugins } from '@warren/core';
import {
  RecordingEventSink,
  capturingLogger,
  handBuiltRouteTable,
  loadTestPlugins,
  registeredControlPlugins,
  startFakeCloudflare,
  testProvisionContext,
  type FakeCloudflare,
  type HandIngress,
} from '@warren/core/testing';
import { annotate } from './support.js';
import firewallModule, { FirewallPlugin, actionSchema, countryListSchema, firewallConfigSchema, hostCondition, ipListSchema, refPrefix } from '../src/index.js';

const TOKEN = 'firewall-test-token-SECRET-0123456789';
const TUNNEL = '3f7b5a52-9c1e-4d8e-8a51-0e6f0b1c2d3e';

async function harness(t: ExecutionContext, settings: Record<string, unknown> = {}, shared?: FakeCloudflare) {
  const fake = shared ?? (await startFakeCloudflare({ tokens: [{ value: TOKEN }] }));
  if (!shared) t.teardown(() => fake.close());
  const events = new RecordingEventSink();
  const { logger, text } = capturingLogger();
  const clients = fake.clients(TOKEN, { logger });
  const plugin = new FirewallPlugin(firewallConfigSchema.parse(settings), clients);
  plugin.provision(testProvisionContext({ logger, events }));
  let generation = 0;
  return {
    fake,
    events,
    logs: text,
    sync: (ingresses: readonly HandIngress[], tunnelId = TUNNEL, formerTunnelIds: readonly string[] = []) =>
      plugin.onRoutesChanged(handBuiltRouteTable(ingresses, ++generation), { signal: AbortSignal.timeout(30_000), tunnelId, formerTunnelIds }),
    /** One sync as the leader of leadership term `term`. */
    syncInTerm: (term: number, ingresses: readonly HandIngress[]) =>
      plugin.onRoutesChanged(handBuiltRouteTable(ingresses, ++generation), { signal: AbortSignal.timeout(30_000), tunnelId: TUNNEL, term }),
  };
}

const ing = (name: string, hosts: string[], raw: Record<string, string> = {}): HandIngress => ({ namespace: 'shop', name, hosts, annotations: annotate(raw) });
const ours = (fake: FakeCloudflare, zone: string) => (fake.ruleset(zone)?.rules ?? []).filter((r) => r.ref.startsWith(refPrefix(TUNNEL)));

test("list annotations become WAF custom rules scoped to exactly that Ingress's hosts; foreign rules stay untouched", async (t) => {
  const h = await harness(t);
  h.fake.addZone('example.com');
  const foreign = h.fake.addRule('example.com', { expression: 'http.request.uri.path eq "/wp-admin"', action: 'block', ref: 'ops-team-rule', description: 'by hand' });
  await h.sync([
    ing('web', ['shop.example.com', 'www.example.com'], { 'firewall-allow-ips': '203.0.113.0/24, 2001:db8::/32', 'firewall-deny-countries': 'T1 ru' }),
    ing('plain', ['blog.example.com']),
  ]);
  const rules = h.fake.ruleset('example.com')!.rules;
  t.deepEqual(rules[0], foreign, 'the hand-written rule is byte for byte the same');
  const mine = ours(h.fake, 'example.com');
  t.is(mine.length, 1, 'both lists of the Ingress in one rule');
  t.is(mine[0]!.description, 'Warren block 1: shop/web');
  t.is(
    mine[0]!.expression,
    '(lower(http.host) in {"shop.example.com" "www.example.com"}) and (ip.src.country in {"T1" "RU"} or not ip.src in {203.0.113.0/24 2001:db8::/32})',
  );
  t.true(mine.every((r) => r.action === 'block' && r.enabled));
  t.false(mine.some((r) => r.expression.includes('blog.example.com')));
  t.false(
    mine.some((r) => r.ref.includes(TUNNEL)),
    'refs do not reveal the tunnel id',
  );
});

test('rules change with the annotations and disappear with them or with the Ingress', async (t) => {
  const h = await harness(t);
  h.fake.addZone('example.com');
  h.fake.addRule('example.com', { expression: 'ip.src in {192.0.2.1}', action: 'block', ref: 'keep-me' });
  await h.sync([ing('web', ['shop.example.com'], { 'firewall-deny-ips': '198.51.100.7', 'firewall-allow-countries': 'DE' })]);
  t.is(ours(h.fake, 'example.com').length, 1);
  h.fake.resetLog();
  await h.sync([ing('web', ['shop.example.com'], { 'firewall-deny-ips': '198.51.100.7, 198.51.100.8', 'firewall-allow-countries': 'DE' })]);
  t.is(h.fake.count('PATCH /zones/:zone/rulesets/:ruleset/rules/:rule'), 1);
  t.is(h.fake.count(), 1, 'a changed rule is edited in place, nothing else is called');
  t.true(ours(h.fake, 'example.com')[0]!.expression.includes('ip.src in {198.51.100.7 198.51.100.8}'));
  await h.sync([ing('web', ['shop.example.com'], { 'firewall-deny-ips': '198.51.100.7', 'firewall-allow-countries': 'DE', 'firewall-action': 'managed_challenge' })]);
  t.deepEqual(
    ours(h.fake, 'example.com').map((r) => r.action),
    ['managed_challenge'],
    'another action: the rule moves',
  );
  await h.sync([ing('web', ['shop.example.com'], { 'firewall-allow-countries': 'DE' })]);
  t.deepEqual(
    ours(h.fake, 'example.com').map((r) => r.expression),
    ['(lower(http.host) in {"shop.example.com"}) and not ip.src.country in {"DE"}'],
  );
  await h.sync([]);
  t.deepEqual(
    h.fake.ruleset('example.com')!.rules.map((r) => r.ref),
    ['keep-me'],
  );
});

test("after a tunnel replacement a new leader replaces the old tunnel's rules instead of leaving them behind", async (t) => {
  const before = await harness(t);
  before.fake.addZone('example.com');
  const web = ing('web', ['shop.example.com'], { 'firewall-deny-ips': '198.51.100.7' });
  await before.sync([web]); // rules under the old tunnel's prefix
  const NEW = '44444444-5555-4666-8777-888888888888';
  const refs = () => before.fake.ruleset('example.com')!.rules.map((r) => r.ref.slice(0, refPrefix(NEW).length));

  const later = await harness(t, {}, before.fake); // another process: nothing in memory
  await later.sync([web], NEW, [TUNNEL]);
  t.deepEqual(refs(), [refPrefix(NEW)], 'one rule, under the new prefix; the old one is gone');
  await later.sync([], NEW, [TUNNEL]);
  t.deepEqual(before.fake.ruleset('example.com')!.rules, [], 'and removing the annotation removes it: nothing stays blocking');
});

test('a replica that leads again reads the rules afresh: a rule another leader removed meanwhile is installed again', async (t) => {
  const first = await harness(t);
  const second = await harness(t, {}, first.fake);
  first.fake.addZone('example.com');
  const web = ing('web', ['shop.example.com'], { 'firewall-allow-ips': '198.51.100.0/24' });
  const admin = ing('admin', ['admin.example.com'], { 'firewall-deny-countries': 'KP', 'firewall-action': 'managed_challenge' });
  await first.syncInTerm(1, [web, admin]);
  t.deepEqual(
    ours(first.fake, 'example.com')
      .map((r) => r.action)
      .sort(),
    ['block', 'managed_challenge'],
  );
  // The first replica loses the Lease; meanwhile the admin Ingress goes and the second leader removes its rule.
  await second.syncInTerm(1, [web]);
  t.deepEqual(
    ours(first.fake, 'example.com').map((r) => r.action),
    ['block'],
  );
  // The admin Ingress comes back while the first replica leads again, its view of the zone from its first term.
  await first.syncInTerm(2, [web, admin]);
  t.deepEqual(
    ours(first.fake, 'example.com')
      .map((r) => r.action)
      .sort(),
    ['block', 'managed_challenge'],
    'the challenge rule is enforced at the edge again',
  );
  t.deepEqual(first.events.warnings(), []);
});

test('a rule deleted by hand is installed again when its lists change, not refused until the zone is read again', async (t) => {
  const h = await harness(t);
  h.fake.addZone('example.com');
  await h.sync([ing('web', ['shop.example.com'], { 'firewall-allow-ips': '198.51.100.0/24' })]);
  const set = h.fake.ruleset('example.com')!;
  const [installed] = ours(h.fake, 'example.com');
  // Someone deletes Warren's rule in the dashboard.
  await h.fake.clients(TOKEN)().rulesets.rules.delete(installed!.id, { zone_id: set.zoneId, ruleset_id: set.id });
  t.deepEqual(ours(h.fake, 'example.com'), []);
  const changed = [ing('web', ['shop.example.com'], { 'firewall-allow-ips': '198.51.100.0/24 203.0.113.0/24' })];
  await h.sync(changed).catch(() => undefined); // the edit finds no rule: this sync may fail and be retried
  await h.sync(changed);
  t.deepEqual(
    ours(h.fake, 'example.com').map((r) => r.expression),
    ['(lower(http.host) in {"shop.example.com"}) and not ip.src in {198.51.100.0/24 203.0.113.0/24}'],
    'the allow list is enforced at the edge again',
  );
  t.deepEqual(h.events.warnings('FirewallRuleRejected'), []);
});

test('an invalid CIDR is a Warning and only that entry is skipped; the entrypoint is created when missing', async (t) => {
  const h = await harness(t);
  h.fake.addZone('example.com');
  await h.sync([ing('web', ['shop.example.com'], { 'firewall-allow-ips': '10.0.0.0/8, 10.1.2.3/8, 300.1.1.1, 192.0.2.9', 'firewall-deny-countries': 'ZZ, DE' })]);
  t.is(h.fake.count('POST /zones/:zone/rulesets'), 1);
  const mine = ours(h.fake, 'example.com');
  t.is(mine.length, 1);
  t.is(mine[0]!.expression, '(lower(http.host) in {"shop.example.com"}) and (ip.src.country in {"DE"} or not ip.src in {10.0.0.0/8 192.0.2.9})');
  const warnings = h.events.warnings('FirewallInvalidEntry');
  t.is(warnings.length, 2);
  const [ipWarning, countryWarning] = [warnings.find((w) => w.message.includes('allow-ips'))!, warnings.find((w) => w.message.includes('countries'))!];
  t.regex(ipWarning.message, /firewall-allow-ips: skipped "10\.1\.2\.3\/8" \(host bits are set \(did you mean 10\.0\.0\.0\/8\?\)\), "300\.1\.1\.1"/);
  t.regex(countryWarning.message, /"ZZ" \(not an ISO 3166-1/);
  t.true(warnings.every((w) => w.object.name === 'web' && w.object.kind === 'Ingress'));
  await h.sync([ing('web', ['shop.example.com'], { 'firewall-allow-ips': 'garbage' })]);
  t.is(ours(h.fake, 'example.com').length, 0, 'a list with no valid entry yields no rule at all');
  t.is(h.events.warnings('FirewallRuleSkipped').length, 1);
});

test('wildcard hosts exclude names other routes serve; regex mode matches exactly one label on Business zones', async (t) => {
  const table = ['*.apps.example.com', 'special.apps.example.com', '*.eu.apps.example.com', 'x.example.com'];
  t.is(
    hostCondition(['*.apps.example.com'], table, 'suffix'),
    '((ends_with(lower(http.host), ".apps.example.com") and not ends_with(lower(http.host), ".eu.apps.example.com") and not lower(http.host) in {"special.apps.example.com"}))'.slice(
      1,
      -1,
    ),
  );
  t.is(
    hostCondition(['*.apps.example.com'], table, 'regex'),
    '(lower(http.host) matches r"^[^.]+\\.apps\\.example\\.com$" and not lower(http.host) in {"special.apps.example.com"})',
  );
  const free = await harness(t, { wildcardMatch: 'regex' });
  free.fake.addZone('example.com');
  await free.sync([ing('wild', ['*.apps.example.com'], { 'firewall-deny-countries': 'T1' })]);
  t.is(free.events.warnings('FirewallRuleRejected').length, 1, 'a free zone refuses matches; reported, not fatal');
  const calls = free.fake.count();
  await free.sync([ing('wild', ['*.apps.example.com'], { 'firewall-deny-countries': 'T1' })]);
  t.is(free.fake.count(), calls, 'a refused rule is not retried until it changes');
  const business = await harness(t, { wildcardMatch: 'regex' });
  business.fake.addZone('example.com', { plan: 'business' });
  await business.sync([ing('wild', ['*.apps.example.com'], { 'firewall-deny-countries': 'T1' })]);
  t.regex(ours(business.fake, 'example.com')[0]!.expression, /matches r"\^\[\^\.\]\+\\\.apps/);
});

test('steady state makes no call; two installations keep their own rules in one zone', async (t) => {
  const fake = await startFakeCloudflare({ tokens: [{ value: TOKEN }] });
  t.teardown(() => fake.close());
  fake.addZone('example.com');
  fake.addZone('other.org');
  const a = await harness(t, {}, fake);
  const b = await harness(t, { ownerId: 'cluster-b' }, fake);
  const web = ing('web', ['shop.example.com', 'shop.other.org', 'lost.nowhere.net'], { 'firewall-deny-ips': '192.0.2.0/24' });
  await a.sync([web]);
  await b.sync([ing('api', ['api.example.com'], { 'firewall-deny-ips': '198.51.100.0/24' })]);
  t.is(fake.ruleset('example.com')!.rules.length, 2);
  t.is(ours(fake, 'other.org').length, 1, 'one rule per zone the Ingress has hosts in');
  t.deepEqual(
    a.events.warnings('FirewallNoZone').map((e) => e.object.name),
    ['web'],
  );
  fake.resetLog();
  for (let i = 0; i < 3; i++) await a.sync([web]);
  t.is(fake.count(), 0);
  await a.sync([]);
  t.deepEqual(
    fake.ruleset('example.com')!.rules.map((r) => r.description),
    ['Warren block 1: shop/api'],
    "B's rule survives A's cleanup",
  );
  t.false(a.logs().includes(TOKEN));
});

test('manifest declares the annotations; settings and annotation values are validated', (t) => {
  t.deepEqual(
    firewallModule.manifest.annotations?.map((a) => a.key),
    ['firewall-allow-ips', 'firewall-deny-ips', 'firewall-allow-countries', 'firewall-deny-countries', 'firewall-action'],
  );
  t.is(firewallModule.manifest.kind, 'control', 'control plugins run on the leader only');
  t.false(actionSchema.safeParse('drop').success);
  t.deepEqual(ipListSchema.parse(' 2001:DB8::/32,,192.0.2.1 192.0.2.1'), { entries: ['2001:db8::/32', '192.0.2.1'], invalid: [] });
  t.is(ipListSchema.parse('2001:db8::1/32').invalid[0]?.reason, 'host bits are set (did you mean 2001:db8::/32?)');
  t.throws(() => firewallConfigSchema.parse({ wildcardMatch: 'glob' }));
});

test('core registers the plugin under the control-plugin token with its manifest id; it resolves with explicit tokens only', async (t) => {
  const { container } = await import('tsyringe');
  const { TOKENS } = await import('@warren/core/plugin');
  const child = container.createChildContainer();
  child.register(TOKENS.CloudflareClient, {
    useValue: () => {
      throw new Error('not called while resolving');
    },
  });
  registerPlugins(child, loadTestPlugins([{ module: firewallModule }]));
  const [control] = registeredControlPlugins(child);
  t.true(control instanceof HostedControlPlugin && control.plugin instanceof FirewallPlugin, 'the metrics registry is optional');
  const withMetrics = child.createChildContainer();
  withMetrics.register(TOKENS.Metrics, { useValue: new Registry() });
  const [again] = registeredControlPlugins(withMetrics);
  t.true(again instanceof HostedControlPlugin && again.plugin instanceof FirewallPlugin);
  t.not(again, control, 'one instance per container');
  t.is(control!.id, 'cloud.firewall');
});

test('country lists take ISO 3166-1 codes plus T1 and XX only: EU, UN, QO, AC and the like are refused', (t) => {
  const parsed = countryListSchema.parse('EU, UN, QO, AC, ZZ, de, T1, xx, XK');
  t.deepEqual(parsed.entries, ['DE', 'T1', 'XX']);
  t.deepEqual(
    parsed.invalid.map((i) => i.entry),
    ['EU', 'UN', 'QO', 'AC', 'ZZ', 'XK'],
  );
  t.deepEqual(countryListSchema.parse('us gb jp br za aq').entries, ['US', 'GB', 'JP', 'BR', 'ZA', 'AQ']);
});

test('the lists of many Ingresses share one rule per zone and action, split only at 4,096 characters', async (t) => {
  const h = await harness(t);
  h.fake.addZone('example.com');
  const many = Array.from({ length: 12 }, (_, i) =>
    ing(`app${String(i).padStart(2, '0')}`, [`app${i}.example.com`], { 'firewall-allow-ips': '203.0.113.0/24', 'firewall-deny-countries': 'T1' }),
  );
  await h.sync(many);
  const mine = ours(h.fake, 'example.com');
  t.is(mine.length, 1, 'twelve Ingresses, two lists each: one rule on a Free plan that allows five');
  t.is(mine[0]!.expression.split(' or (').length, 12);
  t.true(mine[0]!.expression.length <= 4096);
  const wide = Array.from({ length: 60 }, (_, i) =>
    ing(`w${String(i).padStart(2, '0')}`, [`host-with-a-long-name-${i}.example.com`], { 'firewall-deny-ips': '198.51.100.0/24, 192.0.2.0/24' }),
  );
  await h.sync(wide);
  const split = ours(h.fake, 'example.com');
  t.true(split.length > 1 && split.length < 5, `${split.length} rules`);
  t.true(split.every((r) => r.expression.length <= 4096));
  t.is(
    split.map((r) => r.expression.split(' or (').length).reduce((a, b) => a + b, 0),
    60,
    'every Ingress in exactly one rule',
  );
});

test("beyond the plan's custom-rule limit allow lists win the free slots, the rest is a Warning and a metric, and they are installed once a slot frees up", async (t) => {
  const fake = await startFakeCloudflare({ tokens: [{ value: TOKEN }] });
  t.teardown(() => fake.close());
  fake.addZone('example.com');
  for (let i = 0; i < 4; i++) fake.addRule('example.com', { expression: `ip.src in {192.0.2.${i}}`, action: 'block', ref: `person-${i}` });
  const registry = new Registry();
  const events = new RecordingEventSink();
  const { logger } = capturingLogger();
  const plugin = new FirewallPlugin(firewallConfigSchema.parse({ resyncInterval: 1 }), fake.clients(TOKEN, { logger }), registry);
  plugin.provision(testProvisionContext({ logger, events }));
  // Each Ingress has so many hosts that the two clauses cannot share one 4,096-character rule.
  const hosts = (prefix: string) => Array.from({ length: 90 }, (_, i) => `${prefix}-${String(i).padStart(3, '0')}.example.com`);
  const table = [ing('deny', hosts('deny'), { 'firewall-deny-ips': '198.51.100.7' }), ing('allow', hosts('allow'), { 'firewall-allow-countries': 'DE' })];
  const sync = (n: number) => plugin.onRoutesChanged(handBuiltRouteTable(table, n), { signal: AbortSignal.timeout(30_000), tunnelId: TUNNEL });
  await sync(1);
  t.deepEqual(
    ours(fake, 'example.com').map((r) => r.description),
    ['Warren block 1: shop/allow'],
    'the one free slot goes to the allow list',
  );
  const limited = events.warnings('FirewallRuleLimit');
  t.deepEqual(
    limited.map((e) => e.object.name),
    ['deny'],
  );
  t.regex(limited[0]!.message, /allows 5 custom rules and 4 of them are not Warren's.*NOT enforced at the edge.*Warren's proxy refuses what they refuse meanwhile/);
  const gauge = async () => (await registry.getSingleMetric('warren_firewall_unenforced_ingresses')!.get()).values.find((v) => v.labels.zone === 'example.com')?.value;
  t.is(await gauge(), 1);
  await sync(2);
  t.is(events.warnings('FirewallRuleLimit').length, 1, 'reported once while unchanged');

  const set = fake.ruleset('example.com')!;
  await fake.clients(TOKEN)().rulesets.rules.delete(set.rules[0]!.id, { zone_id: set.zoneId, ruleset_id: set.id });
  await new Promise((resolve) => setTimeout(resolve, 5));
  await sync(3);
  t.deepEqual(
    ours(fake, 'example.com')
      .map((r) => r.description)
      .sort(),
    ['Warren block 1: shop/allow', 'Warren block 2: shop/deny'],
  );
  t.is(await gauge(), 0, 'everything enforced once a person freed a slot');
  t.throws(() => fake.addRule('example.com', { expression: 'ip.src in {192.0.2.99}', action: 'block' }), { message: /maximum number of rules/ }, 'the zone is full');
});

test('when the actions do not fit side by side, lists are enforced with block rather than not at all', async (t) => {
  const h = await harness(t);
  h.fake.addZone('example.com');
  for (let i = 0; i < 4; i++) h.fake.addRule('example.com', { expression: `ip.src in {192.0.2.${i}}`, action: 'block', ref: `person-${i}` });
  const table = [
    ing('deny', ['d.example.com'], { 'firewall-deny-ips': '198.51.100.7', 'firewall-action': 'managed_challenge' }),
    ing('allow', ['a.example.com'], { 'firewall-allow-countries': 'DE' }),
  ];
  await h.sync(table);
  const mine = ours(h.fake, 'example.com');
  t.is(mine.length, 1);
  t.is(mine[0]!.action, 'block');
  t.regex(mine[0]!.expression, /d\.example\.com.*198\.51\.100\.7/);
  t.deepEqual(
    h.events.warnings('FirewallActionTightened').map((e) => e.object.name),
    ['deny'],
  );
  t.is(h.events.warnings('FirewallRuleLimit').length, 0);
  h.fake.setPlan('example.com', 'pro');
  const later = await harness(t, {}, h.fake);
  await later.sync(table);
  t.deepEqual(
    ours(h.fake, 'example.com')
      .map((r) => r.action)
      .sort(),
    ['block', 'managed_challenge'],
    'with room, each Ingress gets its own action again',
  );
});

test('a plan upgrade makes room: rules that did not fit are installed on a later sync', async (t) => {
  const h = await harness(t, { zoneCacheTtl: 1, resyncInterval: 1 });
  h.fake.addZone('example.com');
  for (let i = 0; i < 5; i++) h.fake.addRule('example.com', { expression: `ip.src in {192.0.2.${i}}`, action: 'block', ref: `person-${i}` });
  const table = [ing('web', ['w.example.com'], { 'firewall-allow-ips': '203.0.113.0/24' })];
  await h.sync(table);
  t.is(ours(h.fake, 'example.com').length, 0);
  t.is(h.events.warnings('FirewallRuleLimit').length, 1);
  t.is(h.fake.count('POST /zones/:zone/rulesets/:ruleset/rules'), 0, 'nothing sent that the API would refuse');
  h.fake.setPlan('example.com', 'pro');
  await new Promise((resolve) => setTimeout(resolve, 5));
  await h.sync(table);
  t.is(ours(h.fake, 'example.com').length, 1);
});

test('a refused entrypoint creation is reported on the Ingress, is not read as "exists", and other zones still sync', async (t) => {
  const h = await harness(t);
  const broken = h.fake.addZone('broken.example');
  h.fake.addZone('fine.example');
  h.fake.faults.apiError(1, 400, 20021, 'the request was refused', 'POST /zones/:zone/rulesets');
  await h.sync([ing('one', ['a.broken.example'], { 'firewall-deny-ips': '192.0.2.1' }), ing('two', ['b.fine.example'], { 'firewall-deny-ips': '192.0.2.2' })]);
  t.is(ours(h.fake, 'fine.example').length, 1, 'the other zone is synced');
  t.is(h.fake.ruleset('broken.example'), undefined);
  const rejected = h.events.warnings('FirewallRuleRejected');
  t.deepEqual(
    rejected.map((e) => e.object.name),
    ['one'],
  );
  t.regex(rejected[0]!.message, /entrypoint of zone broken\.example.*20021/);
  void broken;
  await h.sync([ing('one', ['a.broken.example'], { 'firewall-deny-ips': '192.0.2.3' }), ing('two', ['b.fine.example'], { 'firewall-deny-ips': '192.0.2.2' })]);
  t.is(ours(h.fake, 'broken.example').length, 1, 'a changed rule is tried again and succeeds');
});

test('Gateway API routes get the defaults (no lists, no rules), count as other routes of a host, and are named by their kind', async (t) => {
  const h = await harness(t);
  h.fake.addZone('example.com');
  const gateway = (kind: 'HTTPRoute' | 'GRPCRoute', name: string, hosts: string[]): HandIngress => ({ kind, namespace: 'shop', name, hosts });
  await h.sync([
    ing('web', ['shop.example.com', '*.apps.example.com'], { 'firewall-deny-countries': 'T1' }),
    // Same namespace and name as the Ingress: a different object, never confused with it.
    gateway('HTTPRoute', 'web', ['shop.example.com', 'special.apps.example.com']),
    gateway('GRPCRoute', 'rpc', ['rpc.example.com']),
  ]);
  const mine = ours(h.fake, 'example.com');
  t.is(mine.length, 1, 'only the Ingress has lists');
  t.is(mine[0]!.description, 'Warren block 1: shop/web');
  t.regex(mine[0]!.expression, /not lower\(http\.host\) in \{"special\.apps\.example\.com"\}/, "the HTTPRoute's host under the wildcard is excluded");
  t.notRegex(mine[0]!.expression, /rpc\.example\.com/);
  const shared = h.events.warnings('FirewallSharedHost');
  t.is(shared.length, 1);
  t.like(shared[0]!.object, { kind: 'Ingress', namespace: 'shop', name: 'web', uid: 'uid-shop-web' });
  t.regex(shared[0]!.message, /^hosts shop\.example\.com are also routed by HTTPRoute shop\/web; firewall rules apply to the whole host, their traffic included$/);
  t.false(
    h.events.events.some((e) => e.object.kind !== 'Ingress'),
    'Gateway API routes have no lists, so nothing is reported on them',
  );
});

test('lists on an HTTPRoute make its own clause and Events, never merged with the Ingress of the same name', async (t) => {
  const h = await harness(t);
  h.fake.addZone('example.com');
  await h.sync([
    ing('web', ['shop.example.com'], { 'firewall-deny-countries': 'T1' }),
    { kind: 'HTTPRoute', namespace: 'shop', name: 'web', hosts: ['api.example.com', 'bad host'], annotations: annotate({ 'firewall-deny-ips': '198.51.100.7, 10.0.0.0/33' }) },
  ]);
  const mine = ours(h.fake, 'example.com');
  t.is(mine.length, 1);
  t.is(mine[0]!.description, 'Warren block 1: HTTPRoute:shop/web, shop/web', 'two objects, told apart by kind');
  t.is(
    mine[0]!.expression,
    '((lower(http.host) in {"api.example.com"}) and ip.src in {198.51.100.7}) or ((lower(http.host) in {"shop.example.com"}) and ip.src.country in {"T1"})',
  );
  const invalid = h.events.warnings('FirewallInvalidEntry');
  t.is(invalid.length, 1);
  t.like(invalid[0]!.object, { kind: 'HTTPRoute', namespace: 'shop', name: 'web', uid: 'uid-HTTPRoute-shop-web' });
});
