import test, { type ExecutionContext } from 'ava';
import 'reflect-metadata';
import { RecordingEventSink, capturingLogger, handBuiltRouteTable, startFakeCloudflare, testProvisionContext, type FakeCloudflare, type HandIngress } from '@warren/core/testing';
import firewallModule, { FirewallPlugin, actionSchema, countryListSchema, firewallSettingsSchema, hostCondition, ipListSchema, refPrefix } from '../src/index.js';

const TOKEN = 'firewall-test-token-SECRET-0123456789';
const TUNNEL = '3f7b5a52-9c1e-4d8e-8a51-0e6f0b1c2d3e';

async function harness(t: ExecutionContext, settings: Record<string, unknown> = {}, shared?: FakeCloudflare) {
  const fake = shared ?? (await startFakeCloudflare({ tokens: [{ value: TOKEN }] }));
  if (!shared) t.teardown(() => fake.close());
  const events = new RecordingEventSink();
  const { logger, text } = capturingLogger();
  const clients = fake.clients(TOKEN, { logger });
  const plugin = new FirewallPlugin(firewallSettingsSchema.parse(settings), clients);
  plugin.provision(testProvisionContext({ logger, events }));
  let generation = 0;
  return {
    fake,
    events,
    logs: text,
    sync: (ingresses: readonly HandIngress[], tunnelId = TUNNEL, formerTunnelIds: readonly string[] = []) =>
      plugin.onRoutesChanged(handBuiltRouteTable(ingresses, ++generation), { signal: AbortSignal.timeout(30_000), tunnelId, formerTunnelIds }),
  };
}

/** Annotations as the route builder would parse them with the manifest's schemas. */
const annotate = (raw: Record<string, string>) => {
  const schemas: Record<string, { parse(v: string): unknown }> = {
    'firewall-allow-ips': ipListSchema,
    'firewall-deny-ips': ipListSchema,
    'firewall-allow-countries': countryListSchema,
    'firewall-deny-countries': countryListSchema,
    'firewall-action': actionSchema,
  };
  return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, schemas[k]!.parse(v)]));
};
const ing = (name: string, hosts: string[], raw: Record<string, string> = {}): HandIngress => ({ namespace: 'shop', name, hosts, annotations: annotate(raw) });
const ours = (fake: FakeCloudflare, zone: string) => (fake.ruleset(zone)?.rules ?? []).filter((r) => r.ref.startsWith(refPrefix(TUNNEL)));

test('list annotations become WAF custom rules scoped to exactly that Ingress\'s hosts; foreign rules stay untouched', async (t) => {
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
  t.is(mine.length, 2);
  const byDesc = Object.fromEntries(mine.map((r) => [r.description, r]));
  t.is(byDesc['Warren shop/web: allow-ips']!.expression, '(lower(http.host) in {"shop.example.com" "www.example.com"}) and not ip.src in {203.0.113.0/24 2001:db8::/32}');
  t.is(byDesc['Warren shop/web: deny-countries']!.expression, '(lower(http.host) in {"shop.example.com" "www.example.com"}) and ip.src.country in {"T1" "RU"}');
  t.true(mine.every((r) => r.action === 'block' && r.enabled));
  t.false(mine.some((r) => r.expression.includes('blog.example.com')));
  t.false(mine.some((r) => r.ref.includes(TUNNEL)), 'refs do not reveal the tunnel id');
});

test('rules change with the annotations and disappear with them or with the Ingress', async (t) => {
  const h = await harness(t);
  h.fake.addZone('example.com');
  h.fake.addRule('example.com', { expression: 'ip.src in {192.0.2.1}', action: 'block', ref: 'keep-me' });
  await h.sync([ing('web', ['shop.example.com'], { 'firewall-deny-ips': '198.51.100.7', 'firewall-allow-countries': 'DE' })]);
  t.is(ours(h.fake, 'example.com').length, 2);
  h.fake.resetLog();
  await h.sync([ing('web', ['shop.example.com'], { 'firewall-deny-ips': '198.51.100.7, 198.51.100.8', 'firewall-allow-countries': 'DE', 'firewall-action': 'managed_challenge' })]);
  t.is(h.fake.count('PATCH /zones/:zone/rulesets/:ruleset/rules/:rule'), 2);
  t.is(h.fake.count(), 2, 'changed rules are edited in place, nothing else is called');
  t.true(ours(h.fake, 'example.com').every((r) => r.action === 'managed_challenge'));
  t.true(ours(h.fake, 'example.com').some((r) => r.expression.endsWith('ip.src in {198.51.100.7 198.51.100.8}')));
  await h.sync([ing('web', ['shop.example.com'], { 'firewall-allow-countries': 'DE' })]);
  t.deepEqual(ours(h.fake, 'example.com').map((r) => r.description), ['Warren shop/web: allow-countries']);
  await h.sync([]);
  t.deepEqual(h.fake.ruleset('example.com')!.rules.map((r) => r.ref), ['keep-me']);
});

test('after a tunnel replacement a new leader replaces the old tunnel\'s rules instead of leaving them behind', async (t) => {
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

test('an invalid CIDR is a Warning and only that entry is skipped; the entrypoint is created when missing', async (t) => {
  const h = await harness(t);
  h.fake.addZone('example.com');
  await h.sync([ing('web', ['shop.example.com'], { 'firewall-allow-ips': '10.0.0.0/8, 10.1.2.3/8, 300.1.1.1, 192.0.2.9', 'firewall-deny-countries': 'ZZ, DE' })]);
  t.is(h.fake.count('POST /zones/:zone/rulesets'), 1);
  const mine = ours(h.fake, 'example.com');
  t.is(mine.find((r) => r.description.endsWith('allow-ips'))!.expression, '(lower(http.host) in {"shop.example.com"}) and not ip.src in {10.0.0.0/8 192.0.2.9}');
  t.true(mine.find((r) => r.description.endsWith('deny-countries'))!.expression.endsWith('ip.src.country in {"DE"}'));
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
    '((ends_with(lower(http.host), ".apps.example.com") and not ends_with(lower(http.host), ".eu.apps.example.com") and not lower(http.host) in {"special.apps.example.com"}))'.slice(1, -1),
  );
  t.is(hostCondition(['*.apps.example.com'], table, 'regex'), '(lower(http.host) matches r"^[^.]+\\.apps\\.example\\.com$" and not lower(http.host) in {"special.apps.example.com"})');
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
  t.deepEqual(a.events.warnings('FirewallNoZone').map((e) => e.object.name), ['web']);
  fake.resetLog();
  for (let i = 0; i < 3; i++) await a.sync([web]);
  t.is(fake.count(), 0);
  await a.sync([]);
  t.deepEqual(fake.ruleset('example.com')!.rules.map((r) => r.description), ['Warren shop/api: deny-ips'], 'B\'s rule survives A\'s cleanup');
  t.false(a.logs().includes(TOKEN));
});

test('manifest declares the annotations; settings and annotation values are validated', (t) => {
  t.deepEqual(firewallModule.manifest.annotations?.map((a) => a.key), ['firewall-allow-ips', 'firewall-deny-ips', 'firewall-allow-countries', 'firewall-deny-countries', 'firewall-action']);
  t.true(firewallModule.manifest.needsLeader);
  t.false(actionSchema.safeParse('drop').success);
  t.deepEqual(ipListSchema.parse(' 2001:DB8::/32,,192.0.2.1 192.0.2.1'), { entries: ['2001:db8::/32', '192.0.2.1'], invalid: [] });
  t.is(ipListSchema.parse('2001:db8::1/32').invalid[0]?.reason, 'host bits are set (did you mean 2001:db8::/32?)');
  t.throws(() => firewallSettingsSchema.parse({ wildcardMatch: 'glob' }));
});

test('the container resolves the plugin with explicit tokens only', async (t) => {
  const { container } = await import('tsyringe');
  const { TOKENS } = await import('@warren/core/plugin');
  const child = container.createChildContainer();
  child.register(TOKENS.CloudflareClient, { useValue: () => { throw new Error('not called while resolving'); } });
  firewallModule.register(child, firewallModule.configSchema.parse({}));
  const [plugin] = child.resolveAll(TOKENS.ControlPlugin) as FirewallPlugin[];
  t.true(plugin instanceof FirewallPlugin);
  t.is(plugin!.id, 'cloud.firewall');
});

test('country lists take ISO 3166-1 codes plus T1 and XX only: EU, UN, QO, AC and the like are refused', (t) => {
  const parsed = countryListSchema.parse('EU, UN, QO, AC, ZZ, de, T1, xx, XK');
  t.deepEqual(parsed.entries, ['DE', 'T1', 'XX']);
  t.deepEqual(parsed.invalid.map((i) => i.entry), ['EU', 'UN', 'QO', 'AC', 'ZZ', 'XK']);
  t.deepEqual(countryListSchema.parse('us gb jp br za aq').entries, ['US', 'GB', 'JP', 'BR', 'ZA', 'AQ']);
});
