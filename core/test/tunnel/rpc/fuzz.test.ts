import test from 'ava';
import fc from 'fast-check';
import { duplexPair } from 'node:stream';
import { ErrorCode, isWarrenError } from '../../../src/errors.js';
import { FrameReader, type StructReader } from '../../../src/tunnel/rpc/codec/index.js';
import { RegistrationClient, serveRegistration, type RegistrationRequest, type RegistrationResult } from '../../../src/tunnel/rpc/index.js';
import {
  capabilityContent,
  decodeRpcMessage,
  encodeCall,
  encodeReturn,
  encodeUnimplemented,
  structContent,
  type DecodedRpcMessage,
} from '../../../src/tunnel/rpc/messages.js';
import {
  readRegisterConnectionParams,
  readRegisterConnectionResults,
  writeRegisterConnectionParams,
  writeRegisterConnectionResults,
} from '../../../src/tunnel/rpc/registration-codec.js';
import { Layout, REGISTRATION_SERVER_INTERFACE_ID } from '../../../src/tunnel/rpc/schema.js';
import { RecordingHandler, REGISTERED, request } from './helpers.js';

/** Cases per property; raise WARREN_FUZZ_RUNS for a longer local fuzzing session. */
const RUNS = Number(process.env.WARREN_FUZZ_RUNS ?? 500);

const bootstrapReturn = encodeReturn({
  answerId: 0,
  result: { kind: 'results', content: capabilityContent(0), capTable: [{ kind: 'senderHosted', id: 0 }] },
});
const registeredReturn = encodeReturn({
  answerId: 1,
  result: { kind: 'results', content: structContent(Layout.RegisterConnectionResults, (r) => writeRegisterConnectionResults(r, REGISTERED)) },
});
const registerCall = encodeCall({
  questionId: 1,
  target: { kind: 'promisedAnswer', questionId: 0, transform: [] },
  interfaceId: REGISTRATION_SERVER_INTERFACE_ID,
  methodId: 0,
  content: structContent(Layout.RegisterConnectionParams, (p) => writeRegisterConnectionParams(p, request())),
});
const VALID = [bootstrapReturn, registeredReturn, registerCall];

/** Valid messages with random bytes overwritten: reaches deep decoder paths random bytes never reach. */
const mutated = fc.tuple(fc.constantFrom(...VALID), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 })).map(([valid, edits]) => {
  const copy = Buffer.from(valid);
  for (const [at, value] of edits) copy[8 + (at % (copy.length - 8))] = value; // keep the frame header intact
  return copy;
});
/** A well-formed frame header around random words. */
const framedGarbage = fc.array(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), { minLength: 1, maxLength: 24 }).map((words) => {
  const frame = Buffer.alloc(8 + words.length * 8);
  frame.writeUInt32LE(words.length, 4);
  words.forEach((w, i) => {
    frame.writeBigUInt64LE(w, 8 + i * 8);
  });
  return frame;
});
const anyInput = fc.oneof(
  fc.uint8Array({ maxLength: 256 }).map((b) => Buffer.from(b)),
  framedGarbage,
  mutated,
);

/** Reads everything a peer could make the client or server read from a decoded message. */
function readDeeply(decoded: DecodedRpcMessage): void {
  const m = decoded.message;
  const content = m.type === 'call' ? m.params.content : m.type === 'return' && m.result.kind === 'results' ? m.result.payload.content : undefined;
  if (content?.kind === 'struct') {
    tryRead(() => readRegisterConnectionParams(content.value));
    tryRead(() => readRegisterConnectionResults(content.value));
  }
  encodeUnimplemented(decoded.root);
}

function tryRead(read: () => unknown): void {
  try {
    read();
  } catch (err) {
    if (!isWarrenError(err, ErrorCode.TunnelProtocol)) throw err;
  }
}

test('arbitrary bytes fed to the framing reader and decoder only ever fail with TunnelProtocol', (t) => {
  let decodedCount = 0;
  fc.assert(
    fc.property(anyInput, fc.integer({ min: 1, max: 64 }), (bytes, chunkSize) => {
      const reader = new FrameReader();
      try {
        for (let at = 0; at < bytes.length; at += chunkSize) {
          for (const segments of reader.push(bytes.subarray(at, at + chunkSize))) {
            const decoded = decodeRpcMessage(segments);
            decodedCount++;
            readDeeply(decoded);
          }
        }
      } catch (err) {
        if (!isWarrenError(err, ErrorCode.TunnelProtocol)) throw err;
      }
    }),
    { numRuns: RUNS },
  );
  t.log('decoded messages', decodedCount);
  t.true(decodedCount > 0, 'some inputs decoded, so deep paths were reached');
});

test('a live RegistrationClient fed arbitrary edge bytes settles with a WarrenError or a result, and closes', async (t) => {
  const outcomes = new Map<string, number>();
  await fc.assert(
    fc.asyncProperty(fc.array(anyInput, { minLength: 1, maxLength: 3 }), fc.boolean(), async (inputs, answerFirst) => {
      const [connector, edge] = duplexPair();
      edge.on('data', () => {});
      edge.on('error', () => {});
      const client = new RegistrationClient(connector, { timeoutMs: 1_000 });
      try {
        const registered = client.registerConnection(request());
        if (answerFirst) edge.write(bootstrapReturn);
        for (const bytes of inputs) edge.write(bytes);
        edge.end();
        const outcome = await registered.then(
          () => 'resolved',
          (err: unknown) => {
            if (!isWarrenError(err)) throw new Error(`registerConnection rejected with a non-WarrenError: ${String(err)}`);
            return err.code;
          },
        );
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
        await client.closed;
        await client.close();
        if (client.error && !isWarrenError(client.error)) throw new Error('error is not a WarrenError');
      } finally {
        connector.destroy();
        edge.destroy();
      }
    }),
    { numRuns: RUNS },
  );
  t.log('outcomes', Object.fromEntries(outcomes));
  t.true((outcomes.get(ErrorCode.TunnelProtocol) ?? 0) > 0, `outcomes: ${JSON.stringify([...outcomes])}`);
});

test('a live edge server fed arbitrary connector bytes never throws and always closes', async (t) => {
  let protocolErrors = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(anyInput, { minLength: 1, maxLength: 3 }), async (inputs) => {
      const [connector, edge] = duplexPair();
      connector.on('data', () => {});
      connector.on('error', () => {});
      const server = serveRegistration(edge, new RecordingHandler());
      try {
        for (const bytes of inputs) connector.write(bytes);
        connector.end();
        await server.closed;
        protocolErrors += server.events.ofType('protocolError').length;
      } finally {
        server.close();
        connector.destroy();
        edge.destroy();
      }
    }),
    { numRuns: RUNS },
  );
  t.true(protocolErrors > 0);
});

// ------------------------------------------------------------------------------------------------------------
// Round trips

const text = fc.string({ unit: 'binary', maxLength: 40 });
const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max }).map((b) => Buffer.from(b));
const registrationRequest: fc.Arbitrary<RegistrationRequest> = fc.record({
  auth: fc.record({ accountTag: text, tunnelSecret: bytes(0, 64) }),
  tunnelId: bytes(16, 16),
  connIndex: fc.integer({ min: 0, max: 255 }),
  options: fc.record(
    {
      client: fc.record({ clientId: bytes(16, 16), features: fc.array(text, { maxLength: 8 }), version: text, arch: text }),
      originLocalIp: bytes(16, 16),
      replaceExisting: fc.boolean(),
      compressionQuality: fc.integer({ min: 0, max: 255 }),
      numPreviousAttempts: fc.integer({ min: 0, max: 255 }),
    },
    { requiredKeys: ['client', 'replaceExisting', 'compressionQuality', 'numPreviousAttempts'] },
  ),
});

function contentOf(framed: Buffer): StructReader {
  const m = decodeRpcMessage(new FrameReader().push(framed)[0]!).message;
  const content = m.type === 'call' ? m.params.content : m.type === 'return' && m.result.kind === 'results' ? m.result.payload.content : undefined;
  if (content?.kind !== 'struct') throw new Error('no struct content');
  return content.value;
}

test('encode → decode round-trips arbitrary RegistrationRequest values', (t) => {
  fc.assert(
    fc.property(registrationRequest, (req) => {
      const framed = encodeCall({
        questionId: 1,
        target: { kind: 'promisedAnswer', questionId: 0, transform: [] },
        interfaceId: REGISTRATION_SERVER_INTERFACE_ID,
        methodId: 0,
        content: structContent(Layout.RegisterConnectionParams, (p) => writeRegisterConnectionParams(p, req)),
      });
      t.deepEqual(readRegisterConnectionParams(contentOf(framed)), req);
    }),
    { numRuns: RUNS },
  );
});

const registrationResult: fc.Arbitrary<RegistrationResult> = fc.oneof(
  fc.record({
    ok: fc.constant(true as const),
    details: fc.record({ uuid: bytes(16, 16), locationName: text, tunnelIsRemotelyManaged: fc.boolean() }),
  }),
  fc.record({
    ok: fc.constant(false as const),
    error: fc.record({ cause: text, retryAfterMs: fc.integer({ min: 0, max: 2 ** 40 }), shouldRetry: fc.boolean() }),
  }),
);

test('encode → decode round-trips arbitrary RegistrationResult values (retryAfter via nanoseconds)', (t) => {
  fc.assert(
    fc.property(registrationResult, (result) => {
      const framed = encodeReturn({
        answerId: 1,
        result: { kind: 'results', content: structContent(Layout.RegisterConnectionResults, (r) => writeRegisterConnectionResults(r, result)) },
      });
      t.deepEqual(readRegisterConnectionResults(contentOf(framed)), result);
    }),
    { numRuns: RUNS },
  );
});

test('a request survives the whole client → server path, including a 4-byte IPv4 mapped to ::ffff:', async (t) => {
  const [connector, edge] = duplexPair();
  const handler = new RecordingHandler();
  const server = serveRegistration(edge, handler);
  const client = new RegistrationClient(connector, { timeoutMs: 5_000 });
  t.teardown(async () => {
    await client.close();
    server.close();
  });
  const req = request({ connIndex: 3 });
  req.options.originLocalIp = Buffer.from([10, 0, 0, 7]);
  req.options.numPreviousAttempts = 1_000;
  await client.registerConnection(req);
  t.is(handler.requests[0]!.options.originLocalIp!.toString('hex'), '00000000000000000000ffff0a000007');
  t.is(handler.requests[0]!.options.numPreviousAttempts, 255, 'saturates at the UInt8 maximum');
  t.is(handler.requests[0]!.connIndex, 3);
});
