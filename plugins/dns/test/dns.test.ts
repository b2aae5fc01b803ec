import test, { type ExecutionContext } from 'ava';
import 'reflect-metadata';
import { isWarrenError, ErrorCode, type CloudflareApiError, HostedControlPlugin, registerPlugins } from '@warren/core';
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
import dnsModule, { DnsPlugin, DnsSync, dnsManagedSchema, dnsConfigSchema, registryName } from '../src/index.js';

const TOKEN = 'dns-test-api-token-SECRET-0123456789';
const TUNNEL = '3f7b5a52-9c1e-4d8e-8a51-0e6f0b1c2d3e';
const TARGET = `${TUNNEL}.cfargotunnel.com`;
const BATCH = 'POST /zones/:zone/dns_records/batch';

interface Harness {
  fake: FakeCloudflare;
  events: RecordingEventSink;
  logs: () => string;
  plugin: DnsPlugin;
  sync(ingresses: readonly HandIngress[], tunnelId?: string): Promise<void>;
}

async function harness(t: ExecutionContext, settings: Record<string, unknown> = {}, fake?: FakeCloudflare): Promise<Harness> {
  if (!fake) {
    fake = await startFakeCloudflare({ tokens: [{ value: TOKEN }] });
    const f = fake;
    t.teardown(() => f.close());
  }
  const events = new RecordingEventSink();
  const { logger, text } = capturingLogger();
  const clients = fake.clients(TOKEN, { logger });
  const plugin = new DnsPlugin(dnsConfigSchema.parse(settings), clients);
  plugin.provision(testProvisionContext({ logger, events }));
  let generation = 0;
  return {
    fake,
    events,
    logs: text,
    plugin,
    sync: (ingresses, tunnelId = TUNNEL) => plugin.onRoutesChanged(handBuiltRouteTable(ingresses, ++generation), { signal: AbortSignal.timeout(60_000), tunnelId }),
  };
}

const ing = (name: string, hosts: string[], annotations: Record<string, unknown> = {}): HandIngress => ({ namespace: 'default', name, hosts, annotations });
const cnames = (fake: FakeCloudflare, zone: string) =>
  Object.fromEntries(
    fake
      .records(zone)
      .filter((r) => r.type === 'CNAME')
      .map((r) => [r.name, r.content]),
  );

test('creates proxied CNAMEs with opaque ownership records for exact and wildcard hosts', async (t) => {
  const h = await harness(t);
  h.fake.addZone('example.com');
  await h.sync([ing('web', ['app.example.com', '*.apps.example.com']), ing('api', ['api.example.com'])]);
  const records = h.fake.records('example.com');
  t.deepEqual(cnames(h.fake, 'example.com'), { 'app.example.com': TARGET, '*.apps.example.com': TARGET, 'api.example.com': TARGET });
  t.true(records.filter((r) => r.type === 'CNAME').every((r) => r.proxied && r.ttl === 1));
  const txt = records.filter((r) => r.type === 'TXT');
  t.deepEqual(txt.map((r) => r.name).sort(), ['_warren._wildcard.apps.example.com', '_warren.api.example.com', '_warren.app.example.com']);
  t.true(
    txt.every((r) => !r.content.includes(TUNNEL) && /^"warren-owner=[0-9a-f]{32}"$/.test(r.content)),
    'registry content is opaque',
  );
  t.is(new Set(txt.map((r) => r.content)).size, 3, 'one value per name');
  t.is(h.events.events.filter((e) => e.reason === 'DnsRecordCreated').length, 3);
  t.is(h.fake.count(BATCH), 1, 'one batch for everything');
});

test('records follow the Ingress: a new tunnel id updates them, a removed host or a deleted Ingress removes them', async (t) => {
  const h = await harness(t, { ownerId: 'cluster-a' });
  h.fake.addZone('example.com');
  const web = ing('web', ['a.example.com', 'shared.example.com']);
  const other = ing('other', ['shared.example.com', 'b.example.com']);
  await h.sync([web, other]);
  t.is(Object.keys(cnames(h.fake, 'example.com')).length, 3);

  const NEW = '11111111-2222-4333-8444-555555555555';
  await h.sync([web, other], NEW);
  t.true(
    Object.values(cnames(h.fake, 'example.com')).every((c) => c === `${NEW}.cfargotunnel.com`),
    'updated in place',
  );

  await h.sync([ing('web', ['shared.example.com']), other], NEW);
  t.deepEqual(Object.keys(cnames(h.fake, 'example.com')).sort(), ['b.example.com', 'shared.example.com']);
  t.false(
    h.fake.records('example.com').some((r) => r.name === '_warren.a.example.com'),
    'the ownership record went too',
  );

  await h.plugin.onIngressDeleted(
    { namespace: 'default', name: 'other', hosts: ['shared.example.com', 'b.example.com'] },
    { signal: AbortSignal.timeout(10_000), tunnelId: NEW },
  );
  t.deepEqual(Object.keys(cnames(h.fake, 'example.com')), ['shared.example.com'], 'a host another Ingress still uses stays');
  const before = h.fake.count();
  await h.sync([ing('web', ['shared.example.com']), other], NEW);
  t.deepEqual(Object.keys(cnames(h.fake, 'example.com')), ['shared.example.com'], 'the deleted Ingress is not recreated while the table still lists it');
  t.is(h.fake.count(), before, 'and nothing needed an API call');
  // As core asks: the Ingress's raw annotations, parsed with the manifest's specs before the plugin sees them.
  const hosted = new HostedControlPlugin(dnsModule.manifest, h.plugin);
  t.true(hosted.needsFinalizer({ namespace: 'default', name: 'web', annotations: {} }));
  t.false(hosted.needsFinalizer({ namespace: 'default', name: 'web', annotations: { 'warren.dev/dns-managed': ' False ' } }));
  t.true(hosted.needsFinalizer({ namespace: 'default', name: 'web', annotations: { 'warren.dev/dns-managed': 'maybe' } }), 'a value the schema refuses is absent');
});

test('without ownerId, a replaced tunnel takes its records over: CNAMEs follow, ownership is re-keyed, nothing conflicts', async (t) => {
  const h = await harness(t);
  h.fake.addZone('example.com');
  const web = ing('web', ['a.example.com', 'b.example.com']);
  await h.sync([web]);
  const keyed = (zone: string) =>
    Object.fromEntries(
      h.fake
        .records(zone)
        .filter((r) => r.type === 'TXT')
        .map((r) => [r.name, r.content]),
    );
  const before = keyed('example.com');

  // The managed tunnel was deleted in Cloudflare and replaced: the owner key (the tunnel id) changes.
  const NEW = '22222222-3333-4444-8555-666666666666';
  await h.sync([web], NEW);
  t.deepEqual(cnames(h.fake, 'example.com'), { 'a.example.com': `${NEW}.cfargotunnel.com`, 'b.example.com': `${NEW}.cfargotunnel.com` });
  const after = keyed('example.com');
  t.deepEqual(Object.keys(after).sort(), Object.keys(before).sort());
  t.true(
    Object.keys(after).every((name) => after[name] !== before[name]),
    'ownership records now carry the new key',
  );
  t.false(
    h.events.events.some((e) => e.reason === 'DnsConflict'),
    'no conflict with our own former records',
  );

  // From now on the new key alone owns them: a removed host is cleaned up.
  await h.sync([ing('web', ['a.example.com'])], NEW);
  t.deepEqual(Object.keys(cnames(h.fake, 'example.com')), ['a.example.com']);
  t.false(h.fake.records('example.com').some((r) => r.name === '_warren.b.example.com'));
});

test('hosts deeper than Universal SSL covers get their record and one Warning each; shallower hosts none', async (t) => {
  const h = await harness(t);
  h.fake.addZone('example.com');
  const deep = ing('deep', ['a.b.example.com', '*.apps.example.com']);
  const shallow = ing('shallow', ['example.com', 'app.example.com', '*.example.com']);
  await h.sync([deep, shallow]);
  await h.sync([deep, shallow]);
  t.is(Object.keys(cnames(h.fake, 'example.com')).length, 5, 'every host still gets its CNAME');
  const warned = h.events.events.filter((e) => e.reason === 'UniversalSslNotCovered');
  t.deepEqual(
    warned.map((e) => `${e.object.name}:${/host (\S+)/.exec(e.message)?.[1]}`).sort(),
    ['deep:*.apps.example.com', 'deep:a.b.example.com'],
    'once per host, across syncs',
  );
  t.true(warned.every((e) => e.type === 'Warning' && /2 levels below zone example\.com/.test(e.message)));
});

test('a new leader that never ran the old tunnel moves its records when told it was replaced', async (t) => {
  const before = await harness(t);
  before.fake.addZone('example.com');
  const web = ing('web', ['app.example.com']);
  await before.sync([web]); // owned under TUNNEL
  const NEW = '33333333-4444-4555-8666-777777777777';

  // Another process (fresh plugin instance, no history) without the hint: the records are another owner's.
  const blind = await harness(t, {}, before.fake);
  await blind.sync([web], NEW);
  t.is(cnames(before.fake, 'example.com')['app.example.com'], TARGET, 'left alone');
  t.true(blind.events.events.some((e) => e.reason === 'DnsConflict'));

  // With the replaced tunnel named in formerTunnelIds it takes them over.
  const told = await harness(t, {}, before.fake);
  await told.plugin.onRoutesChanged(handBuiltRouteTable([web], 9), { signal: AbortSignal.timeout(60_000), tunnelId: NEW, formerTunnelIds: [TUNNEL] });
  t.is(cnames(before.fake, 'example.com')['app.example.com'], `${NEW}.cfargotunnel.com`);
  t.false(told.events.events.some((e) => e.reason === 'DnsConflict'));
});

test('foreign records are never touched: conflicts are Warning events on that Ingress only', async (t) => {
  const h = await harness(t);
  h.fake.addZone('example.com');
  const foreignCname = h.fake.addRecord('example.com', { type: 'CNAME', name: 'taken.example.com', content: 'elsewhere.example.net', proxied: true });
  const foreignA = h.fake.addRecord('example.com', { type: 'A', name: 'v4.example.com', content: '192.0.2.10' });
  h.fake.addRecord('example.com', { type: 'TXT', name: 'claimed.example.com', content: '"heritage=external-dns,external-dns/owner=default"' });
  h.fake.addRecord('example.com', { type: 'TXT', name: '_warren.other.example.com', content: '"warren-owner=0123456789abcdef0123456789abcdef"' });
  await h.sync([ing('a', ['taken.example.com']), ing('b', ['v4.example.com']), ing('c', ['other.example.com']), ing('d', ['free.example.com'])]);
  const records = h.fake.records('example.com');
  t.deepEqual(
    records.find((r) => r.id === foreignCname.id),
    { ...foreignCname, modifiedOn: records.find((r) => r.id === foreignCname.id)!.modifiedOn },
  );
  t.truthy(records.find((r) => r.id === foreignA.id));
  t.deepEqual(cnames(h.fake, 'example.com'), { 'taken.example.com': 'elsewhere.example.net', 'free.example.com': TARGET });
  const conflicts = h.events.warnings('DnsConflict');
  t.deepEqual(conflicts.map((e) => e.object.name).sort(), ['a', 'b', 'c']);
  t.regex(conflicts.find((e) => e.object.name === 'c')!.message, /claimed by another owner/);
  t.regex(conflicts.find((e) => e.object.name === 'a')!.message, /taken\.example\.com already has CNAME/);
  await h.sync([ing('a', ['taken.example.com']), ing('b', ['v4.example.com']), ing('c', ['other.example.com']), ing('d', ['free.example.com'])]);
  t.is(h.events.warnings('DnsConflict').length, 3, 'an unchanged conflict is reported once');
});

test("overwriteUnmanaged takes over records nobody claims, never another owner's", async (t) => {
  const h = await harness(t, { overwriteUnmanaged: true });
  h.fake.addZone('example.com');
  h.fake.addRecord('example.com', { type: 'CNAME', name: 'old.example.com', content: 'legacy.example.net', proxied: false });
  h.fake.addRecord('example.com', { type: 'A', name: 'v4.example.com', content: '192.0.2.10' });
  h.fake.addRecord('example.com', { type: 'TXT', name: '_warren.theirs.example.com', content: '"warren-owner=ffffffffffffffffffffffffffffffff"' });
  h.fake.addRecord('example.com', { type: 'CNAME', name: 'theirs.example.com', content: 'their-tunnel.cfargotunnel.com', proxied: true });
  await h.sync([ing('a', ['old.example.com', 'v4.example.com', 'theirs.example.com'])]);
  t.deepEqual(cnames(h.fake, 'example.com'), { 'old.example.com': TARGET, 'v4.example.com': TARGET, 'theirs.example.com': 'their-tunnel.cfargotunnel.com' });
  t.false(h.fake.records('example.com').some((r) => r.type === 'A'));
  t.is(h.events.warnings('DnsConflict').length, 1);
});

test('two installations share a zone, each managing only its own names', async (t) => {
  const fake = await startFakeCloudflare({ tokens: [{ value: TOKEN }] });
  t.teardown(() => fake.close());
  fake.addZone('example.com');
  const a = await harness(t, { ownerId: 'cluster-a' }, fake);
  const b = await harness(t, { ownerId: 'cluster-b', resyncInterval: 0 }, fake);
  const TUNNEL_B = 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee';
  await a.sync([ing('x', ['x.example.com', 'both.example.com'])]);
  await b.sync([ing('y', ['y.example.com', 'both.example.com'])], TUNNEL_B);
  t.deepEqual(cnames(fake, 'example.com'), { 'x.example.com': TARGET, 'both.example.com': TARGET, 'y.example.com': `${TUNNEL_B}.cfargotunnel.com` });
  t.is(b.events.warnings('DnsConflict').length, 1);
  await b.sync([], TUNNEL_B);
  t.deepEqual(cnames(fake, 'example.com'), { 'x.example.com': TARGET, 'both.example.com': TARGET }, 'B removed only its own record');
  await a.sync([]);
  t.deepEqual(fake.records('example.com'), []);
});

test('the zone is chosen by longest suffix, and a host outside every zone affects only itself', async (t) => {
  const h = await harness(t);
  h.fake.addZone('example.com');
  h.fake.addZone('sub.example.com');
  await h.sync([ing('deep', ['a.sub.example.com']), ing('top', ['b.example.com']), ing('lost', ['app.elsewhere.org'])]);
  t.deepEqual(cnames(h.fake, 'sub.example.com'), { 'a.sub.example.com': TARGET });
  t.deepEqual(cnames(h.fake, 'example.com'), { 'b.example.com': TARGET });
  t.deepEqual(
    h.events.warnings().map((e) => [e.reason, e.object.name]),
    [['DnsNoZone', 'lost']],
  );
});

test('the zone allow-list limits which zones are touched', async (t) => {
  const h = await harness(t, { zones: ['sub.example.com'] });
  h.fake.addZone('example.com');
  h.fake.addZone('sub.example.com');
  await h.sync([ing('deep', ['a.sub.example.com']), ing('top', ['b.example.com'])]);
  t.deepEqual(cnames(h.fake, 'sub.example.com'), { 'a.sub.example.com': TARGET });
  t.deepEqual(h.fake.records('example.com'), []);
  t.is(h.fake.count('GET /zones/:zone/dns_records'), 1, 'only the allowed zone was read');
  t.deepEqual(
    h.events.warnings('DnsNoZone').map((e) => e.object.name),
    ['top'],
  );
});

test('opting out creates nothing, and hands off names Warren already owns', async (t) => {
  const h = await harness(t);
  h.fake.addZone('example.com');
  t.is(dnsManagedSchema.parse(' False '), false);
  t.false(dnsManagedSchema.safeParse('maybe').success);
  await h.sync([ing('a', ['a.example.com'], { 'dns-managed': false }), ing('b', ['b.example.com'])]);
  t.deepEqual(cnames(h.fake, 'example.com'), { 'b.example.com': TARGET });
  await h.sync([ing('a', ['a.example.com'], { 'dns-managed': false }), ing('b', ['b.example.com'], { 'dns-managed': false })]);
  t.deepEqual(cnames(h.fake, 'example.com'), { 'b.example.com': TARGET }, 'the CNAME stays for the next manager');
  t.deepEqual(
    h.fake.records('example.com').map((r) => r.type),
    ['CNAME'],
    'the ownership record is gone',
  );
  t.is(h.events.events.filter((e) => e.reason === 'DnsReleased').length, 1);
  await h.sync([]);
  t.deepEqual(cnames(h.fake, 'example.com'), { 'b.example.com': TARGET }, 'a handed-off name is not deleted later');
});

test('1,000 hosts: initial sync in a dozen calls, steady state makes no call, one change costs one call', async (t) => {
  const h = await harness(t);
  h.fake.addZone('example.com');
  const ingresses = Array.from({ length: 250 }, (_, i) =>
    ing(
      `app${i}`,
      [0, 1, 2, 3].map((j) => `h${i}-${j}.example.com`),
    ),
  );
  await h.sync(ingresses);
  t.is(h.fake.records('example.com').length, 2000);
  t.is(h.fake.count('GET /zones'), 1);
  t.is(h.fake.count('GET /zones/:zone/dns_records'), 1);
  t.is(h.fake.count(BATCH), 10, '2,000 changes in batches of 200');
  t.is(h.fake.count(), 12);
  h.fake.resetLog();
  for (let i = 0; i < 3; i++) await h.sync(ingresses);
  t.is(h.fake.count(), 0, 'steady state: zero API calls');
  await h.sync([...ingresses.slice(1), ing('new', ['new.example.com'])]);
  t.is(h.fake.count(), 1);
  t.is(h.fake.records('example.com').length, 2000 - 8 + 2);
});

test('429 and 5xx: the SDK backs off per retry-after, a persistent outage rejects and the next sync finishes', async (t) => {
  const h = await harness(t);
  h.fake.addZone('example.com');
  h.fake.faults.rateLimit(1, 1, 'dns_records/batch');
  await h.sync([ing('a', ['a.example.com'])]);
  t.deepEqual(cnames(h.fake, 'example.com'), { 'a.example.com': TARGET });
  const batches = h.fake.requests.filter((r) => r.route === BATCH);
  t.deepEqual(
    batches.map((r) => r.status),
    [429, 200],
  );
  t.true(batches[1]!.at - batches[0]!.at >= 900, 'waited for retry-after');

  h.fake.faults.serverError(10, 503, 'dns_records/batch');
  const err = await t.throwsAsync(h.sync([ing('a', ['a.example.com', 'b.example.com'])]));
  t.true(isWarrenError(err, ErrorCode.CloudflareApi));
  t.true((err as CloudflareApiError).retryable);
  h.fake.faults.clear();
  await h.sync([ing('a', ['a.example.com', 'b.example.com'])]);
  t.deepEqual(cnames(h.fake, 'example.com'), { 'a.example.com': TARGET, 'b.example.com': TARGET });
});

test('a change the API refuses fails alone; other hosts of the same batch are created', async (t) => {
  const h = await harness(t);
  h.fake.addZone('example.com');
  await h.sync([ing('ok', ['ok1.example.com'])]);
  // Another tool adds an A record after Warren read the zone: Warren's CNAME there is refused (81053).
  h.fake.addRecord('example.com', { type: 'A', name: 'late.example.com', content: '192.0.2.7' });
  await h.sync([ing('ok', ['ok1.example.com', 'ok2.example.com', 'ok3.example.com']), ing('bad', ['late.example.com'])]);
  t.deepEqual(cnames(h.fake, 'example.com'), { 'ok1.example.com': TARGET, 'ok2.example.com': TARGET, 'ok3.example.com': TARGET });
  const failed = h.events.warnings('DnsRecordFailed');
  t.deepEqual(
    failed.map((e) => e.object.name),
    ['bad'],
  );
  t.regex(failed[0]!.message, /81053/);
  const calls = h.fake.count();
  await h.sync([ing('ok', ['ok1.example.com', 'ok2.example.com', 'ok3.example.com']), ing('bad', ['late.example.com'])]);
  t.is(h.fake.count(), calls, 'a refused change is not retried until something changes');
});

test('a host whose ownership record would be longer than 253 characters is reported, not sent', async (t) => {
  const h = await harness(t);
  h.fake.addZone('example.com');
  const long = `${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(57)}.example.com`; // 252 characters: fits, but `_warren.` + it does not
  await h.sync([ing('ok', ['ok1.example.com']), ing('bad', [long])]);
  t.deepEqual(cnames(h.fake, 'example.com'), { 'ok1.example.com': TARGET });
  t.deepEqual(
    h.events.warnings('DnsInvalidHost').map((e) => e.object.name),
    ['bad'],
  );
  t.is(h.events.warnings('DnsRecordFailed').length, 0, 'nothing the API would refuse was sent');
  t.is(h.fake.count(BATCH), 1);
});

test('record comments must be one line: Cloudflare refuses line breaks', (t) => {
  t.false(dnsConfigSchema.safeParse({ comment: 'managed\nby Warren' }).success);
  t.false(dnsConfigSchema.safeParse({ comment: 'managed\rby Warren' }).success);
  t.true(dnsConfigSchema.safeParse({ comment: 'managed by Warren (prod)' }).success);
});

test('MX, TXT, CAA and SRV records never block a CNAME, and a takeover deletes only what conflicts (A, AAAA)', async (t) => {
  const h = await harness(t, { overwriteUnmanaged: true });
  h.fake.addZone('example.com');
  h.fake.addRecord('example.com', { type: 'MX', name: 'example.com', content: 'mx.example.net', priority: 10 });
  h.fake.addRecord('example.com', { type: 'TXT', name: 'example.com', content: '"v=spf1 include:_spf.example.net -all"' });
  h.fake.addRecord('example.com', { type: 'CAA', name: 'example.com', content: '0 issue "letsencrypt.org"' });
  h.fake.addRecord('example.com', { type: 'A', name: 'mail.example.com', content: '192.0.2.25' });
  h.fake.addRecord('example.com', { type: 'MX', name: 'mail.example.com', content: 'mx.example.net', priority: 10 });
  h.fake.addRecord('example.com', { type: 'TXT', name: 'mail.example.com', content: '"v=spf1 -all"' });
  await h.sync([ing('apex', ['example.com']), ing('mail', ['mail.example.com'])]);
  t.deepEqual(cnames(h.fake, 'example.com'), { 'example.com': TARGET, 'mail.example.com': TARGET });
  const types = (name: string) =>
    h.fake
      .records('example.com')
      .filter((r) => r.name === name)
      .map((r) => r.type)
      .sort();
  t.deepEqual(types('example.com'), ['CAA', 'CNAME', 'MX', 'TXT'], 'the apex keeps its mail records');
  t.deepEqual(types('mail.example.com'), ['CNAME', 'MX', 'TXT'], 'the takeover deleted only the A record');
  t.is(h.events.warnings('DnsConflict').length, 0);
  t.deepEqual(
    h.events.events
      .filter((e) => e.reason === 'DnsRecordCreated')
      .map((e) => e.object.name)
      .sort(),
    ['apex', 'mail'],
  );
});

test("records are managed only in zones of the tunnel's account; a host elsewhere gets a Warning", async (t) => {
  const h = await harness(t);
  const mine = 'a'.repeat(32);
  h.fake.addZone('mine.example', { accountId: mine });
  h.fake.addZone('theirs.example', { accountId: 'b'.repeat(32) });
  const tunnel = h.fake.addTunnel(mine, 'prod');
  await h.sync([ing('here', ['app.mine.example']), ing('there', ['app.theirs.example'])], tunnel.id);
  t.is(h.fake.routedTunnel('app.mine.example'), tunnel.id, 'routed');
  t.deepEqual(h.fake.records('theirs.example'), [], 'nothing in a zone of another account');
  const warnings = h.events.warnings('DnsOtherAccount');
  t.deepEqual(
    warnings.map((e) => e.object.name),
    ['there'],
  );
  t.regex(warnings[0]!.message, /theirs\.example belongs to account b{32}/);
  h.fake.resetLog();
  await h.sync([ing('here', ['app.mine.example']), ing('there', ['app.theirs.example'])], tunnel.id);
  t.is(h.fake.count(), 0, "the tunnel's account is looked up once");
});

test("each zone's plan caps the batch: 200 changes on Free, 3,500 on paid plans, whatever batchSize allows", async (t) => {
  const h = await harness(t, { batchSize: 3500 });
  h.fake.addZone('free.example', { plan: 'free' });
  h.fake.addZone('paid.example', { plan: 'pro' });
  const hosts = (zone: string) => Array.from({ length: 250 }, (_, i) => `h${i}.${zone}`);
  await h.sync([ing('a', hosts('free.example')), ing('b', hosts('paid.example'))]);
  t.is(h.fake.records('free.example').length, 500);
  t.is(h.fake.records('paid.example').length, 500);
  t.is(h.fake.count(BATCH), 4, 'three batches of at most 200 on Free, one on Pro');
  t.is(h.fake.requests.filter((r) => r.route === BATCH && r.status !== 200).length, 0, 'no batch was refused');
});

test('drift is repaired after resyncInterval, and the API token never reaches logs or events', async (t) => {
  const fake = await startFakeCloudflare({ tokens: [{ value: TOKEN }] });
  t.teardown(() => fake.close());
  fake.addZone('example.com');
  let clock = 0;
  const events = new RecordingEventSink();
  const { logger, text } = capturingLogger();
  const client = fake.clients(TOKEN, { logger });
  const sync = new DnsSync({ config: dnsConfigSchema.parse({ resyncInterval: '10m' }), client, logger, events, now: () => clock });
  const table = handBuiltRouteTable([ing('a', ['a.example.com'])]);
  await sync.sync(table, TUNNEL, AbortSignal.timeout(10_000));
  const cname = fake.records('example.com').find((r) => r.type === 'CNAME')!;
  fake.editRecord('example.com', cname.id, { content: 'hijacked.example.net' });
  await sync.sync(table, TUNNEL, AbortSignal.timeout(10_000));
  t.is(cnames(fake, 'example.com')['a.example.com'], 'hijacked.example.net', 'within the interval the cache is trusted');
  clock += 10 * 60_000;
  await sync.sync(table, TUNNEL, AbortSignal.timeout(10_000));
  t.is(cnames(fake, 'example.com')['a.example.com'], TARGET, 'repaired after the interval');
  fake.faults.serverError(5, 500);
  clock += 10 * 60_000;
  await t.throwsAsync(sync.sync(table, TUNNEL, AbortSignal.timeout(10_000)));
  t.false(text().includes(TOKEN));
  t.false(JSON.stringify(events.events).includes(TOKEN));
  t.true(text().includes('DNS sync of a zone failed') || text().includes('list zones'), 'the failure was logged');
});

test('the plugin module registers under the control-plugin token with its annotation declared', (t) => {
  t.is(dnsModule.manifest.id, 'cloud.dns');
  t.is(dnsModule.manifest.kind, 'control', 'control plugins run on the leader only');
  t.false(dnsModule.manifest.enabledByDefault);
  t.deepEqual(
    dnsModule.manifest.annotations?.map((a) => a.key),
    ['dns-managed'],
  );
  t.is(registryName('_warren', '*.example.com'), '_warren._wildcard.example.com');
  t.throws(() => dnsConfigSchema.parse({ batchSize: 5000 }));
  t.throws(() => dnsConfigSchema.parse({ unknown: 1 }));
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
  registerPlugins(child, loadTestPlugins([{ module: dnsModule, config: { zones: ['example.com'] } }]));
  const controls = registeredControlPlugins(child);
  t.is(controls.length, 1);
  const [control] = controls;
  t.true(control instanceof HostedControlPlugin && control.plugin instanceof DnsPlugin);
  t.is(control!.id, 'cloud.dns');
});

test('zones of several accounts and a tunnel none of them shows: nothing is published until plugins.dns.accountId names one', async (t) => {
  const h = await harness(t);
  h.fake.addZone('one.example', { accountId: 'a'.repeat(32) });
  h.fake.addZone('two.example', { accountId: 'b'.repeat(32) });
  await h.sync([ing('x', ['app.one.example']), ing('y', ['app.two.example'])]); // TUNNEL exists in neither account
  t.deepEqual([...h.fake.records('one.example'), ...h.fake.records('two.example')], []);
  const warnings = h.events.warnings('DnsOtherAccount');
  t.deepEqual(warnings.map((e) => e.object.name).sort(), ['x', 'y']);
  t.regex(warnings[0]!.message, /plugins\.dns\.accountId/);

  const pinned = await harness(t, { accountId: 'b'.repeat(32) }, h.fake);
  h.fake.resetLog();
  await pinned.sync([ing('x', ['app.one.example']), ing('y', ['app.two.example'])]);
  t.deepEqual(cnames(h.fake, 'two.example'), { 'app.two.example': TARGET });
  t.deepEqual(h.fake.records('one.example'), []);
  t.is(h.fake.count('GET /accounts/:account/cfd_tunnel/:tunnel'), 0, 'no lookup when the account is set');
});

test('a replica that leads again reads the zone afresh: what another leader changed meanwhile is not redone or refused', async (t) => {
  const first = await harness(t);
  const second = await harness(t, {}, first.fake);
  const fake = first.fake;
  fake.addZone('example.com');
  const term = (h: Harness, n: number, ingresses: readonly HandIngress[]) =>
    h.plugin.onRoutesChanged(handBuiltRouteTable(ingresses, n), { signal: AbortSignal.timeout(60_000), tunnelId: TUNNEL, term: n });
  const web = ing('web', ['a.example.com']);
  const shop = ing('shop', ['b.example.com']);
  await term(first, 1, [web]);
  // The first replica loses the Lease; the second leads and publishes a new Ingress.
  await term(second, 1, [web, shop]);
  t.deepEqual(cnames(fake, 'example.com'), { 'a.example.com': TARGET, 'b.example.com': TARGET });
  const batches = fake.count(BATCH);
  // The first replica leads again, its cached view of the zone an hour from stale.
  await term(first, 2, [web, shop]);
  t.deepEqual(first.events.warnings(), [], 'no refused change and no false conflict');
  t.is(fake.count(BATCH), batches, 'nothing to change: the records another leader made are seen as they are');
  t.is(fake.records('example.com').length, 4, 'one CNAME and one ownership record per host');
});

test('a record deleted by hand is made again on the next sync, not refused until the zone is read again', async (t) => {
  const h = await harness(t);
  h.fake.addZone('example.com');
  const web = ing('web', ['a.example.com']);
  await h.sync([web]);
  const cname = h.fake.records('example.com').find((r) => r.type === 'CNAME')!;
  h.fake.deleteRecord('example.com', cname.id); // someone deletes the CNAME in the dashboard
  const NEW = '99999999-8888-4777-8666-555555555555';
  // The tunnel is replaced: Warren patches the record it believes is there. This sync may fail and be retried.
  await h.sync([web], NEW).catch(() => undefined);
  await h.sync([web], NEW);
  t.deepEqual(cnames(h.fake, 'example.com'), { 'a.example.com': `${NEW}.cfargotunnel.com` });
  t.deepEqual(h.events.warnings('DnsRecordFailed'), []);
});

const route = (kind: 'HTTPRoute' | 'GRPCRoute', name: string, hosts: string[]): HandIngress => ({ kind, namespace: 'default', name, hosts });

test('hosts of HTTPRoutes and GRPCRoutes get records like Ingress hosts, and their Events name their own kind', async (t) => {
  const h = await harness(t);
  h.fake.addZone('example.com');
  await h.sync([
    route('HTTPRoute', 'web', ['gw.example.com']),
    route('GRPCRoute', 'rpc', ['rpc.example.com', 'deep.er.example.com']),
    route('HTTPRoute', 'lost', ['x.nowhere.test']),
  ]);
  t.deepEqual(cnames(h.fake, 'example.com'), { 'gw.example.com': TARGET, 'rpc.example.com': TARGET, 'deep.er.example.com': TARGET });
  const subjects = (reason: string) => h.events.events.filter((e) => e.reason === reason).map((e) => `${e.object.kind} ${e.object.namespace}/${e.object.name}`);
  t.deepEqual(subjects('DnsRecordCreated').sort(), ['GRPCRoute default/rpc', 'GRPCRoute default/rpc', 'HTTPRoute default/web']);
  t.deepEqual(subjects('UniversalSslNotCovered'), ['GRPCRoute default/rpc']);
  t.deepEqual(subjects('DnsNoZone'), ['HTTPRoute default/lost']);
  t.false(
    h.events.events.some((e) => e.object.kind === 'Ingress'),
    'no Event is addressed to an Ingress',
  );
});

test('an Ingress being deleted takes only its own hosts: an HTTPRoute of the same namespace and name keeps its records', async (t) => {
  const h = await harness(t);
  h.fake.addZone('example.com');
  const ingress = ing('app', ['a.example.com']);
  const httpRoute = route('HTTPRoute', 'app', ['b.example.com']);
  await h.sync([ingress, httpRoute]);
  t.deepEqual(cnames(h.fake, 'example.com'), { 'a.example.com': TARGET, 'b.example.com': TARGET });
  await h.plugin.onIngressDeleted({ namespace: 'default', name: 'app', hosts: ['a.example.com'] }, { signal: AbortSignal.timeout(10_000), tunnelId: TUNNEL });
  t.deepEqual(cnames(h.fake, 'example.com'), { 'b.example.com': TARGET });
  // The table still lists the Ingress until its finalizer is gone; the HTTPRoute's host must not go with it.
  await h.sync([ingress, httpRoute]);
  t.deepEqual(cnames(h.fake, 'example.com'), { 'b.example.com': TARGET });
  t.true(h.fake.records('example.com').some((r) => r.name === '_warren.b.example.com'));
});

test('a host that moves from an Ingress to an HTTPRoute keeps its records: ownership does not name the kind, so nothing churns', async (t) => {
  const h = await harness(t);
  h.fake.addZone('example.com');
  await h.sync([ing('web', ['shop.example.com'])]);
  const before = h.fake.records('example.com');
  const calls = h.fake.count();
  await h.sync([route('HTTPRoute', 'web', ['shop.example.com'])]);
  t.is(h.fake.count(), calls, 'no API call');
  t.deepEqual(h.fake.records('example.com'), before);
  // The HTTPRoute goes too: its records are removed by the next sync (Gateway API routes carry no finalizer).
  await h.sync([]);
  t.deepEqual(h.fake.records('example.com'), []);
});

test('dns-managed "false" on an HTTPRoute hands its hosts off as on an Ingress; another object of the host still wants them', async (t) => {
  const h = await harness(t);
  h.fake.addZone('example.com');
  const optOut = (name: string, hosts: string[]): HandIngress => ({ ...route('HTTPRoute', name, hosts), annotations: { 'dns-managed': false } });
  await h.sync([optOut('quiet', ['quiet.example.com', 'shared.example.com']), ing('web', ['shared.example.com'])]);
  t.deepEqual(cnames(h.fake, 'example.com'), { 'shared.example.com': TARGET });
});

test('with a tunnel per Gateway, names of a Gateway’s routes point at its own tunnel, and wait while it has none', async (t) => {
  const h = await harness(t);
  h.fake.addZone('example.com');
  const G1 = '11111111-2222-4333-8444-555555555555';
  const G2 = '66666666-7777-4888-9999-aaaaaaaaaaaa';
  const base = handBuiltRouteTable([
    route('HTTPRoute', 'one', ['one.example.com', 'shared.example.com']),
    route('HTTPRoute', 'two', ['two.example.com']),
    ing('web', ['web.example.com', 'shared.example.com']),
  ]);
  const gatewayOf: Record<string, string> = { one: 'default/g1', two: 'default/g2' };
  const table = { ...base, routes: base.routes.map((r) => (r.ingress.kind ? { ...r, gateway: gatewayOf[r.ingress.name] } : r)) };
  const sync = (ids: Array<[string, string]>) => h.plugin.onRoutesChanged(table, { signal: AbortSignal.timeout(60_000), tunnelId: TUNNEL, gatewayTunnelIds: new Map(ids) });
  await sync([['default/g1', G1]]);
  t.deepEqual(cnames(h.fake, 'example.com'), {
    'one.example.com': `${G1}.cfargotunnel.com`,
    'web.example.com': TARGET,
    // Routed through the main tunnel (an Ingress) and g1's: the main tunnel keeps the name.
    'shared.example.com': TARGET,
  });
  await sync([
    ['default/g1', G1],
    ['default/g2', G2],
  ]);
  t.is(cnames(h.fake, 'example.com')['two.example.com'], `${G2}.cfargotunnel.com`, 'created once g2 has its tunnel');
});
