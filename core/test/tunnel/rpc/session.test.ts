import test from 'ava';
import { pino } from 'pino';
import { ErrorCode, isWarrenError } from '../../../src/errors.js';
import { msToNs, nsToMs, RegistrationClient, serveRegistration, type RegistrationResult } from '../../../src/tunnel/rpc/index.js';
import { controlStream, RecordingHandler, REGISTERED, request, session } from './helpers.js';

test('registration succeeds: request arrives intact, details come back, both questions are finished', async (t) => {
  const { client, server, handler } = session(t);
  const result = await client.registerConnection(request());
  t.deepEqual(result, REGISTERED);
  t.deepEqual(handler.requests, [request()]);
  t.deepEqual(server.events.registrations(), [request()]);
  await server.events.waitFor((e) => e.type === 'finish' && e.questionId === 1);
  t.deepEqual(server.events.sequence(), ['bootstrap', 'call:registerConnection', 'finish:0', 'finish:1']);
  t.true(server.events.ofType('finish').every((f) => !f.releaseResultCaps));
  const call = server.events.calls('registerConnection')[0]!;
  t.deepEqual(call.target, { kind: 'promisedAnswer', questionId: 0, transform: [] });
  t.is(call.interfaceId, 0xf71695ec7fe85497n);
  t.is(client.importedCapabilityId, 0);
});

const refusals: [string, RegistrationResult][] = [
  ['retryable with retryAfter', { ok: false, error: { cause: 'Unauthorized: try again', retryAfterMs: 1_234, shouldRetry: true } }],
  ['non-retryable', { ok: false, error: { cause: 'tunnel was deleted', retryAfterMs: 0, shouldRetry: false } }],
  ['EDUPCONN', { ok: false, error: { cause: 'EDUPCONN', retryAfterMs: 0, shouldRetry: false } }],
];
for (const [name, refusal] of refusals) {
  test(`a ConnectionError (${name}) resolves as ok:false with the edge's values`, async (t) => {
    const { client, server } = session(t, { handler: new RecordingHandler(refusal) });
    t.deepEqual(await client.registerConnection(request()), refusal);
    await server.events.waitFor((e) => e.type === 'finish' && e.questionId === 1);
  });
}

test('retryAfter travels as nanoseconds and comes back as whole milliseconds', (t) => {
  t.is(msToNs(1_234), 1_234_000_000n);
  t.is(nsToMs(1_234_000_000n), 1_234);
  t.is(nsToMs(1_234_000_001n), 1_235, 'rounded up so the minimum delay is kept');
  t.is(nsToMs(-5n), 0);
  t.is(msToNs(-1), 0n);
  t.is(msToNs(Number.MAX_SAFE_INTEGER * 1e6), 2n ** 63n - 1n, 'saturates at Int64 max');
});

test('a Return exception rejects registerConnection with TunnelRegistration and is still finished', async (t) => {
  const { client, server } = session(t, { faults: { exception: 'edge exploded' } });
  const err = await t.throwsAsync(client.registerConnection(request()));
  t.true(isWarrenError(err, ErrorCode.TunnelRegistration));
  t.regex(err!.message, /edge exploded/);
  const finish = await server.events.waitFor((e) => e.type === 'finish' && e.questionId === 1);
  t.deepEqual(finish, { type: 'finish', questionId: 1, releaseResultCaps: false });
});

test('a handler that throws becomes a Return exception carrying its message', async (t) => {
  const handler = new RecordingHandler(() => {
    throw new Error('database is down');
  });
  const { client } = session(t, { handler });
  await t.throwsAsync(client.registerConnection(request()), { message: /database is down/ });
});

test('a silent edge makes registerConnection time out and Finish it with releaseResultCaps=true', async (t) => {
  const { client, server } = session(t, { faults: { silent: true }, timeoutMs: 150 });
  const err = await t.throwsAsync(client.registerConnection(request()));
  t.true(isWarrenError(err, ErrorCode.TunnelRegistration));
  t.regex(err!.message, /registerConnection timed out after 150 ms/);
  const finish = await server.events.waitFor((e) => e.type === 'finish');
  t.deepEqual(finish, { type: 'finish', questionId: 1, releaseResultCaps: true });
  await client.close();
  // The unanswered bootstrap is given up on close (releaseResultCaps=true), then the session is aborted.
  await server.events.waitFor((e) => e.type === 'abort');
  t.deepEqual(server.events.sequence(), ['bootstrap', 'call:registerConnection', 'finish:1', 'finish:0', 'abort']);
  t.true(server.events.ofType('finish').every((f) => f.releaseResultCaps));
});

test('a delayed edge still answers within the timeout', async (t) => {
  const { client } = session(t, { faults: { delayMs: 30 }, timeoutMs: 5_000 });
  t.deepEqual(await client.registerConnection(request()), REGISTERED);
});

test('updateLocalConfiguration sends the JSON to the imported capability', async (t) => {
  const { client, server, handler } = session(t);
  await client.registerConnection(request());
  const config = Buffer.from(JSON.stringify({ ingress: [{ service: 'http_status:404' }] }));
  await client.updateLocalConfiguration(config);
  t.deepEqual(handler.configs, [config]);
  t.deepEqual(server.events.localConfigurations(), [config]);
  t.deepEqual(server.events.calls('updateLocalConfiguration')[0]!.target, { kind: 'importedCap', importId: 0 });
});

test('graceful shutdown: unregister, then Release of the import and Abort "rpc: shutdown", then the stream ends', async (t) => {
  const { client, server, handler } = session(t);
  await client.registerConnection(request());
  await client.updateLocalConfiguration(Buffer.from('{}'));
  await client.unregisterConnection();
  t.is(handler.unregistered, 1);
  await client.close();
  await server.closed;
  const seq = server.events.sequence();
  t.deepEqual(seq.slice(0, 2), ['bootstrap', 'call:registerConnection']);
  t.deepEqual(seq.slice(4), ['call:updateLocalConfiguration', 'finish:1', 'call:unregisterConnection', 'finish:1', 'release:0', 'abort']);
  t.deepEqual(server.events.ofType('release'), [{ type: 'release', id: 0, referenceCount: 1 }]);
  t.deepEqual(server.events.ofType('abort'), [{ type: 'abort', reason: 'rpc: shutdown', exceptionType: 'failed' }]);
  // Freed question ids are reused (most recently freed first) rather than growing.
  t.deepEqual(
    server.events.ofType('call').map((c) => c.questionId),
    [1, 1, 1],
  );
  t.is(client.error, undefined);
});

test('close is idempotent and later calls reject without touching the stream', async (t) => {
  const { client, server } = session(t);
  await client.registerConnection(request());
  await Promise.all([client.close(), client.close()]);
  await client.close();
  await server.closed;
  t.is(server.events.ofType('abort').length, 1);
  const err = await t.throwsAsync(client.unregisterConnection());
  t.true(isWarrenError(err, ErrorCode.TunnelRegistration));
});

test('close while registerConnection is pending rejects it and finishes the open questions', async (t) => {
  const { client, server } = session(t, { faults: { silent: true } });
  const pending = client.registerConnection(request());
  await server.events.waitFor((e) => e.type === 'call');
  await client.close();
  const err = await t.throwsAsync(pending);
  t.true(isWarrenError(err, ErrorCode.TunnelRegistration));
  await server.events.waitFor((e) => e.type === 'abort');
  t.deepEqual(server.events.sequence(), ['bootstrap', 'call:registerConnection', 'finish:0', 'finish:1', 'abort']);
});

test('every message survives being split into one-byte chunks in both directions', async (t) => {
  const { client, server, handler } = session(t, { split: 'bytes' });
  t.deepEqual(await client.registerConnection(request()), REGISTERED);
  await client.updateLocalConfiguration(Buffer.from('{"ingress":[]}'));
  await client.unregisterConnection();
  t.is(handler.configs[0]!.toString(), '{"ingress":[]}');
  t.is(handler.unregistered, 1);
  await client.close();
  await server.events.waitFor((e) => e.type === 'abort');
  t.deepEqual(server.events.registrations(), [request()]);
});

test('an invalid request is refused locally with a terminal error naming the field, before anything is sent', async (t) => {
  const { client, server } = session(t);
  const err = await t.throwsAsync(client.registerConnection(request({ tunnelId: Buffer.alloc(15) })));
  t.true(isWarrenError(err, ErrorCode.TunnelRegistration));
  t.regex(err!.message, /tunnelId must be 16 bytes/);
  t.true((err as { terminal?: boolean }).terminal);
  await new Promise((r) => setImmediate(r));
  t.deepEqual(server.events.entries, []);
});

test('registerConnection may be called only once per control stream', async (t) => {
  const { client } = session(t);
  await client.registerConnection(request());
  await t.throwsAsync(client.registerConnection(request()), { message: /only once/ });
});

test('malformedReturn makes registration fail with TunnelProtocol, the session is aborted and closed', async (t) => {
  const { client, server } = session(t, { faults: { malformedReturn: true } });
  const err = await t.throwsAsync(client.registerConnection(request()));
  t.true(isWarrenError(err, ErrorCode.TunnelProtocol), String(err));
  await client.closed;
  t.true(isWarrenError(client.error, ErrorCode.TunnelProtocol));
  const abort = await server.events.waitFor((e) => e.type === 'abort');
  t.regex((abort as { reason: string }).reason, /out of bounds/);
});

test('the edge ending the stream rejects the pending call and resolves closed', async (t) => {
  const { client, server } = session(t, { faults: { silent: true } });
  const pending = client.registerConnection(request());
  await server.events.waitFor((e) => e.type === 'call');
  server.close();
  const err = await t.throwsAsync(pending);
  t.true(isWarrenError(err, ErrorCode.TunnelRegistration));
  t.regex(err!.message, /ended by the edge/);
  await client.closed;
  t.is(client.error, err as typeof client.error);
});

test('a stream error rejects the pending call with TunnelRegistration and never surfaces as uncaught', async (t) => {
  const { client, server, connector } = session(t, { faults: { silent: true } });
  const pending = client.registerConnection(request());
  await server.events.waitFor((e) => e.type === 'call');
  connector.destroy(new Error('socket reset'));
  const err = await t.throwsAsync(pending);
  t.true(isWarrenError(err, ErrorCode.TunnelRegistration));
  await client.closed;
  t.pass();
});

test('debug logging of a whole session never contains the tunnel secret', async (t) => {
  const lines: string[] = [];
  const logger = pino({ level: 'trace' }, { write: (line: string) => lines.push(line) });
  const secret = Buffer.from('5ecret5ecret5ecret5ecret5ecret5e');
  const { connector, edge } = controlStream(t);
  const server = serveRegistration(edge, new RecordingHandler(), { logger });
  const client = new RegistrationClient(connector, { timeoutMs: 5_000, logger });
  await client.registerConnection(request({ auth: { accountTag: 'acct', tunnelSecret: secret } }));
  await client.close();
  await server.closed;
  const log = lines.join('\n');
  t.regex(log, /rpc send/);
  for (const form of [secret.toString('utf8'), secret.toString('hex'), secret.toString('base64'), `${String(secret[0])},${String(secret[1])}`]) {
    t.false(log.includes(form), `log contains the secret as ${form}`);
  }
});
