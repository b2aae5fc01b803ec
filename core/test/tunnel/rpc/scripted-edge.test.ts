import test, { type ExecutionContext } from 'ava';
import { ErrorCode, isWarrenError } from '../../../src/errors.js';
import { MessageBuilder } from '../../../src/tunnel/rpc/codec/index.js';
import { RegistrationClient, serveRegistration } from '../../../src/tunnel/rpc/index.js';
import {
  capabilityContent,
  encodeAbort,
  encodeBootstrap,
  encodeCall,
  encodeFinish,
  encodeReturn,
  encodeUnimplemented,
  structContent,
  type RpcMessage,
} from '../../../src/tunnel/rpc/messages.js';
import { writeRegisterConnectionResults } from '../../../src/tunnel/rpc/registration-codec.js';
import { Layout, MessageTag } from '../../../src/tunnel/rpc/schema.js';
import { controlStream, RecordingHandler, REGISTERED, request, ScriptedPeer, uuidBytes } from './helpers.js';

// The test plays one side byte by byte, to reach states a well-behaved peer never produces.

const bootstrapReturn = (answerId = 0, exportId = 7): Buffer =>
  encodeReturn({ answerId, result: { kind: 'results', content: capabilityContent(0), capTable: [{ kind: 'senderHosted', id: exportId }] } });
const registeredReturn = (answerId = 1): Buffer =>
  encodeReturn({
    answerId,
    result: { kind: 'results', content: structContent(Layout.RegisterConnectionResults, (r) => writeRegisterConnectionResults(r, REGISTERED)) },
  });

function connector(t: ExecutionContext, timeoutMs = 5_000) {
  const { connector, edge } = controlStream(t);
  const client = new RegistrationClient(connector, { timeoutMs });
  t.teardown(() => client.close());
  return { client, edge: new ScriptedPeer(edge) };
}

const messageOf = (m: { message: RpcMessage }) => m.message;

test('both Returns coalesced in one chunk, in reverse order: registration succeeds, both questions finished', async (t) => {
  const { client, edge } = connector(t);
  const registered = client.registerConnection(request());
  await edge.waitForCount(2);
  t.deepEqual(edge.types(), ['bootstrap', 'call']);
  edge.send(registeredReturn(1), bootstrapReturn(0, 7));
  t.deepEqual(await registered, REGISTERED);
  await edge.waitForCount(4);
  t.deepEqual(edge.received.slice(2).map(messageOf), [
    { type: 'finish', questionId: 1, releaseResultCaps: false },
    { type: 'finish', questionId: 0, releaseResultCaps: false },
  ]);
  t.is(client.importedCapabilityId, 7);
  // The next call goes to the imported capability, and close releases it.
  const unregistered = client.unregisterConnection();
  await edge.waitForCount(5);
  const call = edge.received[4]!.message;
  t.like(call, { type: 'call', methodId: 1, target: { kind: 'importedCap', importId: 7 } });
  edge.send(encodeReturn({ answerId: (call as { questionId: number }).questionId, result: { kind: 'results', content: structContent([0, 0]) } }));
  await unregistered;
  await client.close();
  await edge.waitForEnd();
  t.deepEqual(edge.types().slice(-3), ['finish', 'release', 'abort']);
  t.like(edge.received.at(-2)!.message, { type: 'release', id: 7, referenceCount: 1 });
});

test('an edge Bootstrap or Call to the connector is refused with a Return exception; Finish frees it', async (t) => {
  const { client, edge } = connector(t);
  edge.send(encodeBootstrap(5));
  await edge.waitForCount(1);
  t.deepEqual(messageOf(edge.received[0]!), {
    type: 'return',
    answerId: 5,
    releaseParamCaps: true,
    result: { kind: 'exception', exception: { reason: 'rpc: no bootstrap interface', type: 'failed' } },
  });
  edge.send(encodeFinish(5, false), encodeBootstrap(5));
  await edge.waitForCount(2);
  t.like(messageOf(edge.received[1]!), { type: 'return', answerId: 5 });
  edge.send(encodeCall({ questionId: 6, target: { kind: 'importedCap', importId: 0 }, interfaceId: 1n, methodId: 0, content: structContent([0, 0]) }));
  await edge.waitForCount(3);
  t.like(messageOf(edge.received[2]!), { type: 'return', answerId: 6, result: { kind: 'exception' } });
  t.is(client.error, undefined, 'the session stays open');
});

test('messages the connector does not implement are echoed back in Unimplemented', async (t) => {
  const { client, edge } = connector(t);
  const resolve = new MessageBuilder();
  resolve.initRoot(1, 1).setU16(0, MessageTag.resolve).initStruct(0, 1, 1).setU32(0, 3);
  edge.send(resolve.framed());
  await edge.waitForCount(1);
  t.deepEqual(messageOf(edge.received[0]!), { type: 'unimplemented', echoed: { type: 'unsupported', name: 'resolve' } });
  t.is(client.error, undefined);
});

test('an Unimplemented echo of the bootstrap fails registration with TunnelRegistration', async (t) => {
  const { client, edge } = connector(t);
  const registered = client.registerConnection(request());
  await edge.waitForCount(2);
  edge.send(encodeUnimplemented(edge.received[0]!.root), encodeUnimplemented(edge.received[1]!.root));
  const err = await t.throwsAsync(registered);
  t.true(isWarrenError(err, ErrorCode.TunnelRegistration));
  t.regex(err!.message, /does not implement registerConnection/);
  await t.throwsAsync(client.unregisterConnection(), { message: /does not implement bootstrap/ });
});

test('an edge Abort fails the pending call with TunnelRegistration and ends the session without an Abort back', async (t) => {
  const { client, edge } = connector(t);
  const registered = client.registerConnection(request());
  await edge.waitForCount(2);
  edge.send(encodeAbort({ reason: 'edge going away', type: 'disconnected' }));
  const err = await t.throwsAsync(registered);
  t.true(isWarrenError(err, ErrorCode.TunnelRegistration));
  t.regex(err!.message, /edge going away/);
  await client.closed;
  await edge.waitForEnd();
  t.deepEqual(edge.types(), ['bootstrap', 'call']);
});

const protocolViolations: [string, () => Buffer][] = [
  [
    'an unknown message type',
    () => {
      const b = new MessageBuilder();
      b.initRoot(1, 1).setU16(0, 99);
      return b.framed();
    },
  ],
  ['a Return for a question never asked', () => registeredReturn(42)],
  [
    'an unknown Return union tag',
    () => {
      const b = new MessageBuilder();
      b.initRoot(1, 1).setU16(0, MessageTag.return).initStruct(0, 2, 1).setU32(0, 1).setU16(6, 77);
      return b.framed();
    },
  ],
  ['a bootstrap answer that is not a capability', () => encodeReturn({ answerId: 0, result: { kind: 'results', content: structContent([1, 0]) } })],
  [
    'a bootstrap capability the connector would host',
    () => encodeReturn({ answerId: 0, result: { kind: 'results', content: capabilityContent(0), capTable: [{ kind: 'receiverHosted', id: 0 }] } }),
  ],
  ['a frame with 70 segments', () => Buffer.from('45000000', 'hex')],
  ['a struct pointer outside the message', () => Buffer.from('000000000100000000000001000100ff', 'hex')],
];
for (const [name, bytes] of protocolViolations) {
  test(`${name} fails the pending call and the session with TunnelProtocol, then aborts`, async (t) => {
    const { client, edge } = connector(t);
    const registered = client.registerConnection(request());
    await edge.waitForCount(2);
    edge.send(bytes());
    const err = await t.throwsAsync(registered);
    t.true(isWarrenError(err, ErrorCode.TunnelProtocol), String(err));
    await client.closed;
    t.is(client.error, err as typeof client.error);
    await edge.waitForEnd();
    t.is(edge.types().at(-1), 'abort');
  });
}

test('a connection UUID of the wrong length rejects registerConnection with TunnelProtocol', async (t) => {
  const { client, edge } = connector(t);
  const registered = client.registerConnection(request());
  await edge.waitForCount(2);
  const shortUuid = { ok: true as const, details: { uuid: uuidBytes('0102030405'), locationName: 'LIS', tunnelIsRemotelyManaged: true } };
  edge.send(
    bootstrapReturn(),
    encodeReturn({
      answerId: 1,
      result: { kind: 'results', content: structContent(Layout.RegisterConnectionResults, (r) => writeRegisterConnectionResults(r, shortUuid)) },
    }),
  );
  const err = await t.throwsAsync(registered);
  t.true(isWarrenError(err, ErrorCode.TunnelProtocol));
  t.regex(err!.message, /uuid: expected 16 bytes, got 5/);
});

test('a Return that arrives after the timeout is absorbed and its question id freed', async (t) => {
  const { client, edge } = connector(t, 100);
  const registered = client.registerConnection(request());
  await edge.waitForCount(2);
  await t.throwsAsync(registered, { message: /timed out/ });
  await edge.waitForCount(3);
  t.deepEqual(messageOf(edge.received[2]!), { type: 'finish', questionId: 1, releaseResultCaps: true });
  edge.send(bootstrapReturn(), registeredReturn(1));
  await edge.waitForCount(4);
  t.deepEqual(messageOf(edge.received[3]!), { type: 'finish', questionId: 0, releaseResultCaps: false });
  // Question 1 is free again (Return received, Finish sent), so the next call reuses it.
  const unregistered = client.unregisterConnection();
  await edge.waitForCount(5);
  t.like(messageOf(edge.received[4]!), { type: 'call', questionId: 1, target: { kind: 'importedCap', importId: 7 } });
  void unregistered.catch(() => {});
  t.is(client.error, undefined);
});

test('the edge server answers calls to unknown imports and unknown methods with exceptions', async (t) => {
  const { connector: connectorSide, edge } = controlStream(t);
  const handler = new RecordingHandler();
  const server = serveRegistration(edge, handler);
  t.teardown(() => server.close());
  const peer = new ScriptedPeer(connectorSide);
  const call = (questionId: number, importId: number, methodId: number, interfaceId = 0xf71695ec7fe85497n) =>
    encodeCall({ questionId, target: { kind: 'importedCap', importId }, interfaceId, methodId, content: structContent([0, 0]) });
  peer.send(call(0, 0, 1), encodeBootstrap(1));
  await peer.waitForCount(2);
  peer.send(call(2, 0, 9), call(3, 0, 0, 5n), call(4, 0, 1));
  await peer.waitForCount(5);
  const byAnswer = new Map(peer.received.map((d) => [(d.message as { answerId: number }).answerId, d.message]));
  t.like(byAnswer.get(0), { result: { kind: 'exception', exception: { reason: 'rpc: no export with id 0' } } });
  t.like(byAnswer.get(1), { result: { kind: 'results' } });
  t.like(byAnswer.get(2), { result: { kind: 'exception', exception: { type: 'unimplemented' } } });
  t.like(byAnswer.get(3), { result: { kind: 'exception', exception: { type: 'unimplemented' } } });
  t.like(byAnswer.get(4), { result: { kind: 'results' } });
  t.is(handler.unregistered, 1, 'only the call made after the bootstrap reached the handler');
  t.deepEqual(
    server.events.ofType('call').map((c) => c.method),
    ['unregisterConnection', 'unknown', 'unknown', 'unregisterConnection'],
  );
});

test('the edge server records malformed input, aborts and stays quiet afterwards', async (t) => {
  const { connector: connectorSide, edge } = controlStream(t);
  const server = serveRegistration(edge, new RecordingHandler());
  const peer = new ScriptedPeer(connectorSide);
  peer.send(Buffer.from('0000000001000000ffffffffffffffff', 'hex'), encodeBootstrap(0));
  await peer.waitForEnd();
  await server.closed;
  t.deepEqual(server.events.sequence(), ['protocolError']);
  t.deepEqual(peer.types(), ['abort']);
});

test('the edge server frees an answer on Finish, not on Return: reusing an unfinished question id aborts', async (t) => {
  const { connector: connectorSide, edge } = controlStream(t);
  const server = serveRegistration(edge, new RecordingHandler());
  const peer = new ScriptedPeer(connectorSide);
  peer.send(encodeBootstrap(0));
  await peer.waitForCount(1);
  peer.send(encodeFinish(0, false), encodeBootstrap(0)); // finished, so id 0 may be asked again
  await peer.waitForCount(2);
  t.deepEqual(peer.types(), ['return', 'return']);
  peer.send(encodeBootstrap(0)); // answered but not finished: reuse is a protocol violation
  await peer.waitForEnd();
  t.deepEqual(peer.types(), ['return', 'return', 'abort']);
  t.regex((peer.received[2]!.message as { exception: { reason: string } }).exception.reason, /reused question id 0/);
  t.deepEqual(server.events.sequence(), ['bootstrap', 'finish:0', 'bootstrap', 'bootstrap', 'protocolError']);
});
