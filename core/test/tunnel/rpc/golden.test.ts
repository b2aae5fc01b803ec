import test from 'ava';
import { Message as CapnpMessage } from 'capnp-es';
import * as capnpRpc from 'capnp-es/capnp/rpc';
import { FrameReader } from '../../../src/tunnel/rpc/codec/index.js';
import {
  capabilityContent,
  decodeRpcMessage,
  encodeAbort,
  encodeBootstrap,
  encodeCall,
  encodeFinish,
  encodeRelease,
  encodeReturn,
  structContent,
} from '../../../src/tunnel/rpc/messages.js';
import {
  readRegisterConnectionParams,
  readRegisterConnectionResults,
  readUpdateLocalConfigurationParams,
  writeRegisterConnectionParams,
  writeRegisterConnectionResults,
  writeUpdateLocalConfigurationParams,
} from '../../../src/tunnel/rpc/registration-codec.js';
import { Layout, REGISTRATION_SERVER_INTERFACE_ID } from '../../../src/tunnel/rpc/schema.js';
import type { RegistrationRequest, RegistrationResult } from '../../../src/tunnel/rpc/types.js';
import { CLOUDFLARED_RPC as GOLDEN } from '../support/cloudflared-vectors.js';
import { contentStruct, REGISTERED, request } from './helpers.js';

// The vectors were made with the shared test request, but as a first attempt.
const REQUEST: RegistrationRequest = request({ options: { ...request().options, numPreviousAttempts: 0 } });
const DETAILS: RegistrationResult = REGISTERED;
const EDUPCONN: RegistrationResult = { ok: false, error: { cause: 'EDUPCONN', retryAfterMs: 5000, shouldRetry: true } };
const CONFIG = Buffer.from('{"ingress":[]}');

function decode(hex: string): ReturnType<typeof decodeRpcMessage> {
  const frames = new FrameReader().push(Buffer.from(hex, 'hex'));
  if (frames.length !== 1) throw new Error(`expected one frame, got ${frames.length}`);
  return decodeRpcMessage(frames[0]!);
}

const encoders: Record<keyof typeof GOLDEN, () => Buffer> = {
  bootstrap: () => encodeBootstrap(0),
  bootstrapReturn: () => encodeReturn({ answerId: 0, result: { kind: 'results', content: capabilityContent(0), capTable: [{ kind: 'senderHosted', id: 0 }] } }),
  finish: () => encodeFinish(0, false),
  registerCall: () =>
    encodeCall({
      questionId: 1,
      target: { kind: 'promisedAnswer', questionId: 0, transform: [] },
      interfaceId: REGISTRATION_SERVER_INTERFACE_ID,
      methodId: 0,
      content: structContent(Layout.RegisterConnectionParams, (p) => writeRegisterConnectionParams(p, REQUEST)),
    }),
  detailsReturn: () =>
    encodeReturn({
      answerId: 1,
      result: { kind: 'results', content: structContent(Layout.RegisterConnectionResults, (r) => writeRegisterConnectionResults(r, DETAILS)) },
    }),
  errorReturn: () =>
    encodeReturn({
      answerId: 1,
      result: { kind: 'results', content: structContent(Layout.RegisterConnectionResults, (r) => writeRegisterConnectionResults(r, EDUPCONN)) },
    }),
  updateCall: () =>
    encodeCall({
      questionId: 2,
      target: { kind: 'importedCap', importId: 0 },
      interfaceId: REGISTRATION_SERVER_INTERFACE_ID,
      methodId: 2,
      content: structContent(Layout.UpdateLocalConfigurationParams, (p) => writeUpdateLocalConfigurationParams(p, CONFIG)),
    }),
  unregisterCall: () =>
    encodeCall({
      questionId: 1,
      target: { kind: 'importedCap', importId: 0 },
      interfaceId: REGISTRATION_SERVER_INTERFACE_ID,
      methodId: 1,
      content: structContent([0, 0]),
    }),
  emptyReturn: () => encodeReturn({ answerId: 1, result: { kind: 'results', content: structContent([0, 0]) } }),
  release: () => encodeRelease(0, 1),
  abort: () => encodeAbort({ reason: 'rpc: shutdown', type: 'failed' }),
};

for (const [name, hex] of Object.entries(GOLDEN) as [keyof typeof GOLDEN, string][]) {
  test(`golden ${name}: encodes byte for byte`, (t) => {
    t.is(encoders[name]().toString('hex'), hex);
  });

  test(`golden ${name}: the reference decoder (capnp-es rpc.capnp) reads our bytes`, (t) => {
    const root = new CapnpMessage(encoders[name](), false).getRoot(capnpRpc.Message);
    const which = root.which();
    const expected = {
      bootstrap: capnpRpc.Message.BOOTSTRAP,
      bootstrapReturn: capnpRpc.Message.RETURN,
      finish: capnpRpc.Message.FINISH,
      registerCall: capnpRpc.Message.CALL,
      detailsReturn: capnpRpc.Message.RETURN,
      errorReturn: capnpRpc.Message.RETURN,
      updateCall: capnpRpc.Message.CALL,
      unregisterCall: capnpRpc.Message.CALL,
      emptyReturn: capnpRpc.Message.RETURN,
      release: capnpRpc.Message.RELEASE,
      abort: capnpRpc.Message.ABORT,
    }[name];
    t.is(which, expected);
    if (which === capnpRpc.Message.CALL) {
      t.is(root.call.interfaceId, REGISTRATION_SERVER_INTERFACE_ID);
      t.is(root.call.questionId, name === 'updateCall' ? 2 : 1);
    }
    if (which === capnpRpc.Message.RETURN) t.true(root.return.releaseParamCaps);
    if (which === capnpRpc.Message.FINISH) t.false(root.finish.releaseResultCaps);
    if (which === capnpRpc.Message.ABORT) t.is(root.abort.reason, 'rpc: shutdown');
  });
}

test('golden bootstrap / finish / release / abort decode to their values', (t) => {
  t.deepEqual(decode(GOLDEN.bootstrap).message, { type: 'bootstrap', questionId: 0 });
  t.deepEqual(decode(GOLDEN.finish).message, { type: 'finish', questionId: 0, releaseResultCaps: false });
  t.deepEqual(decode(GOLDEN.release).message, { type: 'release', id: 0, referenceCount: 1 });
  t.deepEqual(decode(GOLDEN.abort).message, { type: 'abort', exception: { reason: 'rpc: shutdown', type: 'failed' } });
});

test('golden bootstrap Return decodes to cap #0 with capTable [senderHosted 0]', (t) => {
  const m = decode(GOLDEN.bootstrapReturn).message;
  if (m.type !== 'return' || m.result.kind !== 'results') return t.fail(`unexpected ${m.type}`);
  t.is(m.answerId, 0);
  t.true(m.releaseParamCaps);
  t.deepEqual(m.result.payload.content, { kind: 'capability', index: 0 });
  t.deepEqual(m.result.payload.capTable, [{ kind: 'senderHosted', id: 0 }]);
});

test('golden registerConnection Call decodes to the pipelined call and the exact request', (t) => {
  const m = decode(GOLDEN.registerCall).message;
  if (m.type !== 'call') return t.fail(`unexpected ${m.type}`);
  t.is(m.questionId, 1);
  t.is(m.methodId, 0);
  t.is(m.interfaceId, 0xf71695ec7fe85497n);
  t.is(m.sendResultsTo, 'caller');
  t.deepEqual(m.target, { kind: 'promisedAnswer', questionId: 0, transform: [] });
  t.deepEqual(m.params.capTable, []);
  t.deepEqual(readRegisterConnectionParams(contentStruct(m)), REQUEST);
});

test('golden registerConnection Returns decode to connectionDetails and to a retryable EDUPCONN (5 s)', (t) => {
  t.deepEqual(readRegisterConnectionResults(contentStruct(decode(GOLDEN.detailsReturn).message)), DETAILS);
  t.deepEqual(readRegisterConnectionResults(contentStruct(decode(GOLDEN.errorReturn).message)), EDUPCONN);
});

test('golden updateLocalConfiguration / unregisterConnection Calls target import 0 with their params', (t) => {
  const update = decode(GOLDEN.updateCall).message;
  if (update.type !== 'call') return t.fail(`unexpected ${update.type}`);
  t.deepEqual(update.target, { kind: 'importedCap', importId: 0 });
  t.is(update.methodId, 2);
  t.is(readUpdateLocalConfigurationParams(contentStruct(update)).toString(), '{"ingress":[]}');

  const unregister = decode(GOLDEN.unregisterCall).message;
  if (unregister.type !== 'call') return t.fail(`unexpected ${unregister.type}`);
  t.is(unregister.methodId, 1);
  t.deepEqual(unregister.target, { kind: 'importedCap', importId: 0 });
  const params = contentStruct(unregister);
  t.is(params.dataBytes + params.ptrCount, 0, 'empty params struct');
});

test('golden empty Return decodes to results with an empty struct and no cap table', (t) => {
  const m = decode(GOLDEN.emptyReturn).message;
  if (m.type !== 'return' || m.result.kind !== 'results') return t.fail(`unexpected ${m.type}`);
  t.is(m.answerId, 1);
  t.is(m.result.payload.content.kind, 'struct');
  t.deepEqual(m.result.payload.capTable, []);
});

test('all golden vectors in one chunk split into the same messages, in order', (t) => {
  const all = Buffer.concat(Object.values(GOLDEN).map((h) => Buffer.from(h, 'hex')));
  const frames = new FrameReader().push(all);
  t.deepEqual(
    frames.map((segments) => decodeRpcMessage(segments).message.type),
    ['bootstrap', 'return', 'finish', 'call', 'return', 'return', 'call', 'call', 'return', 'release', 'abort'],
  );
});
