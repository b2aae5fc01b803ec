import {
  DEFAULT_READ_LIMITS,
  MessageBuilder,
  MessageReader,
  protocolError,
  type AnyPointerReader,
  type ReadLimits,
  type StructBuilder,
  type StructReader,
} from './codec/index.js';
import {
  CapDescriptorTag,
  EXCEPTION_TYPE_NAMES,
  ExceptionType,
  Layout,
  MESSAGE_TAG_NAMES,
  MessageTag,
  ReturnTag,
  type ExceptionTypeName,
  type MessageTagName,
} from './schema.js';

/**
 * The subset of Cap'n Proto RPC messages (`capnp/rpc.capnp`) the control stream uses: typed decoding of every
 * message either side must understand, and encoders for every message either side sends. Method parameters and
 * results stay as readers/writers here; `registration-codec.ts` gives them their types.
 */

/** Most entries accepted in a payload's capability table (the tunnel RPC never carries more than one). */
const MAX_CAP_TABLE = 64;
/** Most ops accepted in a promised answer's transform. */
const MAX_TRANSFORM = 64;

type PromisedAnswerOp = { kind: 'noop' } | { kind: 'getPointerField'; index: number };

/** Whom a call is addressed to. */
export type MessageTarget = { kind: 'importedCap'; importId: number } | { kind: 'promisedAnswer'; questionId: number; transform: PromisedAnswerOp[] };

/** One entry of a payload's capability table. */
type CapDescriptor =
  | { kind: 'none' }
  | { kind: 'senderHosted' | 'senderPromise' | 'receiverHosted'; id: number }
  | { kind: 'receiverAnswer'; questionId: number; transform: PromisedAnswerOp[] }
  | { kind: 'thirdPartyHosted' };

/** `Exception` as carried by `Abort` and `Return.exception`. */
export interface RpcException {
  reason: string;
  type: ExceptionTypeName;
}

/** A received `Payload`: the content pointer (method params/results) and its capability table. */
export interface IncomingPayload {
  content: AnyPointerReader;
  capTable: CapDescriptor[];
}

export type ReturnResult =
  | { kind: 'results'; payload: IncomingPayload }
  | { kind: 'exception'; exception: RpcException }
  | { kind: 'canceled' }
  | { kind: 'resultsSentElsewhere' }
  | { kind: 'takeFromOtherQuestion'; questionId: number }
  | { kind: 'acceptFromThirdParty' };

/** A decoded RPC message. Message types neither side implements decode as `unsupported` (answered Unimplemented). */
export type RpcMessage =
  | { type: 'bootstrap'; questionId: number }
  | {
      type: 'call';
      questionId: number;
      target: MessageTarget;
      interfaceId: bigint;
      methodId: number;
      sendResultsTo: 'caller' | 'yourself' | 'thirdParty';
      params: IncomingPayload;
    }
  | { type: 'return'; answerId: number; releaseParamCaps: boolean; result: ReturnResult }
  | { type: 'finish'; questionId: number; releaseResultCaps: boolean }
  | { type: 'release'; id: number; referenceCount: number }
  | { type: 'abort'; exception: RpcException }
  | { type: 'unimplemented'; echoed: RpcMessage | undefined }
  | { type: 'unsupported'; name: MessageTagName };

/** A decoded message plus its root struct (needed to echo it back in an `Unimplemented`). */
export interface DecodedRpcMessage {
  message: RpcMessage;
  root: StructReader;
}

/** Decodes one framed message's segments. Throws a `TunnelProtocol` WarrenError on anything malformed. */
export function decodeRpcMessage(segments: readonly Buffer[], limits: ReadLimits = DEFAULT_READ_LIMITS): DecodedRpcMessage {
  const root = new MessageReader(segments, limits).root('Message');
  return { message: readMessage(root, true), root };
}

function readMessage(m: StructReader, allowEcho: boolean): RpcMessage {
  const tag = m.u16(0);
  const name = MESSAGE_TAG_NAMES[tag];
  if (name === undefined) throw protocolError(`${m.path}: unknown message type ${tag}`);
  switch (name) {
    case 'bootstrap':
      return { type: 'bootstrap', questionId: m.struct(0, 'bootstrap').u32(0) };
    case 'call':
      return readCall(m.struct(0, 'call'));
    case 'return':
      return readReturn(m.struct(0, 'return'));
    case 'finish': {
      const f = m.struct(0, 'finish');
      return { type: 'finish', questionId: f.u32(0), releaseResultCaps: f.bool(32, true) };
    }
    case 'release': {
      const r = m.struct(0, 'release');
      return { type: 'release', id: r.u32(0), referenceCount: r.u32(4) };
    }
    case 'abort':
      return { type: 'abort', exception: readException(m.struct(0, 'abort')) };
    case 'unimplemented': {
      if (!allowEcho) return { type: 'unimplemented', echoed: undefined };
      let echoed: RpcMessage | undefined;
      try {
        echoed = readMessage(m.struct(0, 'unimplemented'), false);
      } catch {
        echoed = undefined; // an echo we cannot read is still just an echo
      }
      return { type: 'unimplemented', echoed };
    }
    default:
      return { type: 'unsupported', name };
  }
}

function readCall(c: StructReader): RpcMessage {
  const sendTag = c.u16(6);
  const sendResultsTo = (['caller', 'yourself', 'thirdParty'] as const)[sendTag];
  if (sendResultsTo === undefined) throw protocolError(`${c.path}.sendResultsTo: unknown union tag ${sendTag}`);
  return {
    type: 'call',
    questionId: c.u32(0),
    methodId: c.u16(4),
    interfaceId: c.u64(8),
    sendResultsTo,
    target: readTarget(c.struct(0, 'target')),
    params: readPayload(c.struct(1, 'params')),
  };
}

function readReturn(r: StructReader): RpcMessage {
  const answerId = r.u32(0);
  const releaseParamCaps = r.bool(32, true);
  const tag = r.u16(6);
  let result: ReturnResult;
  switch (tag) {
    case ReturnTag.results:
      result = { kind: 'results', payload: readPayload(r.struct(0, 'results')) };
      break;
    case ReturnTag.exception:
      result = { kind: 'exception', exception: readException(r.struct(0, 'exception')) };
      break;
    case ReturnTag.canceled:
      result = { kind: 'canceled' };
      break;
    case ReturnTag.resultsSentElsewhere:
      result = { kind: 'resultsSentElsewhere' };
      break;
    case ReturnTag.takeFromOtherQuestion:
      result = { kind: 'takeFromOtherQuestion', questionId: r.u32(8) };
      break;
    case ReturnTag.acceptFromThirdParty:
      result = { kind: 'acceptFromThirdParty' };
      break;
    default:
      throw protocolError(`${r.path}: unknown union tag ${tag}`);
  }
  return { type: 'return', answerId, releaseParamCaps, result };
}

function readTarget(t: StructReader): MessageTarget {
  const tag = t.u16(4);
  if (tag === 0) return { kind: 'importedCap', importId: t.u32(0) };
  if (tag === 1) {
    const a = t.struct(0, 'promisedAnswer');
    return { kind: 'promisedAnswer', questionId: a.u32(0), transform: readTransform(a) };
  }
  throw protocolError(`${t.path}: unknown union tag ${tag}`);
}

function readTransform(a: StructReader): PromisedAnswerOp[] {
  const list = a.list(0, 'transform');
  if (list.length > MAX_TRANSFORM) throw protocolError(`${list.path}: ${list.length} ops (limit ${MAX_TRANSFORM})`);
  const ops: PromisedAnswerOp[] = [];
  for (let i = 0; i < list.length; i++) {
    const op = list.struct(i);
    const tag = op.u16(0);
    if (tag === 0) ops.push({ kind: 'noop' });
    else if (tag === 1) ops.push({ kind: 'getPointerField', index: op.u16(2) });
    else throw protocolError(`${op.path}: unknown union tag ${tag}`);
  }
  return ops;
}

function readPayload(p: StructReader): IncomingPayload {
  const list = p.list(1, 'capTable');
  if (list.length > MAX_CAP_TABLE) throw protocolError(`${list.path}: ${list.length} entries (limit ${MAX_CAP_TABLE})`);
  const capTable: CapDescriptor[] = [];
  for (let i = 0; i < list.length; i++) capTable.push(readCapDescriptor(list.struct(i)));
  return { content: p.pointer(0, 'content'), capTable };
}

function readCapDescriptor(d: StructReader): CapDescriptor {
  const tag = d.u16(0);
  switch (tag) {
    case CapDescriptorTag.none:
      return { kind: 'none' };
    case CapDescriptorTag.senderHosted:
      return { kind: 'senderHosted', id: d.u32(4) };
    case CapDescriptorTag.senderPromise:
      return { kind: 'senderPromise', id: d.u32(4) };
    case CapDescriptorTag.receiverHosted:
      return { kind: 'receiverHosted', id: d.u32(4) };
    case CapDescriptorTag.receiverAnswer: {
      const a = d.struct(0, 'receiverAnswer');
      return { kind: 'receiverAnswer', questionId: a.u32(0), transform: readTransform(a) };
    }
    case CapDescriptorTag.thirdPartyHosted:
      return { kind: 'thirdPartyHosted' };
    default:
      throw protocolError(`${d.path}: unknown union tag ${tag}`);
  }
}

function readException(e: StructReader): RpcException {
  // Unknown enum values are legal (newer peers); they read as the generic `failed`.
  return { reason: e.text(0, 'reason'), type: EXCEPTION_TYPE_NAMES[e.u16(4)] ?? 'failed' };
}

// ---------------------------------------------------------------------------------------------------------------
// Encoders. Each returns one complete framed message. Objects are written in schema order (see MessageBuilder).

/** Writes a payload's content into pointer 0 of the `Payload` struct it is given. */
export type ContentWriter = (payload: StructBuilder) => void;

/** Content that is a struct of the given size, filled by `fill`. Zero-sized structs use the offset −1 encoding. */
export function structContent(layout: readonly [number, number], fill: (s: StructBuilder) => void = () => {}): ContentWriter {
  return (payload) => fill(payload.initStruct(0, layout[0], layout[1]));
}

/** Content that is a capability pointer to entry `capIndex` of the payload's capability table. */
export function capabilityContent(capIndex: number): ContentWriter {
  return (payload) => payload.setCapability(0, capIndex);
}

/** A capability table entry this side can send. */
type OutgoingCapDescriptor = { kind: 'none' } | { kind: 'senderHosted' | 'senderPromise' | 'receiverHosted'; id: number };

function message(tag: number, layout: readonly [number, number], fill: (s: StructBuilder) => void): Buffer {
  const b = new MessageBuilder();
  const m = b.initRoot(Layout.Message[0], Layout.Message[1]).setU16(0, tag);
  fill(m.initStruct(0, layout[0], layout[1]));
  return b.framed();
}

export function encodeBootstrap(questionId: number): Buffer {
  return message(MessageTag.bootstrap, Layout.Bootstrap, (s) => s.setU32(0, questionId));
}

export interface OutgoingCall {
  questionId: number;
  target: MessageTarget;
  interfaceId: bigint;
  methodId: number;
  content: ContentWriter;
  /** Defaults to an empty (non-null) table. */
  capTable?: readonly OutgoingCapDescriptor[];
}

export function encodeCall(call: OutgoingCall): Buffer {
  return message(MessageTag.call, Layout.Call, (c) => {
    c.setU32(0, call.questionId).setU16(4, call.methodId).setU16(6, 0).setU64(8, call.interfaceId);
    writeTarget(c.initStruct(0, Layout.MessageTarget[0], Layout.MessageTarget[1]), call.target);
    writePayload(c.initStruct(1, Layout.Payload[0], Layout.Payload[1]), call.content, call.capTable ?? []);
  });
}

export type OutgoingReturnResult =
  | { kind: 'results'; content: ContentWriter; capTable?: readonly OutgoingCapDescriptor[] }
  | { kind: 'exception'; exception: RpcException }
  | { kind: 'canceled' };

export interface OutgoingReturn {
  answerId: number;
  /** Default true (stored inverted). */
  releaseParamCaps?: boolean;
  result: OutgoingReturnResult;
}

export function encodeReturn(ret: OutgoingReturn): Buffer {
  return message(MessageTag.return, Layout.Return, (r) => {
    r.setU32(0, ret.answerId).setBool(32, ret.releaseParamCaps ?? true, true);
    const result = ret.result;
    switch (result.kind) {
      case 'results':
        r.setU16(6, ReturnTag.results);
        writePayload(r.initStruct(0, Layout.Payload[0], Layout.Payload[1]), result.content, result.capTable);
        return;
      case 'exception':
        r.setU16(6, ReturnTag.exception);
        writeException(r.initStruct(0, Layout.Exception[0], Layout.Exception[1]), result.exception);
        return;
      case 'canceled':
        r.setU16(6, ReturnTag.canceled);
        return;
    }
  });
}

export function encodeFinish(questionId: number, releaseResultCaps: boolean): Buffer {
  return message(MessageTag.finish, Layout.Finish, (f) => f.setU32(0, questionId).setBool(32, releaseResultCaps, true));
}

export function encodeRelease(id: number, referenceCount: number): Buffer {
  return message(MessageTag.release, Layout.Release, (r) => r.setU32(0, id).setU32(4, referenceCount));
}

export function encodeAbort(exception: RpcException): Buffer {
  return message(MessageTag.abort, Layout.Exception, (e) => writeException(e, exception));
}

/** `Unimplemented` echoing a received message (a deep copy of its root struct). */
export function encodeUnimplemented(echo: StructReader): Buffer {
  const b = new MessageBuilder();
  b.initRoot(Layout.Message[0], Layout.Message[1]).setU16(0, MessageTag.unimplemented).copyPointer(0, { kind: 'struct', value: echo });
  return b.framed();
}

function writeTarget(t: StructBuilder, target: MessageTarget): void {
  if (target.kind === 'importedCap') {
    t.setU32(0, target.importId).setU16(4, 0);
    return;
  }
  t.setU16(4, 1);
  const a = t.initStruct(0, Layout.PromisedAnswer[0], Layout.PromisedAnswer[1]).setU32(0, target.questionId);
  const ops = a.initStructList(0, target.transform.length, Layout.PromisedAnswerOp[0], Layout.PromisedAnswerOp[1]);
  target.transform.forEach((op, i) => {
    if (op.kind === 'getPointerField') ops[i]!.setU16(0, 1).setU16(2, op.index);
  });
}

function writePayload(p: StructBuilder, content: ContentWriter, capTable: readonly OutgoingCapDescriptor[] | undefined): void {
  content(p);
  if (capTable === undefined) return;
  const entries = p.initStructList(1, capTable.length, Layout.CapDescriptor[0], Layout.CapDescriptor[1]);
  capTable.forEach((d, i) => {
    const e = entries[i]!;
    e.setU16(0, CapDescriptorTag[d.kind]);
    if (d.kind !== 'none') e.setU32(4, d.id);
  });
}

function writeException(e: StructBuilder, exception: RpcException): void {
  e.setText(0, exception.reason).setU16(4, ExceptionType[exception.type]);
}
