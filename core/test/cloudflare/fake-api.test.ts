import test from 'ava';
import Cloudflare from 'cloudflare';
import { startFakeCloudflare } from '../../src/testing/fake-cloudflare/index.js';

const TOKEN = 'fake-api-test-token-0123456789';
const ACCOUNT = 'a'.repeat(32);

async function setup(t: import('ava').ExecutionContext, options: Parameters<typeof startFakeCloudflare>[0] = {}) {
  const fake = await startFakeCloudflare({ tokens: [{ value: TOKEN }], ...options });
  t.teardown(() => fake.close());
  const client = new Cloudflare({ apiToken: TOKEN, baseURL: fake.baseUrl, maxRetries: 0 });
  return { fake, client };
}

test('zones list pages through the SDK with result_info and honours the name filter', async (t) => {
  const { fake, client } = await setup(t);
  for (let i = 0; i < 12; i++) fake.addZone(`zone${String(i).padStart(2, '0')}.example`);
  const first = await client.zones.list({ per_page: 5 });
  t.is(first.result.length, 5);
  const info = first.result_info as Record<string, number>;
  t.like(info, { page: 1, per_page: 5, count: 5, total_count: 12, total_pages: 3 });
  const all: string[] = [];
  for await (const zone of client.zones.list({ per_page: 5 })) all.push(zone.name);
  t.is(all.length, 12);
  t.deepEqual(all, [...all].sort());
  const one = await client.zones.list({ name: 'zone03.example' });
  t.deepEqual(
    one.result.map((z) => z.name),
    ['zone03.example'],
  );
  const suffix = await client.zones.list({ name: 'ends_with:1.example' });
  t.deepEqual(
    suffix.result.map((z) => z.name),
    ['zone01.example', 'zone11.example'],
  );
  await t.throwsAsync(client.zones.list({ per_page: 51 }), { instanceOf: Cloudflare.BadRequestError });
});

test('authentication: a missing header, an unknown token and a token without access to the zone fail like the API', async (t) => {
  const fake = await startFakeCloudflare({ tokens: [{ value: TOKEN, zones: ['allowed.example'] }] });
  t.teardown(() => fake.close());
  const hidden = fake.addZone('hidden.example');
  fake.addZone('allowed.example');
  const noAuth = await fetch(`${fake.baseUrl}/zones`);
  t.is(noAuth.status, 400);
  t.like(await noAuth.json(), { success: false, errors: [{ code: 6003 }], result: null });
  const bad = new Cloudflare({ apiToken: 'wrong-token-value', baseURL: fake.baseUrl, maxRetries: 0 });
  const err = await t.throwsAsync(bad.zones.list());
  t.true(err instanceof Cloudflare.AuthenticationError);
  const client = new Cloudflare({ apiToken: TOKEN, baseURL: fake.baseUrl, maxRetries: 0 });
  t.deepEqual(
    (await client.zones.list()).result.map((z) => z.name),
    ['allowed.example'],
  );
  await t.throwsAsync(client.dns.records.list({ zone_id: hidden.id }), { instanceOf: Cloudflare.PermissionDeniedError });
});

test('DNS records: create, list with filters, overwrite, patch, delete, and validation errors', async (t) => {
  const { fake, client } = await setup(t);
  const zone = fake.addZone('example.com');
  const cname = await client.dns.records.create({ zone_id: zone.id, type: 'CNAME', name: 'app', content: 'target.example.net', proxied: true, ttl: 1 });
  t.is(cname.name, 'app.example.com', 'relative names get the zone appended');
  t.true(cname.proxied);
  await client.dns.records.create({ zone_id: zone.id, type: 'TXT', name: '_x.app.example.com', content: '"hello"', ttl: 1 });
  const listed = await client.dns.records.list({ zone_id: zone.id, type: 'CNAME', name: { exact: 'app.example.com' } });
  t.deepEqual(
    listed.result.map((r) => r.id),
    [cname.id],
  );
  const prefixed = await client.dns.records.list({ zone_id: zone.id, name: { startswith: '_x.' } });
  t.is(prefixed.result.length, 1);

  const dup = await t.throwsAsync(client.dns.records.create({ zone_id: zone.id, type: 'A', name: 'app.example.com', content: '192.0.2.1', ttl: 1 }));
  t.true(dup instanceof Cloudflare.BadRequestError);
  t.is((dup as InstanceType<typeof Cloudflare.APIError>).errors[0]?.code, 81054, 'an A record next to a CNAME');
  const badContent = await t.throwsAsync(client.dns.records.create({ zone_id: zone.id, type: 'A', name: 'v4', content: 'not-an-ip', ttl: 1 }));
  t.is((badContent as InstanceType<typeof Cloudflare.APIError>).errors[0]?.code, 9005);
  const badName = await t.throwsAsync(client.dns.records.create({ zone_id: zone.id, type: 'CNAME', name: 'bad..name', content: 'x.example.net', ttl: 1 }));
  t.is((badName as InstanceType<typeof Cloudflare.APIError>).errors[0]?.code, 1004);
  const badTtl = await t.throwsAsync(client.dns.records.create({ zone_id: zone.id, type: 'TXT', name: 't', content: 'x', ttl: 5 }));
  t.is((badTtl as InstanceType<typeof Cloudflare.APIError>).errors[0]?.code, 9021);
  const proxiedTxt = await t.throwsAsync(client.dns.records.create({ zone_id: zone.id, type: 'TXT', name: 't', content: 'x', ttl: 1, proxied: true }));
  t.is((proxiedTxt as InstanceType<typeof Cloudflare.APIError>).errors[0]?.code, 9004);

  const patched = await client.dns.records.edit(cname.id, { zone_id: zone.id, type: 'CNAME', name: 'app.example.com', content: 'other.example.net', ttl: 1 });
  t.is(patched.content, 'other.example.net');
  t.true(patched.proxied, 'PATCH keeps fields it does not mention');
  const put = await client.dns.records.update(cname.id, { zone_id: zone.id, type: 'CNAME', name: 'app.example.com', content: 'third.example.net', ttl: 1 });
  t.false(put.proxied, 'PUT replaces the whole record');
  await client.dns.records.delete(cname.id, { zone_id: zone.id });
  t.deepEqual(
    fake.records('example.com').map((r) => r.type),
    ['TXT'],
  );
  await t.throwsAsync(client.dns.records.delete(cname.id, { zone_id: zone.id }), { instanceOf: Cloudflare.NotFoundError });
});

test('DNS batch runs deletes, patches, puts, posts in one transaction and rejects the whole batch on any error', async (t) => {
  const { fake, client } = await setup(t);
  const zone = fake.addZone('example.com');
  const a = fake.addRecord('example.com', { type: 'CNAME', name: 'a', content: 'x.example.net', proxied: true });
  const b = fake.addRecord('example.com', { type: 'TXT', name: 'b', content: 'one' });
  const result = await client.dns.records.batch({
    zone_id: zone.id,
    deletes: [{ id: a.id }],
    patches: [{ id: b.id, type: 'TXT', name: 'b.example.com', content: 'two', ttl: 1 }],
    posts: [{ type: 'CNAME', name: 'a.example.com', content: 'y.example.net', proxied: true, ttl: 1 }],
  });
  t.is(result.deletes?.length, 1);
  t.is(result.posts?.[0]?.content, 'y.example.net', 'the post sees the state after the delete');
  const before = fake.records('example.com');
  const err = await t.throwsAsync(
    client.dns.records.batch({
      zone_id: zone.id,
      posts: [
        { type: 'TXT', name: 'c', content: 'fine', ttl: 1 },
        { type: 'A', name: 'a.example.com', content: '192.0.2.1', ttl: 1 },
      ],
    }),
  );
  t.true(err instanceof Cloudflare.BadRequestError);
  t.regex(err!.message, /posts\[1\]/);
  const twoBad = await t.throwsAsync(
    client.dns.records.batch({
      zone_id: zone.id,
      posts: [
        { type: 'A', name: 'a.example.com', content: '192.0.2.1', ttl: 1 },
        { type: 'A', name: 'b', content: 'not-an-address', ttl: 1 },
      ],
    }),
  );
  t.deepEqual(
    (twoBad as InstanceType<typeof Cloudflare.APIError>).errors.map((e) => e.code),
    [81054],
    'only the first failure is reported',
  );
  t.deepEqual(fake.records('example.com'), before, 'nothing of a failed batch is applied');
  const tooMany = Array.from({ length: 201 }, (_, i) => ({ type: 'TXT' as const, name: `n${i}`, content: 'x', ttl: 1 as const }));
  await t.throwsAsync(client.dns.records.batch({ zone_id: zone.id, posts: tooMany }), { instanceOf: Cloudflare.BadRequestError });
});

test('tunnels: create with a secret, list with name and is_deleted filters, get, token, delete', async (t) => {
  const { fake, client } = await setup(t);
  const secret = Buffer.alloc(32, 7).toString('base64');
  const created = await client.zeroTrust.tunnels.cloudflared.create({ account_id: ACCOUNT, name: 'prod', config_src: 'local', tunnel_secret: secret });
  t.regex(created.id!, /^[0-9a-f-]{36}$/);
  const dup = await t.throwsAsync(client.zeroTrust.tunnels.cloudflared.create({ account_id: ACCOUNT, name: 'prod', tunnel_secret: secret }));
  t.true(dup instanceof Cloudflare.ConflictError);
  const short = await t.throwsAsync(client.zeroTrust.tunnels.cloudflared.create({ account_id: ACCOUNT, name: 'x', tunnel_secret: Buffer.alloc(8).toString('base64') }));
  t.true(short instanceof Cloudflare.BadRequestError);
  const token = await client.zeroTrust.tunnels.cloudflared.token.get(created.id!, { account_id: ACCOUNT });
  const decoded = JSON.parse(Buffer.from(token, 'base64').toString()) as Record<string, string>;
  t.deepEqual(decoded, { a: ACCOUNT, t: created.id, s: secret });
  const found = await client.zeroTrust.tunnels.cloudflared.list({ account_id: ACCOUNT, name: 'prod', is_deleted: false });
  t.deepEqual(
    found.result.map((x) => x.id),
    [created.id],
  );
  await client.zeroTrust.tunnels.cloudflared.delete(created.id!, { account_id: ACCOUNT });
  t.is((await client.zeroTrust.tunnels.cloudflared.list({ account_id: ACCOUNT, name: 'prod', is_deleted: false })).result.length, 0);
  t.truthy((await client.zeroTrust.tunnels.cloudflared.get(created.id!, { account_id: ACCOUNT })).deleted_at);
  t.is(fake.tunnels(ACCOUNT).length, 1);
});

test('rulesets: entrypoint 404, create, rule create/edit/delete keep other rules, expressions are validated', async (t) => {
  const { fake, client } = await setup(t);
  const zone = fake.addZone('example.com');
  const phase = 'http_request_firewall_custom';
  await t.throwsAsync(client.rulesets.phases.get(phase, { zone_id: zone.id }), { instanceOf: Cloudflare.NotFoundError });
  const foreign = fake.addRule('example.com', { expression: 'http.request.uri.path eq "/admin"', action: 'block', ref: 'someone-else' });
  const set = await client.rulesets.phases.get(phase, { zone_id: zone.id });
  t.is(set.rules.length, 1);
  type Set = { rules: Array<{ id?: string; ref?: string; action?: string; expression?: string }> };
  const afterCreate = (await client.rulesets.rules.create(set.id, {
    zone_id: zone.id,
    action: 'block',
    expression: '(lower(http.host) in {"a.example.com"}) and not ip.src in {192.0.2.0/24 2001:db8::/32}',
    ref: 'mine',
    description: 'mine',
  })) as Set;
  t.deepEqual(
    afterCreate.rules.map((r) => r.ref),
    ['someone-else', 'mine'],
  );
  const mine = afterCreate.rules[1]!;
  const edited = (await client.rulesets.rules.edit(mine.id!, {
    ruleset_id: set.id,
    zone_id: zone.id,
    action: 'managed_challenge',
    expression: mine.expression!,
    ref: 'mine',
  })) as Set;
  t.is(edited.rules[1]?.action, 'managed_challenge');
  t.is(edited.rules[0]?.expression, foreign.expression);
  for (const bad of ['ip.src in {10.0.0.1/8}', 'http.host eq', 'nosuch.field eq "x"', 'http.host matches "^a"', 'ip.src in {}']) {
    const err = await t.throwsAsync(client.rulesets.rules.create(set.id, { zone_id: zone.id, action: 'block', expression: bad, ref: `bad-${bad.length}` }));
    t.true(err instanceof Cloudflare.BadRequestError, bad);
  }
  await t.throwsAsync(client.rulesets.create({ zone_id: zone.id, kind: 'zone', phase, name: 'again', rules: [] }), { instanceOf: Cloudflare.BadRequestError });
  const afterDelete = (await client.rulesets.rules.delete(mine.id!, { ruleset_id: set.id, zone_id: zone.id })) as Set;
  t.deepEqual(
    afterDelete.rules.map((r) => r.ref),
    ['someone-else'],
  );
});

test('faults: 429 carries retry-after, 5xx bursts, and the request log records routes without secrets', async (t) => {
  const { fake } = await setup(t);
  fake.addZone('example.com');
  fake.faults.rateLimit(1, 2);
  const limited = await fetch(`${fake.baseUrl}/zones`, { headers: { authorization: `Bearer ${TOKEN}` } });
  t.is(limited.status, 429);
  t.is(limited.headers.get('retry-after'), '2');
  fake.faults.serverError(2, 503);
  t.is((await fetch(`${fake.baseUrl}/zones`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 503);
  t.is((await fetch(`${fake.baseUrl}/zones`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 503);
  t.is((await fetch(`${fake.baseUrl}/zones`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
  t.is(fake.count('GET /zones'), 4);
  t.false(JSON.stringify(fake.requests).includes(TOKEN));
});

test('the global rate limit answers 429 once a token used up its window', async (t) => {
  const { fake } = await setup(t, { rateLimit: { requests: 3, windowMs: 60_000 } });
  const statuses: number[] = [];
  for (let i = 0; i < 5; i++) statuses.push((await fetch(`${fake.baseUrl}/zones`, { headers: { authorization: `Bearer ${TOKEN}` } })).status);
  t.deepEqual(statuses, [200, 200, 200, 429, 429]);
});

test('same-name rules: a CNAME clashes only with A, AAAA and CNAME; TXT, MX, CAA and SRV may share its name', async (t) => {
  const { fake, client } = await setup(t);
  const zone = fake.addZone('example.com');
  const code = async (body: Parameters<typeof client.dns.records.create>[0]) =>
    ((await t.throwsAsync(client.dns.records.create(body))) as InstanceType<typeof Cloudflare.APIError>).errors[0]?.code;
  await client.dns.records.create({ zone_id: zone.id, type: 'MX', name: 'example.com', content: 'mx.example.net', priority: 10, ttl: 1 });
  await client.dns.records.create({ zone_id: zone.id, type: 'TXT', name: 'example.com', content: '"v=spf1 -all"', ttl: 1 });
  await client.dns.records.create({ zone_id: zone.id, type: 'CNAME', name: 'example.com', content: 'apex.example.net', proxied: true, ttl: 1 });
  t.deepEqual(
    fake.records('example.com').map((r) => r.type),
    ['CNAME', 'MX', 'TXT'],
    'an apex CNAME next to MX and SPF',
  );
  fake.addRecord('example.com', { type: 'A', name: 'v4', content: '192.0.2.1' });
  t.is(await code({ zone_id: zone.id, type: 'CNAME', name: 'v4', content: 'x.example.net', ttl: 1 }), 81053);
  t.is(await code({ zone_id: zone.id, type: 'CNAME', name: 'example.com', content: 'other.example.net', ttl: 1 }), 81053);
  t.is(await code({ zone_id: zone.id, type: 'AAAA', name: 'example.com', content: '2001:db8::1', ttl: 1 }), 81054);
  t.is(await code({ zone_id: zone.id, type: 'TXT', name: 'example.com', content: '"v=spf1 -all"', ttl: 1 }), 81058);
  t.is(await code({ zone_id: zone.id, type: 'TXT', name: 'c', content: 'x', comment: 'two\nlines', ttl: 1 }), 1004);
});

test('tunnels: live connectors reconnect after a connection cleanup, so only cascade deletes; a new secret rotates the token', async (t) => {
  const { fake, client } = await setup(t);
  const tunnel = fake.addTunnel(ACCOUNT, 'busy');
  fake.connectTunnel(tunnel.id, 2);
  await client.zeroTrust.tunnels.cloudflared.connections.delete(tunnel.id, { account_id: ACCOUNT });
  const refused = await t.throwsAsync(client.zeroTrust.tunnels.cloudflared.delete(tunnel.id, { account_id: ACCOUNT }));
  t.is((refused as InstanceType<typeof Cloudflare.APIError>).errors[0]?.code, 1022, 'the connectors came back');
  await client.zeroTrust.tunnels.cloudflared.delete(tunnel.id, { account_id: ACCOUNT }, { query: { cascade: true } });
  t.truthy(fake.tunnels(ACCOUNT)[0]?.deletedAt);

  const other = fake.addTunnel(ACCOUNT, 'rotating');
  const tokenSecret = async () =>
    JSON.parse(Buffer.from(await client.zeroTrust.tunnels.cloudflared.token.get(other.id, { account_id: ACCOUNT }), 'base64').toString()).s as string;
  const before = await tokenSecret();
  const rotated = fake.rotateTunnelSecret(other.id);
  t.not(await tokenSecret(), before);
  t.is(await tokenSecret(), rotated.toString('base64'));
  const chosen = Buffer.alloc(32, 9).toString('base64');
  await client.zeroTrust.tunnels.cloudflared.edit(other.id, { account_id: ACCOUNT, tunnel_secret: chosen });
  t.is(await tokenSecret(), chosen);
});

test("a tunnel CNAME routes only in a zone of the tunnel's own account", async (t) => {
  const { fake, client } = await setup(t);
  const mine = fake.addZone('mine.example', { accountId: ACCOUNT });
  const theirs = fake.addZone('theirs.example', { accountId: 'b'.repeat(32) });
  const tunnel = fake.addTunnel(ACCOUNT, 'routes');
  for (const zone of [mine, theirs]) {
    await client.dns.records.create({ zone_id: zone.id, type: 'CNAME', name: `app.${zone.name}`, content: `${tunnel.id}.cfargotunnel.com`, proxied: true, ttl: 1 });
  }
  t.is(fake.routedTunnel('app.mine.example'), tunnel.id);
  t.is(fake.routedTunnel('app.theirs.example'), undefined, 'accepted by the API, routed nowhere');
});

test("rulesets: create needs rules; the custom phase holds 5 / 20 / 100 / 1,000 rules by plan, counting everyone's", async (t) => {
  const { fake, client } = await setup(t);
  const zone = fake.addZone('example.com');
  const phase = 'http_request_firewall_custom';
  await t.throwsAsync(client.rulesets.create({ zone_id: zone.id, kind: 'zone', phase, name: 'default' }), { instanceOf: Cloudflare.BadRequestError });
  for (let i = 0; i < 4; i++) fake.addRule('example.com', { expression: `ip.src in {192.0.2.${i}}`, action: 'block', ref: `person-${i}` });
  const set = await client.rulesets.phases.get(phase, { zone_id: zone.id });
  await client.rulesets.rules.create(set.id, { zone_id: zone.id, action: 'block', expression: 'ip.src in {198.51.100.1}', ref: 'fifth' });
  const sixth = { zone_id: zone.id, action: 'block' as const, expression: 'ip.src in {198.51.100.2}', ref: 'sixth' };
  await t.throwsAsync(client.rulesets.rules.create(set.id, sixth), { instanceOf: Cloudflare.BadRequestError });
  t.throws(() => fake.addRule('example.com', { expression: 'ip.src in {198.51.100.3}', action: 'block' }), { message: /maximum number of rules/ });
  fake.setPlan('example.com', 'pro');
  await client.rulesets.rules.create(set.id, sixth);
  t.is(fake.ruleset('example.com')!.rules.length, 6);
});

test('the rate limit counts per user across tokens and blocks a user over it for the block time', async (t) => {
  const fake = await startFakeCloudflare({
    tokens: [
      { value: TOKEN, user: 'ops' },
      { value: `${TOKEN}-2`, user: 'ops' },
      { value: `${TOKEN}-3`, user: 'other' },
    ],
    rateLimit: { requests: 3, windowMs: 3_000, blockMs: 60_000 },
  });
  t.teardown(() => fake.close());
  const get = async (token: string) => (await fetch(`${fake.baseUrl}/zones`, { headers: { authorization: `Bearer ${token}` } })).status;
  const statuses = [await get(TOKEN), await get(`${TOKEN}-2`), await get(TOKEN), await get(`${TOKEN}-2`)];
  t.deepEqual(statuses, [200, 200, 200, 429], 'two tokens of one user share the limit');
  t.is(await get(`${TOKEN}-3`), 200, 'another user is not affected');
  await new Promise((resolve) => setTimeout(resolve, 3_100));
  const blocked = await fetch(`${fake.baseUrl}/zones`, { headers: { authorization: `Bearer ${TOKEN}` } });
  t.is(blocked.status, 429, 'still blocked after the window passed');
  t.true(Number(blocked.headers.get('retry-after')) > 50);
});
