import test from 'ava';
import fc from 'fast-check';
import { isWarrenError } from '../../src/errors.js';
import { downstreamResponseHeaders, upstreamRequestHeaders, validateRequestHead } from '../../src/proxy/headers.js';
import type { RawHeaders, RequestHead } from '../../src/proxy/exchange.js';
import { runExchange, startOrigin, startProxyHarness, testRoute, testRouteTable } from '../../src/testing/index.js';

const limits = { maxHeaderBytes: 65_536, maxRequestHeaders: 256 };
const head = (headers: RawHeaders, extra: Partial<RequestHead> = {}): RequestHead => ({
  method: 'POST',
  scheme: 'https',
  authority: 'a.test',
  path: '/',
  headers,
  contentLength: undefined,
  ...extra,
});

const smuggling: Array<[string, RawHeaders, RegExp]> = [
  ['two different content-length values', ['content-length', '5', 'content-length', '6'], /conflicting content-length values 5 and 6/],
  ['a content-length list with different values', ['content-length', '5, 7'], /conflicting content-length/],
  ['content-length together with transfer-encoding', ['content-length', '5', 'transfer-encoding', 'chunked'], /both content-length and transfer-encoding/],
  ['a transfer-encoding that does not end in chunked', ['transfer-encoding', 'chunked, gzip'], /must end with "chunked"/],
  ['a non-numeric content-length', ['content-length', '5x'], /"content-length" value "5x" is not a number/],
  ['a header value with a line feed', ['x-evil', 'a\r\nx-injected: 1'], /"x-evil" has a value with invalid characters/],
  ['a header value with NUL', ['x-nul', 'a\u0000b'], /"x-nul" has a value with invalid characters/],
  ['a header name with a space', ['bad name', 'v'], /header name "bad name" contains invalid characters/],
  ['a header name with a colon', ['x:y', 'v'], /header name "x:y" contains invalid characters/],
];

for (const [what, headers, message] of smuggling) {
  test(`rejects ${what} with 400`, async (t) => {
    const origin = await startOrigin();
    const proxy = await startProxyHarness({ table: testRouteTable([testRoute({ endpoints: [origin.key] })]) });
    t.teardown(() => Promise.all([proxy.close(), origin.close()]));
    const result = await runExchange(proxy.pipeline, { method: 'POST', headers, body: 'hello', contentLength: undefined });
    t.is(result.failure?.status, 400);
    t.regex(result.failure!.message, message);
    t.is(origin.requests, 0, 'nothing reached the upstream');
  });
}

test('identical repeated content-length values are accepted and sent once', (t) => {
  const framing = validateRequestHead(head(['content-length', '5', 'content-length', '5']), limits);
  t.is(framing.contentLength, 5);
  const out = upstreamRequestHeaders(head(['content-length', '5', 'content-length', '5']), {
    preserveHost: true,
    contentLength: framing.sendLength,
  });
  t.is(out.filter((v, i) => i % 2 === 0 && v === 'content-length').length, 1);
});

test('the header-count limit counts fields, not list entries', (t) => {
  const fields = (n: number): string[] => Array.from({ length: n }, (_, i) => [`x-h${i}`, 'v']).flat();
  const at = { maxHeaderBytes: 65_536, maxRequestHeaders: 20 };
  t.notThrows(() => validateRequestHead(head(fields(20)), at), 'exactly the limit passes');
  const err = t.throws(() => validateRequestHead(head(fields(21)), at));
  t.true(isWarrenError(err) && err.status === 431);
  t.regex(err!.message, /request has 21 header fields; at most 20/);
});

test('rejects invalid methods and paths', (t) => {
  for (const [method, path] of [
    ['GE T', '/'],
    ['GET', 'relative'],
    ['GET', '/a b'],
    ['GET', '/a\u0001'],
    ['GET', '*'],
  ]) {
    const err = t.throws(() => validateRequestHead(head([], { method: method!, path: path! }), limits));
    t.true(isWarrenError(err) && err.status === 400, `${method} ${path}`);
  }
  t.notThrows(() => validateRequestHead(head([], { method: 'OPTIONS', path: '*' }), limits));
});

test('core never sends TE upstream: a protocol plugin that needs te: trailers puts it back itself', (t) => {
  for (const te of ['trailers, deflate', 'trailers']) {
    const h = head(['te', te, 'content-type', 'application/grpc']);
    const out = upstreamRequestHeaders(h, { preserveHost: true, contentLength: undefined });
    t.deepEqual(out.slice(0, 4), ['host', 'a.test', 'content-type', 'application/grpc'], te);
    t.false(out.includes('te'), te);
  }
});

test('response hop-by-hop fields are dropped except what a 101 needs', (t) => {
  const parsed = { connection: 'upgrade', upgrade: 'websocket', 'keep-alive': 'x', 'sec-websocket-accept': 'abc', 'transfer-encoding': 'chunked' };
  t.deepEqual(downstreamResponseHeaders(null, parsed, 101), ['connection', 'upgrade', 'upgrade', 'websocket', 'sec-websocket-accept', 'abc']);
  t.deepEqual(downstreamResponseHeaders(null, parsed, 200), ['sec-websocket-accept', 'abc']);
});

test('a response whose Connection is only keep-alive loses the same fields as one that names more', (t) => {
  for (const connection of ['keep-alive', 'Keep-Alive']) {
    const parsed = { connection, 'keep-alive': 'timeout=5', 'x-hop': '1', 'content-type': 'text/plain' };
    t.deepEqual(downstreamResponseHeaders(null, parsed, 200), ['x-hop', '1', 'content-type', 'text/plain'], connection);
    t.deepEqual(downstreamResponseHeaders(null, { ...parsed, connection: `${connection}, X-Hop` }, 200), ['content-type', 'text/plain'], connection);
  }
});

test('response field names keep the spelling the origin sent: the first capitalised one of each name, whatever the order, repeats or interceptors', (t) => {
  // What the origin sends: names in varied case, repeated, in any order; values.
  const names = [
    'content-type',
    'Content-Type',
    'CONTENT-TYPE',
    'set-cookie',
    'Set-Cookie',
    'X-Trace',
    'x-trace',
    'Connection',
    'keep-alive',
    'Keep-Alive',
    'Trailer',
    '123',
    'Upgrade',
    'x-hop',
    'X-Hop',
  ];
  const field = fc.tuple(fc.constantFrom(...names), fc.string({ maxLength: 4 }));
  fc.assert(
    fc.property(
      fc.array(field, { maxLength: 40 }),
      fc.option(fc.constantFrom(...names.map((n) => n.toLowerCase()))),
      fc.option(fc.constantFrom('X-Added', 'content-type', '7')),
      fc.constantFrom(200, 101),
      (fields, deleted, added, status) => {
        const raw = fields.flatMap(([n, v]) => [Buffer.from(n, 'latin1'), Buffer.from(v, 'latin1')]);
        // Parsed as the client library does: lower-case keys in first-occurrence order, repeats as arrays.
        const parsed: Record<string, string | string[]> = {};
        for (const [n, v] of fields) {
          const key = n.toLowerCase();
          const seen = parsed[key];
          parsed[key] = seen === undefined ? v : Array.isArray(seen) ? [...seen, v] : [seen, v];
        }
        // An interceptor may delete fields and add (or move to the end) others.
        if (deleted) delete parsed[deleted];
        if (added) {
          delete parsed[added];
          parsed[added] = 'i';
        }
        const expected = referenceResponseHeaders(raw, parsed, status);
        const got = downstreamResponseHeaders(raw, parsed, status);
        if (JSON.stringify(got) !== JSON.stringify(expected)) t.log({ fields, deleted, added, status, got, expected });
        return JSON.stringify(got) === JSON.stringify(expected);
      },
    ),
    { numRuns: 2_000 },
  );
  t.pass();
});

/** The conversion as specified: every raw name decoded, the first capitalised spelling of each name kept in a map. */
function referenceResponseHeaders(raw: readonly Buffer[], parsed: Record<string, string | string[]>, status: number): string[] {
  const keepUpgrade = status === 101;
  const hop = new Set(['connection', 'keep-alive', 'te', 'transfer-encoding', 'upgrade', 'proxy-connection', 'trailer']);
  const named = new Set<string>();
  const connection = parsed.connection;
  if (connection !== undefined && !keepUpgrade) for (const token of String(connection).split(',')) if (token.trim()) named.add(token.trim().toLowerCase());
  const spelling = new Map<string, string>();
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1');
    if (name !== name.toLowerCase() && !spelling.has(name.toLowerCase())) spelling.set(name.toLowerCase(), name);
  }
  const out: string[] = [];
  for (const name in parsed) {
    const value = parsed[name]!;
    const lower = name.toLowerCase();
    const drop = keepUpgrade ? ['keep-alive', 'transfer-encoding', 'proxy-connection', 'te', 'trailer'].includes(lower) : hop.has(lower);
    if (drop || named.has(lower)) continue;
    const shown = spelling.get(lower) ?? name;
    for (const v of Array.isArray(value) ? value : [value]) out.push(shown, v);
  }
  return out;
}

test('garbage request heads never throw anything but a 400/431 WarrenError', (t) => {
  const text = fc.string({ unit: 'binary', maxLength: 40 });
  fc.assert(
    fc.property(fc.array(fc.tuple(text, text), { maxLength: 30 }), text, text, (headers, method, path) => {
      try {
        const h = head(headers.flat(), { method, path });
        const framing = validateRequestHead(h, { maxHeaderBytes: 600, maxRequestHeaders: 20 });
        const out = upstreamRequestHeaders(h, { preserveHost: true, contentLength: framing.sendLength });
        return out.length % 2 === 0;
      } catch (err) {
        return isWarrenError(err) && (err.status === 400 || err.status === 431);
      }
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test('the request authority must be a host with an optional port', (t) => {
  for (const authority of ['a.test:80, b.test', 'a.test:@b.test', 'user@a.test', 'a.test/x', 'a.test:123456', '[::1', 'a test', 'a.test:80:81']) {
    const err = t.throws(() => validateRequestHead(head([], { method: 'GET', authority }), limits), undefined, authority);
    t.true(isWarrenError(err) && err.status === 400, authority);
  }
  for (const authority of ['', 'a.test', 'A.Test.', 'a.test:8080', 'a.test:', '127.0.0.1:80', '[::1]:443', '[2001:db8::7]', 'my_svc.ns']) {
    t.notThrows(() => validateRequestHead(head([], { method: 'GET', authority }), limits), authority);
  }
});
