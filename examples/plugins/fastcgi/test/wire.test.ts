import test from 'ava';
import net from 'node:net';
import { Readable } from 'node:stream';
import { ErrorCode, type TransportProfile } from '@warren/core/plugin';
import { CgiHeadReader } from '../src/cgi-response.js';
import { FastCgiPool, type PoolLimits } from '../src/fastcgi-pool.js';
import { encodePairs, record, RecordReader, RecordType, streamRecords } from '../src/records.js';
import { poolRequest, scriptSettings } from './support/dispatch.js';

/**
 * The wire protocol against scripted FastCGI peers on loopback: what the pool sends, and how it takes malformed
 * or cut-off answers (always an error, never a complete response).
 */

const LIMITS: PoolLimits = { maxResponseHeaderBytes: 4096, maxParamsBytes: 64 * 1024, maxStderrBytes: 1024, maxUnsizedBodyBytes: 1 << 20 };
const PROFILE: TransportProfile = { scheme: 'http:', http2: 'off', connectTimeout: 2_000, keepAlive: { timeout: 5_000, maxConnections: 1 } };

interface Received {
  readonly records: Array<{ type: number; id: number; content: Buffer }>;
}

/** A peer that records what it receives and, once the request's STDIN ended, writes `answer` and maybe closes. */
async function scriptedPeer(t: { teardown(f: () => unknown): void }, answer: Buffer, close = false): Promise<{ origin: string; received: Received }> {
  const received: Received = { records: [] };
  const server = net.createServer((socket) => {
    const reader = new RecordReader({
      onRecord(type, id, content) {
        received.records.push({ type, id, content: Buffer.from(content) });
        if (type === RecordType.Stdin && content.length === 0) {
          if (close) socket.end(answer);
          else socket.write(answer);
        }
      },
    });
    socket.on('data', (c: Buffer) => reader.push(c));
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  return { origin: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, received };
}

function endRequest(protocolStatus = 0): Buffer {
  const body = Buffer.alloc(8);
  body[4] = protocolStatus;
  return record(RecordType.EndRequest, 1, body);
}

function stdout(text: string | Buffer): Buffer {
  return Buffer.concat(streamRecords(RecordType.Stdout, 1, Buffer.from(text)));
}

/** Name-value pairs decoded independently of the encoder. */
function decodePairs(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  const length = (): number => {
    if (data[i]! < 128) return data[i++]!;
    const n = data.readUInt32BE(i) & 0x7fffffff;
    i += 4;
    return n;
  };
  while (i < data.length) {
    const n = length();
    const v = length();
    out.set(data.toString('latin1', i, i + n), data.toString('latin1', i + n, i + n + v));
    i += n + v;
  }
  return out;
}

test('sends BEGIN_REQUEST (Responder, keep-conn), PARAMS with long values, an empty PARAMS, STDIN and its end', async (t) => {
  const peer = await scriptedPeer(t, Buffer.concat([stdout('Status: 204 No Content\r\n\r\n'), endRequest()]));
  const pool = new FastCgiPool(peer.origin, PROFILE, LIMITS, undefined);
  t.teardown(() => pool.destroy());
  const body = Buffer.alloc(70_000, 0x62);
  const reply = await poolRequest(pool, {
    method: 'PUT',
    path: '/a.php',
    headers: ['x-long', 'v'.repeat(300), 'proxy', 'http://evil.test:3128'],
    body,
    settings: scriptSettings('/srv'),
  });
  t.is(reply.status, 204);
  const records = peer.received.records;
  t.is(records[0]!.type, RecordType.BeginRequest);
  t.deepEqual([...records[0]!.content], [0, 1, 1, 0, 0, 0, 0, 0], 'role RESPONDER, flag KEEP_CONN');
  t.true(records.every((r) => r.id === 1));
  const params = records.filter((r) => r.type === RecordType.Params);
  t.is(params.at(-1)!.content.length, 0, 'PARAMS ends with an empty record');
  const vars = decodePairs(Buffer.concat(params.map((r) => r.content)));
  t.is(vars.get('HTTP_X_LONG'), 'v'.repeat(300), 'a value of 300 bytes uses the four-byte length');
  t.is(vars.get('REQUEST_METHOD'), 'PUT');
  t.false(vars.has('HTTP_PROXY'), 'a client Proxy header is never sent as HTTP_PROXY (httpoxy)');
  t.is(vars.get('CONTENT_LENGTH'), '70000');
  const stdin = records.filter((r) => r.type === RecordType.Stdin);
  t.true(stdin.length >= 3, 'a body above 64 KiB spans several records');
  t.is(stdin.at(-1)!.content.length, 0);
  t.deepEqual(Buffer.concat(stdin.map((r) => r.content)), body);
});

test('a STDOUT stream split anywhere (even inside CRLF) parses the same', (t) => {
  const text = 'Status: 200 OK\r\nX-A: 1\r\nX-A: 2\r\n\r\nbody';
  for (let cut = 1; cut < text.length; cut++) {
    const reader = new CgiHeadReader(4096);
    t.is(reader.push(Buffer.from(text.slice(0, cut))) === undefined, cut < text.indexOf('\r\n\r\n') + 4, `cut at ${cut}`);
    const parsed = reader.push(Buffer.from(text.slice(cut))) ?? reader.push(Buffer.alloc(0));
    t.deepEqual(parsed?.head.headers, { 'x-a': ['1', '2'] }, `cut at ${cut}`);
  }
  const lf = new CgiHeadReader(4096).push(Buffer.from('Content-Type: text/plain\n\nhi'));
  t.is(lf?.head.status, 200);
  t.is(lf?.body.toString(), 'hi');
});

test('records split into single bytes are read whole', (t) => {
  const seen: Array<[number, string]> = [];
  const reader = new RecordReader({ onRecord: (type, _id, content) => seen.push([type, content.toString()]) });
  const bytes = Buffer.concat([stdout('hello'), record(RecordType.Stderr, 1, Buffer.from('warn')), endRequest()]);
  for (const b of bytes) reader.push(Buffer.from([b]));
  t.deepEqual(seen.slice(0, 2), [
    [RecordType.Stdout, 'hello'],
    [RecordType.Stderr, 'warn'],
  ]);
  t.is(seen[2]![0], RecordType.EndRequest);
  t.is(seen.length, 3);
  t.false(reader.midRecord);
});

const MALFORMED: Array<[string, Buffer, boolean, RegExp | string]> = [
  ['a record of version 2', Buffer.from([2, 6, 0, 1, 0, 0, 0, 0]), false, /record version 2/],
  ['a record for another request id', Buffer.concat([streamRecords(RecordType.Stdout, 7, Buffer.from('x'))[0]!, Buffer.from('x'), Buffer.alloc(7)]), false, /for request 7/],
  ['an unexpected record type', record(RecordType.GetValuesResult, 1, encodePairs([['FCGI_MPXS_CONNS', '0']])), false, /unexpected record type 10/],
  ['END_REQUEST without a response head', endRequest(), false, /without a complete response head/],
  ['an END_REQUEST that refuses the role', Buffer.concat([stdout('Status: 200\r\n\r\n'), endRequest(3)]), false, /protocol status 3/],
  ['an informational Status', Buffer.concat([stdout('Status: 103 Early Hints\r\n\r\n'), endRequest()]), false, /informational/],
  ['a head line without a name', Buffer.concat([stdout('no colon here\r\n\r\n'), endRequest()]), false, /without a valid field name/],
  ['a folded head line', Buffer.concat([stdout('X-A: 1\r\n  more\r\n\r\n'), endRequest()]), false, /folded/],
  ['a head larger than the bound', Buffer.concat([stdout(`X-Big: ${'b'.repeat(5000)}\r\n\r\n`), endRequest()]), false, /exceeds 4096 bytes/],
  ['a body longer than its Content-Length', Buffer.concat([stdout('Content-Length: 2\r\n\r\nabc'), endRequest()]), false, /longer than its Content-Length/],
  [
    'a connection closed mid-record',
    Buffer.concat([stdout('Status: 200\r\n\r\nabc'), streamRecords(RecordType.Stdout, 1, Buffer.alloc(100))[0]!, Buffer.alloc(10)]),
    true,
    'UND_ERR_SOCKET',
  ],
  ['a connection closed before END_REQUEST', stdout('Status: 200\r\n\r\nabc'), true, 'UND_ERR_SOCKET'],
];

for (const [name, answer, close, expected] of MALFORMED) {
  test(`malformed or cut-off answer is an error, never a complete response: ${name}`, async (t) => {
    const peer = await scriptedPeer(t, answer, close);
    const pool = new FastCgiPool(peer.origin, PROFILE, LIMITS, undefined);
    t.teardown(() => pool.destroy());
    const reply = await poolRequest(pool, { settings: scriptSettings('/srv') });
    t.is(reply.calls.at(-1), 'error');
    t.false(reply.calls.includes('end'));
    if (typeof expected === 'string') t.is(reply.error?.code, expected);
    else {
      t.is(reply.error?.code, ErrorCode.UpstreamProtocol);
      t.regex(reply.error!.message, expected);
    }
  });
}

test('END_REQUEST OVERLOADED is the busy answer (503 with Retry-After)', async (t) => {
  const peer = await scriptedPeer(t, endRequest(2));
  const pool = new FastCgiPool(peer.origin, PROFILE, LIMITS, undefined);
  t.teardown(() => pool.destroy());
  const reply = await poolRequest(pool, { settings: scriptSettings('/srv') });
  t.is(reply.error?.code, ErrorCode.UpstreamBusy);
  t.is((reply.error as { retryAfter?: number }).retryAfter, 1);
});

/** A peer that answers the first request of each connection and closes the connection when a second one comes. */
async function oneRequestPeer(t: { teardown(f: () => unknown): void }): Promise<{ origin: string; connections: () => number }> {
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    let requests = 0;
    const reader = new RecordReader({
      onRecord(type) {
        if (type === RecordType.BeginRequest && ++requests === 2) socket.destroy();
        if (type === RecordType.Stdin && requests === 1) socket.write(Buffer.concat([stdout('Status: 200\r\n\r\nok'), endRequest()]));
      },
    });
    socket.on('data', (c: Buffer) => reader.push(c));
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  return { origin: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, connections: () => connections };
}

test('a kept connection closed under a request that can be sent again is replaced once; a streamed body is not resent', async (t) => {
  const peer = await oneRequestPeer(t);
  const pool = new FastCgiPool(peer.origin, PROFILE, LIMITS, undefined);
  t.teardown(() => pool.destroy());
  const settings = scriptSettings('/srv');
  t.is((await poolRequest(pool, { settings })).body.toString(), 'ok');
  const again = await poolRequest(pool, { settings });
  t.is(again.error, undefined);
  t.is(again.body.toString(), 'ok');
  t.is(peer.connections(), 2);
  const streamed = await poolRequest(pool, { method: 'POST', body: Buffer.from('form=1'), settings });
  t.is(streamed.status, undefined);
  t.true(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE'].includes(streamed.error?.code ?? ''), streamed.error?.code);
  t.is(peer.connections(), 2, 'a body already taken from the client is never sent twice');
});

test('a streamed body that differs from its declared length is refused (400); no byte beyond the declared length is sent', async (t) => {
  for (const declared of [2, 10]) {
    const peer = await scriptedPeer(t, Buffer.concat([stdout('Status: 200\r\n\r\n'), endRequest()]));
    const pool = new FastCgiPool(peer.origin, PROFILE, LIMITS, undefined);
    t.teardown(() => pool.destroy());
    const reply = await poolRequest(pool, {
      method: 'POST',
      headers: ['content-length', String(declared)],
      body: Readable.from([Buffer.from('ab'), Buffer.from('cde')]),
      settings: scriptSettings('/srv'),
    });
    t.is((reply.error as { status?: number } | undefined)?.status, 400, `declared ${declared}, sent 5`);
    await new Promise((r) => setTimeout(r, 50));
    const stdin = peer.received.records.filter((r) => r.type === RecordType.Stdin).reduce((n, r) => n + r.content.length, 0);
    t.true(stdin <= declared, `${stdin} STDIN bytes for a declared ${declared}`);
  }
});
