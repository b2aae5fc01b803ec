/**
 * Fail closed where the plan leaves no custom-rule slot: the firewall plugin, loaded as the controller loads it,
 * with the fake Cloudflare API at the Free plan's limit, and real traffic from loopback visitors through the edge
 * simulator's eyeball, the tunnel connector and the proxy pipeline to a real origin.
 */
import test, { type ExecutionContext } from 'ava';
import http from 'node:http';
import { parseConfig } from '../../src/config/load.js';
import { TOKENS } from '../../src/di/tokens.js';
import { resolvePlugins } from '../../src/plugins/registry.js';
import type { RouteTable } from '../../src/routes/types.js';
import {
  RecordingEventSink,
  capturingLogger,
  startFakeCloudflare,
  startOrigin,
  startProxyHarness,
  testProvisionContext,
  testRoute,
  testRouteTable,
} from '../../src/testing/index.js';
import { startHarness } from '../tunnel/support/harness.js';

const TOKEN = 'firewall-origin-token-SECRET-0123456789';
const TUNNEL = '0b6f2c1d-4e5a-4b7c-8d9e-0f1a2b3c4d5e';

/** One GET through the eyeball from the visitor address `from` (a loopback address), on a fresh connection. */
function visit(eyeball: string, host: string, from: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(eyeball, { agent: false, localAddress: from, headers: { host }, timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
    req.on('error', reject);
    req.end();
  });
}

async function stack(t: ExecutionContext) {
  const fake = await startFakeCloudflare({ tokens: [{ value: TOKEN }] });
  t.teardown(() => fake.close());
  fake.addZone('example.com'); // Free plan: 5 custom rules, everyone's counted
  for (let i = 0; i < 5; i++) fake.addRule('example.com', { expression: `ip.src in {192.0.2.${i}}`, action: 'block', ref: `person-${i}` });

  const origin = await startOrigin({ handler: (_req, res) => res.end('served by the origin') });
  const { logger } = capturingLogger();
  const settings = parseConfig({ plugins: { firewall: { enabled: true, resyncInterval: 1 } } });
  const proxy = await startProxyHarness({ loadedPlugins: await resolvePlugins(settings), rootValues: [[TOKENS.CloudflareClient as symbol, fake.clients(TOKEN, { logger })]] });
  t.teardown(async () => {
    await proxy.close();
    await origin.close();
  });
  // The connector registers once the pipeline has a route table: the first publish below.
  const { sim } = await startHarness(t, { handler: proxy.pipeline });

  // The leader's side of the same plugin: the control plugin core registered for the module.
  const [control] = proxy.container.resolveAll(TOKENS.ControlPlugin);
  const events = new RecordingEventSink();
  await control!.provision?.(testProvisionContext({ logger, events }));
  const routes = [
    // The allow list names the one loopback visitor that may come in.
    testRoute({
      host: 'shop.example.com',
      namespace: 'shop',
      ingress: 'web',
      endpoints: [origin.key],
      annotations: { 'firewall-allow-ips': { entries: ['127.0.0.1'], invalid: [] } },
    }),
    testRoute({ host: 'blog.example.com', namespace: 'shop', ingress: 'blog', endpoints: [origin.key] }),
  ];
  let generation = 0;
  const publish = async (): Promise<RouteTable> => {
    const table = testRouteTable(routes, ++generation);
    await proxy.setTable(table);
    await sim.waitForRegistrations(1);
    await control!.onRoutesChanged?.(table, { signal: AbortSignal.timeout(30_000), tunnelId: TUNNEL });
    return table;
  };
  return { fake, sim, proxy, events, publish, eyeball: sim.eyeballUrl };
}

test('no rule slot left in the zone: the allow list is enforced by Warren, and stays enforced once the edge rule is installed', async (t) => {
  const s = await stack(t);
  await s.publish();
  t.is(s.fake.ruleset('example.com')!.rules.length, 5, "no slot: Warren's rule is not in the zone");
  t.deepEqual(
    s.events.warnings('FirewallRuleLimit').map((e) => e.object.name),
    ['web'],
    'the Ingress is told its lists are not enforced at the edge',
  );

  const allowed = await visit(s.eyeball, 'shop.example.com', '127.0.0.1');
  t.deepEqual(allowed, { status: 200, body: 'served by the origin' });
  const refused = await visit(s.eyeball, 'shop.example.com', '127.0.0.2');
  t.is(refused.status, 403, 'an address outside the allow list is refused although the edge holds no rule');
  t.regex(refused.body, /^access denied\nreference: [\w-]+\n$/);
  t.is((await visit(s.eyeball, 'blog.example.com', '127.0.0.2')).status, 200, 'an Ingress without lists is open to everyone');

  const refusals = async () =>
    (await s.proxy.metrics.getSingleMetric('warren_firewall_origin_refusals_total')!.get()).values.find((v) => v.labels.ingress === 'web' && v.labels.reason === 'allow-ips')
      ?.value;
  t.is(await refusals(), 1);

  // A person deletes one of their rules: the next sync installs Warren's.
  const set = s.fake.ruleset('example.com')!;
  await s.fake.clients(TOKEN)().rulesets.rules.delete(set.rules[0]!.id, { zone_id: set.zoneId, ruleset_id: set.id });
  await new Promise((resolve) => setTimeout(resolve, 5));
  await s.publish();
  const mine = s.fake.ruleset('example.com')!.rules.filter((r) => r.ref.startsWith('warren-'));
  t.is(mine.length, 1, 'the edge rule is installed now');
  t.is(mine[0]!.expression, '(lower(http.host) in {"shop.example.com"}) and not ip.src in {127.0.0.1}');
  t.deepEqual(await visit(s.eyeball, 'shop.example.com', '127.0.0.1'), { status: 200, body: 'served by the origin' });
  t.is((await visit(s.eyeball, 'shop.example.com', '127.0.0.3')).status, 403, 'still refused (the simulator does not run WAF rules; Warren does)');
  t.is(await refusals(), 2);
});
