import test from 'ava';
import { ErrorCode, isWarrenError } from '../../../src/errors.js';
import { FrameReader, MessageBuilder, MessageReader, frameSingleSegment } from '../../../src/tunnel/rpc/codec/index.js';
import { decodeRpcMessage, encodeBootstrap, encodeFinish, encodeUnimplemented } from '../../../src/tunnel/rpc/messages.js';
import { QuestionIdAllocator } from '../../../src/tunnel/rpc/question-ids.js';

// Pointer words, built by hand from Cap'n Proto's pointer layout.
function structPtr(offset: number, dataWords: number, ptrWords: number): Buffer {
  const w = Buffer.alloc(8);
  w.writeInt32LE(offset * 4, 0);
  w.writeUInt16LE(dataWords, 4);
  w.writeUInt16LE(ptrWords, 6);
  return w;
}
function listPtr(offset: number, elementSize: number, count: number): Buffer {
  const w = Buffer.alloc(8);
  w.writeInt32LE(offset * 4 + 1, 0);
  w.writeUInt32LE((count * 8 + elementSize) >>> 0, 4);
  return w;
}
function farPtr(doubleFar: boolean, padWord: number, segment: number): Buffer {
  const w = Buffer.alloc(8);
  w.writeUInt32LE(((padWord << 3) | (doubleFar ? 4 : 0) | 2) >>> 0, 0);
  w.writeUInt32LE(segment, 4);
  return w;
}
function u64(n: bigint): Buffer {
  const w = Buffer.alloc(8);
  w.writeBigUInt64LE(n);
  return w;
}
const text = (s: string): Buffer => {
  const b = Buffer.alloc(Math.ceil((s.length + 1) / 8) * 8);
  b.write(s);
  return b;
};
const seg = (...words: Buffer[]): Buffer => Buffer.concat(words);

function isProtocolError(t: { true(v: boolean, m?: string): void }, fn: () => unknown, pattern?: RegExp): void {
  try {
    fn();
    t.true(false, 'expected a TunnelProtocol error');
  } catch (err) {
    t.true(isWarrenError(err, ErrorCode.TunnelProtocol), `got ${String(err)}`);
    if (pattern) t.true(pattern.test((err as Error).message), `message ${(err as Error).message} does not match ${pattern}`);
  }
}

test('framing: a message fed one byte at a time completes on its last byte only', (t) => {
  const framed = encodeBootstrap(7);
  const reader = new FrameReader();
  for (let i = 0; i < framed.length - 1; i++) t.deepEqual(reader.push(framed.subarray(i, i + 1)), []);
  const done = reader.push(framed.subarray(framed.length - 1));
  t.is(done.length, 1);
  t.deepEqual(decodeRpcMessage(done[0]!).message, { type: 'bootstrap', questionId: 7 });
  t.is(reader.bufferedBytes, 0);
});

test('framing: several messages and a partial one in one chunk, the rest in the next', (t) => {
  const messages = [encodeBootstrap(1), encodeFinish(2, true), encodeFinish(3, false), encodeBootstrap(4)];
  const all = Buffer.concat(messages);
  const cut = all.length - 5;
  const reader = new FrameReader();
  const first = reader.push(all.subarray(0, cut)).map((s) => decodeRpcMessage(s).message);
  t.deepEqual(first, [
    { type: 'bootstrap', questionId: 1 },
    { type: 'finish', questionId: 2, releaseResultCaps: true },
    { type: 'finish', questionId: 3, releaseResultCaps: false },
  ]);
  t.is(reader.bufferedBytes, messages[3]!.length - 5);
  t.deepEqual(
    reader.push(all.subarray(cut)).map((s) => decodeRpcMessage(s).message),
    [{ type: 'bootstrap', questionId: 4 }],
  );
});

test('framing: multi-segment headers are padded to a word and split into segments', (t) => {
  const header = Buffer.alloc(16);
  header.writeUInt32LE(2, 0); // three segments
  header.writeUInt32LE(1, 4);
  header.writeUInt32LE(2, 8);
  header.writeUInt32LE(1, 12);
  const body = Buffer.alloc(32, 0xab);
  const frames = new FrameReader().push(Buffer.concat([header, body]));
  t.deepEqual(
    frames[0]!.map((s) => s.length),
    [8, 16, 8],
  );
});

test('framing: too many segments are rejected from the first four bytes, and the reader stays failed', (t) => {
  const reader = new FrameReader({ maxSegments: 64, maxMessageBytes: 1024 });
  const header = Buffer.alloc(4);
  header.writeUInt32LE(64, 0); // 65 segments
  isProtocolError(t, () => reader.push(header), /65 segments/);
  isProtocolError(t, () => reader.push(encodeBootstrap(0)), /65 segments/);
});

test('framing: an oversized message is rejected from its header, before any body arrives', (t) => {
  const reader = new FrameReader({ maxSegments: 64, maxMessageBytes: 8 * 1024 * 1024 });
  const header = Buffer.alloc(8);
  header.writeUInt32LE(0, 0);
  header.writeUInt32LE(0xffffffff, 4); // 32 GiB segment
  isProtocolError(t, () => reader.push(header), /exceeds 8388608 bytes/);
  t.is(reader.bufferedBytes, 0);
});

test('framing: a message with an empty first segment is rejected', (t) => {
  isProtocolError(t, () => new FrameReader().push(Buffer.alloc(8)), /empty first segment/);
});

test('framing: frameSingleSegment writes the one-segment header', (t) => {
  t.is(frameSingleSegment(Buffer.alloc(16)).subarray(0, 8).toString('hex'), '0000000002000000');
});

test('reader: a far pointer leads to a struct in another segment', (t) => {
  const seg0 = seg(farPtr(false, 1, 1));
  const seg1 = seg(u64(0n), structPtr(0, 1, 1), u64(0x1234n), listPtr(0, 2, 3), text('hi'));
  const root = new MessageReader([seg0, seg1]).root();
  t.is(root.u32(0), 0x1234);
  t.is(root.text(0, 'name'), 'hi');
});

test('reader: a double-far pointer uses its tag word and the far content address', (t) => {
  const seg0 = seg(farPtr(true, 0, 1));
  const seg1 = seg(farPtr(false, 1, 2), structPtr(0, 1, 1));
  const seg2 = seg(u64(0n), u64(99n), listPtr(0, 2, 4), text('far'));
  const root = new MessageReader([seg0, seg1, seg2]).root();
  t.is(root.u64(0), 99n);
  t.is(root.text(0, 'name'), 'far');
});

test('reader: far pointers to missing segments or outside their segment are protocol errors', (t) => {
  isProtocolError(t, () => new MessageReader([seg(farPtr(false, 0, 5))]).root(), /missing segment 5/);
  isProtocolError(t, () => new MessageReader([seg(farPtr(false, 3, 1)), seg(u64(0n))]).root(), /outside its segment/);
  isProtocolError(t, () => new MessageReader([seg(farPtr(true, 0, 1)), seg(structPtr(0, 1, 0), structPtr(0, 1, 0))]).root(), /double-far/);
});

test('reader: null pointers read as empty values and short structs read defaults', (t) => {
  const root = new MessageReader([seg(structPtr(0, 0, 1), u64(0n))]).root();
  t.is(root.text(0, 'text'), '');
  t.is(root.data(0, 'data').length, 0);
  t.is(root.list(0, 'list').length, 0);
  t.is(root.struct(0, 'struct').u64(0), 0n);
  t.is(root.u32(100), 0);
  t.true(root.bool(64, true), 'absent default-true bool reads true');
  t.is(root.text(5, 'beyond'), '');
});

test('reader: composite lists read their elements; a tag that claims too much is rejected', (t) => {
  const good = seg(structPtr(0, 0, 1), listPtr(0, 7, 2), structPtr(2, 1, 0), u64(10n), u64(20n));
  const list = new MessageReader([good]).root().list(0, 'items');
  t.deepEqual([list.struct(0).u64(0), list.struct(1).u64(0)], [10n, 20n]);
  isProtocolError(t, () => list.struct(2), /index out of range/);
  const lying = seg(structPtr(0, 0, 1), listPtr(0, 7, 2), structPtr(3, 1, 0), u64(10n), u64(20n));
  isProtocolError(t, () => new MessageReader([lying]).root().list(0, 'items'), /exceed its 2 words/);
});

test('reader: out-of-bounds pointers name the field path', (t) => {
  const m = new MessageReader([seg(structPtr(0, 0, 1), structPtr(50, 1, 0))]);
  isProtocolError(t, () => m.root('Message').struct(0, 'call'), /^Message\.call: struct pointer out of bounds/);
  isProtocolError(t, () => new MessageReader([seg(structPtr(-5, 1, 0))]).root(), /out of bounds/);
});

test('reader: text without its NUL and wrong pointer kinds are rejected', (t) => {
  const noNul = seg(structPtr(0, 0, 1), listPtr(0, 2, 2), Buffer.from('hi\0\0\0\0\0\0'));
  isProtocolError(t, () => new MessageReader([noNul]).root().text(0, 'name'), /not NUL-terminated/);
  const wrongKind = seg(structPtr(0, 0, 1), structPtr(0, 1, 0), u64(0n));
  isProtocolError(t, () => new MessageReader([wrongKind]).root().text(0, 'name'), /expected text, found a struct/);
  const capInStruct = seg(structPtr(0, 0, 1), Buffer.from('0300000000000000', 'hex'));
  isProtocolError(t, () => new MessageReader([capInStruct]).root().struct(0, 's'), /found a capability/);
});

test('reader: a struct pointing at itself stops at the depth limit', (t) => {
  const loop = seg(structPtr(0, 0, 1), structPtr(-1, 0, 1));
  let s = new MessageReader([loop]).root();
  isProtocolError(
    t,
    () => {
      for (let i = 0; i < 1000; i++) s = s.struct(0, 'next');
    },
    /nest deeper/,
  );
});

test('reader: huge lists and repeated reads hit the traversal limit', (t) => {
  const hugeVoid = seg(structPtr(0, 0, 1), listPtr(0, 0, 2 ** 29 - 1));
  isProtocolError(t, () => new MessageReader([hugeVoid]).root().list(0, 'items'), /traversal limit/);
  const data = seg(structPtr(0, 0, 1), listPtr(0, 2, 64), Buffer.alloc(64));
  const m = new MessageReader([data], { traversalWords: 100, depth: 64 });
  const root = m.root();
  isProtocolError(
    t,
    () => {
      for (let i = 0; i < 100; i++) root.data(0, 'bytes');
    },
    /traversal limit/,
  );
});

test('builder: Unimplemented echoes a message as a deep copy that decodes the same', (t) => {
  const original = decodeRpcMessage(new FrameReader().push(encodeFinish(9, false))[0]!);
  const echo = decodeRpcMessage(new FrameReader().push(encodeUnimplemented(original.root))[0]!);
  t.deepEqual(echo.message, { type: 'unimplemented', echoed: { type: 'finish', questionId: 9, releaseResultCaps: false } });
});

test('builder: grows past its initial size and keeps earlier objects intact', (t) => {
  const b = new MessageBuilder(2);
  const root = b.initRoot(1, 2).setU64(0, 42n);
  root.setText(0, 'x'.repeat(1000));
  root.setTextList(1, ['a', '', 'c']);
  const r = new MessageReader([b.segment()]).root();
  t.is(r.u64(0), 42n);
  t.is(r.text(0, 'big').length, 1000);
  const list = r.list(1, 'list');
  t.deepEqual([list.text(0), list.text(1), list.text(2)], ['a', '', 'c']);
});

test('question ids: freed ids are reused most recently freed first; double frees are ignored', (t) => {
  const ids = new QuestionIdAllocator();
  t.deepEqual([ids.allocate(), ids.allocate(), ids.allocate()], [0, 1, 2]);
  ids.release(0);
  ids.release(2);
  ids.release(2);
  t.is(ids.inUse, 1);
  t.deepEqual([ids.allocate(), ids.allocate(), ids.allocate()], [2, 0, 3]);
});
