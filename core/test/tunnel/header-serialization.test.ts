import test from 'ava';
import fc from 'fast-check';
import { ErrorCode, isWarrenError } from '../../src/errors.js';
import { deserializeHeaders, isExcludedResponseHeader, serializeHeaders } from '../../src/tunnel/header-serialization.js';

test('the known-answer example of the reference serializes exactly', (t) => {
  const serialized = serializeHeaders(['Content-Type', 'text/plain', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'X-Empty', '']);
  t.is(serialized, 'Q29udGVudC1UeXBl:dGV4dC9wbGFpbg;U2V0LUNvb2tpZQ:YT0x;U2V0LUNvb2tpZQ:Yj0y;WC1FbXB0eQ:');
  t.deepEqual(deserializeHeaders(serialized), [
    ['Content-Type', 'text/plain'],
    ['Set-Cookie', 'a=1'],
    ['Set-Cookie', 'b=2'],
    ['X-Empty', ''],
  ]);
});

test('transport-internal names are dropped case-insensitively, everything else kept in order', (t) => {
  const serialized = serializeHeaders([
    ':status',
    '200',
    'CF-Int-Cloudflared-Tracing',
    'x',
    'cf-cloudflared-response-meta',
    'x',
    'Cf-Proxy-Thing',
    'x',
    'Connection',
    'Upgrade',
    'cf-ray',
    'kept',
    'Sec-WebSocket-Accept',
    's3pPLMBiTxaQ9kYGzzhZRbK+xOo=',
  ]);
  t.deepEqual(deserializeHeaders(serialized), [
    ['Connection', 'Upgrade'],
    ['cf-ray', 'kept'],
    ['Sec-WebSocket-Accept', 's3pPLMBiTxaQ9kYGzzhZRbK+xOo='],
  ]);
  t.true(isExcludedResponseHeader('CF-CLOUDFLARED-x'));
  t.false(isExcludedResponseHeader('cf-cache-status'));
  t.is(serializeHeaders([]), '');
  t.deepEqual(deserializeHeaders(''), []);
});

test('values are raw bytes: latin1 bytes round-trip exactly, non-latin1 text goes as UTF-8', (t) => {
  const latin1 = '\u00e9\u00ff\u0001 tab\tend';
  const [[, value]] = deserializeHeaders(serializeHeaders(['X-Bytes', latin1])) as [[string, string]];
  t.is(value, latin1);
  const utf8 = deserializeHeaders(serializeHeaders(['X-Text', 'snow \u2603']))[0]![1];
  t.is(Buffer.from(utf8, 'latin1').toString('utf8'), 'snow \u2603');
});

test('the reference malformed inputs are refused with a protocol error', (t) => {
  for (const bad of ['malformed data', 'bW9jawo=', 'bW9jawo=:ZGF0YQo=:bW9jawo=', '::', 'a:b:c', 'QQ=:QQ', ':dmFsdWU', 'Q:QQ']) {
    const err = t.throws(() => deserializeHeaders(bad), undefined, bad);
    t.true(isWarrenError(err, ErrorCode.TunnelProtocol), bad);
  }
  t.deepEqual(deserializeHeaders(';;QQ:QQ;'), [['A', 'A']]);
});

const headerName = fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,30}$/).filter((n) => !isExcludedResponseHeader(n));
const headerValue = fc.string({ unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)), maxLength: 64 });

test('property: serialize then deserialize returns the same pairs, order and repeats included', (t) => {
  fc.assert(
    fc.property(fc.array(fc.tuple(headerName, headerValue), { maxLength: 40 }), (pairs) => {
      const decoded = deserializeHeaders(serializeHeaders(pairs.flat()));
      t.deepEqual(decoded, pairs);
      return true;
    }),
    { numRuns: 300 },
  );
});

test('property: arbitrary input either decodes or throws a WarrenError, never anything else', (t) => {
  const alphabet = fc.constantFrom(...'ABCabc019+/=:;- \u00ff'.split(''));
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 80 }), fc.string({ unit: alphabet, maxLength: 80 })), (input) => {
      try {
        const out = deserializeHeaders(input);
        for (const [name] of out) if (name.length === 0) return false;
      } catch (err) {
        return isWarrenError(err, ErrorCode.TunnelProtocol);
      }
      return true;
    }),
    { numRuns: 1000 },
  );
  t.pass();
});

test('a set larger than any before it serializes whole, and the next small one is not polluted by it', (t) => {
  const long = 'é'.repeat(5000) + '\u{1F600}'.repeat(3000);
  const big = serializeHeaders(['X-Long', long, 'X-Short', 'a']);
  t.deepEqual(deserializeHeaders(big), [
    ['X-Long', Buffer.from(long, 'utf8').toString('latin1')],
    ['X-Short', 'a'],
  ]);
  t.is(serializeHeaders(['A', 'b']), 'QQ:Yg');
});
