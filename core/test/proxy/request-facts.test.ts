/**
 * The pipeline hands the route table the request facts that route conditions are checked against: the method, the
 * flat header list with lower-case names, and the raw query without `?`. A table that picks its route by those facts
 * sends each request to the origin the facts call for.
 */
import test from 'ava';
import http from 'node:http';
import { headerValue, lowerCase } from '../../src/model/exchange.js';
import type { RequestFacts, RouteTable } from '../../src/routes/types.js';
import { startOrigin, startProxyHarness, testRoute, testRouteTable } from '../../src/testing/index.js';

function send(url: string, method: string, path: string, headers: Record<string, string>): Promise<{ status: number; origin: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}${path}`, { method, headers: { host: 'app.example.com', ...headers }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, origin: res.statusCode === 200 ? (JSON.parse(body) as { origin: string }).origin : '' }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('the route table receives method, lower-case headers and the raw query of each request', async (t) => {
  const plain = await startOrigin();
  t.teardown(() => plain.close());
  const special = await startOrigin();
  t.teardown(() => special.close());
  const base = testRouteTable([testRoute({ host: 'app.example.com', endpoints: [plain.key] })]);
  const chosen = testRoute({ host: 'app.example.com', endpoints: [special.key] });
  const seen: Array<RequestFacts | undefined> = [];
  const table: RouteTable = {
    ...base,
    match(host, path, request) {
      seen.push(request && { method: request.method, headers: [...request.headers], query: request.query });
      const wanted = request?.method === 'PUT' && headerValue(request.headers, 'x-version') === 'v2' && request.query === 'a=1&b=%20two';
      return wanted ? chosen : base.match(host, path);
    },
  };
  const proxy = await startProxyHarness({ table });
  t.teardown(() => proxy.close());

  const hit = await send(proxy.url, 'PUT', '/x?a=1&b=%20two', { 'X-Version': 'v2' });
  t.is(hit.status, 200);
  t.is(hit.origin, special.key, 'the facts picked the conditional route');
  const facts = seen.at(-1)!;
  t.is(facts.method, 'PUT');
  t.is(facts.query, 'a=1&b=%20two', 'raw query, without "?"');
  t.is(headerValue(facts.headers, 'x-version'), 'v2');
  t.true(
    facts.headers.every((v, i) => i % 2 === 1 || v === v.toLowerCase()),
    'header names are lower-case',
  );

  for (const [method, path, headers] of [
    ['GET', '/x?a=1&b=%20two', { 'x-version': 'v2' }],
    ['PUT', '/x?a=1', { 'x-version': 'v2' }],
    ['PUT', '/x?a=1&b=%20two', { 'x-version': 'v1' }],
  ] as const) {
    const miss = await send(proxy.url, method, path, headers);
    t.is(miss.origin, plain.key, `${method} ${path} ${JSON.stringify(headers)} falls to the plain route`);
  }
  const none = await send(proxy.url, 'GET', '/x', {});
  t.is(none.status, 200);
  t.is(seen.at(-1)!.query, '', 'no query: empty string');
});

test('lowerCase is toLowerCase for every kind of name, letters outside ASCII included', (t) => {
  for (const text of ['', 'content-type', 'Content-Type', 'X-FORWARDED-FOR', 'cf-ray', 'a1-b2_c3', 'İstanbul', 'ÀÉÎ', 'café', 'ΣΑΣ', 'x-\u00c0', 'Z']) {
    t.is(lowerCase(text), text.toLowerCase(), text);
  }
  t.is(headerValue(['Content-Type', 'text/plain', 'content-type', 'x'], 'content-type'), 'text/plain');
});
