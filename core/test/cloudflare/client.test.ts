import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { parseConfig } from '../../src/config/load.js';
import { RequestBudget, callCloudflare, createCloudflareClientFactory, matchZone, ZoneDirectory, CloudflareApiError } from '../../src/cloudflare/index.js';
import { ErrorCode, isWarrenError } from '../../src/errors.js';
import { capturingLogger, startFakeCloudflare } from '../../src/testing/index.js';

const TOKEN = 'client-test-token-SECRET-abcdef';

test('the request budget never grants more than `requests` in a window and serves waiters in order', async (t) => {
  let clock = 0;
  const budget = new RequestBudget({ requests: 10, windowMs: 1000, burst: 4, now: () => clock });
  for (let i = 0; i < 4; i++) await budget.acquire();
  let granted = false;
  const next = budget.acquire().then(() => (granted = true));
  await new Promise((r) => setTimeout(r, 20));
  t.false(granted, 'the burst is used up and no time passed');
  clock += 1000 / 6; // refill rate is (10 - 4) per 1000 ms
  await next;
  t.true(granted);
  t.is(budget.granted, 5);
  budget.pauseFor(500);
  const controller = new AbortController();
  const aborted = budget.acquire(controller.signal);
  controller.abort();
  await t.throwsAsync(aborted);
});

test('every SDK client of a factory shares the budget; 429 pauses it and the SDK retries after retry-after', async (t) => {
  const fake = await startFakeCloudflare({ tokens: [{ value: TOKEN }] });
  t.teardown(() => fake.close());
  fake.addZone('example.com');
  const registry = new Registry();
  const { logger, text } = capturingLogger();
  const config = parseConfig({ cloudflare: { apiBaseUrl: fake.baseUrl, rateLimit: { requests: 1200, window: '5m', burst: 100 } } }).cloudflare;
  const factory = createCloudflareClientFactory({ config, logger, env: { CLOUDFLARE_API_TOKEN: TOKEN }, registry });
  fake.faults.rateLimit(1, 1);
  const started = Date.now();
  const zones = await factory().zones.list();
  t.is(zones.result.length, 1);
  t.true(Date.now() - started >= 900, 'the retry waited for retry-after');
  t.is(fake.count('GET /zones'), 2);
  t.is(factory.budget.granted, 2);
  t.is(factory(), factory(), 'the client is reused while the token is unchanged');
  const metric = await registry.getSingleMetricAsString('warren_cloudflare_api_requests_total');
  t.regex(metric, /status="429"} 1/);
  t.regex(metric, /status="200"} 1/);
  t.false(text().includes(TOKEN));
});

test('the token file is read on each factory call, and a missing token is a clear configuration error', async (t) => {
  const fake = await startFakeCloudflare({ tokens: [{ value: TOKEN }, { value: `${TOKEN}-rotated` }] });
  t.teardown(() => fake.close());
  const dir = mkdtempSync(join(tmpdir(), 'warren-token-'));
  const file = join(dir, 'token');
  writeFileSync(file, TOKEN);
  const { logger } = capturingLogger();
  const config = parseConfig({ cloudflare: { apiBaseUrl: fake.baseUrl, apiTokenFile: file } }).cloudflare;
  const factory = createCloudflareClientFactory({ config, logger, env: {} });
  const before = factory();
  writeFileSync(file, `${TOKEN}-rotated\n`);
  t.not(factory(), before);
  await t.notThrowsAsync(factory().zones.list());
  const none = createCloudflareClientFactory({ config: parseConfig({}).cloudflare, logger, env: {} });
  const err = t.throws(() => none());
  t.true(isWarrenError(err, ErrorCode.ConfigInvalid));
  t.regex(err!.message, /cloudflare\.apiTokenFile or the environment variable CLOUDFLARE_API_TOKEN/);
});

test('API failures become CloudflareApiError with status, codes and retryability, without the token', async (t) => {
  const fake = await startFakeCloudflare({ tokens: [{ value: TOKEN }] });
  t.teardown(() => fake.close());
  const zone = fake.addZone('example.com');
  const factory = fake.clients(TOKEN, { logger: capturingLogger().logger, maxRetries: 0 });
  const bad = await t.throwsAsync(callCloudflare('create record', () => factory().dns.records.create({ zone_id: zone.id, type: 'A', name: 'x', content: 'nope', ttl: 1 })));
  t.true(bad instanceof CloudflareApiError);
  const e = bad as CloudflareApiError;
  t.is(e.httpStatus, 400);
  t.true(e.hasCode(9005));
  t.false(e.retryable);
  t.true(e.terminal);
  t.regex(e.message, /create record failed: HTTP 400: 9005/);
  fake.faults.serverError(1, 502);
  const down = (await t.throwsAsync(callCloudflare('list zones', () => factory().zones.list()))) as CloudflareApiError;
  t.true(down.retryable);
  t.false(down.message.includes(TOKEN));
});

test('zones: listing is paged and cached, allow-listed, and hosts match the longest suffix', async (t) => {
  const fake = await startFakeCloudflare({ tokens: [{ value: TOKEN }] });
  t.teardown(() => fake.close());
  for (let i = 0; i < 60; i++) fake.addZone(`filler${i}.test`);
  fake.addZone('example.com');
  fake.addZone('sub.example.com');
  fake.addZone('moved.example', { status: 'moved' });
  const factory = fake.clients(TOKEN, { logger: capturingLogger().logger });
  let clock = 0;
  const directory = new ZoneDirectory({ client: factory, ttlMs: 1000, now: () => clock });
  const zones = await directory.zones();
  t.is(zones.length, 62);
  t.is(fake.count('GET /zones'), 2, 'two pages of 50, no empty third page');
  t.is((await directory.zoneFor('a.b.sub.example.com'))?.name, 'sub.example.com');
  t.is((await directory.zoneFor('*.example.com'))?.name, 'example.com');
  t.is((await directory.zoneFor('example.com'))?.name, 'example.com');
  t.is(await directory.zoneFor('notexample.com'), undefined);
  t.is(await directory.zoneFor('x.moved.example'), undefined);
  t.is(fake.count('GET /zones'), 2, 'cached');
  clock += 1000;
  await directory.zones();
  t.is(fake.count('GET /zones'), 4, 'listed again after the TTL');
  const allowed = new ZoneDirectory({ client: factory, ttlMs: 1000, allow: ['example.com', 'absent.example'] });
  t.deepEqual(
    (await allowed.zones()).map((z) => z.name),
    ['example.com'],
  );
  t.deepEqual(allowed.missingAllowed, ['absent.example']);
  t.is(
    matchZone('x.sub.example.com', [
      { id: '1', name: 'example.com' },
      { id: '2', name: 'sub.example.com' },
    ])?.id,
    '2',
  );
});

test('a 429 without retry-after pauses every caller for the five minutes Cloudflare blocks a user, not a few seconds', async (t) => {
  let clock = 1_000_000;
  const budget = new RequestBudget({ requests: 1200, windowMs: 300_000, burst: 100, now: () => clock });
  const { logger } = capturingLogger();
  const config = parseConfig({ cloudflare: { apiBaseUrl: 'http://127.0.0.1:9/client/v4' } }).cloudflare;
  const limited = async () =>
    new Response(JSON.stringify({ success: false, errors: [{ code: 10000, message: 'Rate limited' }], messages: [], result: null }), {
      status: 429,
      headers: { 'content-type': 'application/json' },
    });
  const factory = createCloudflareClientFactory({ config, logger, env: { CLOUDFLARE_API_TOKEN: TOKEN }, budget, fetch: limited, maxRetries: 0 });
  await t.throwsAsync(factory().zones.list());
  clock += 60_000;
  await t.throwsAsync(budget.acquire(AbortSignal.timeout(50)), undefined, 'still paused a minute later');
  clock += 241_000;
  await budget.acquire(AbortSignal.timeout(1_000));
  t.pass('free again after five minutes');
});
