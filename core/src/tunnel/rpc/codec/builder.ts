import { frameSingleSegment } from './framing.js';
import { ElementSize, type AnyPointerReader, type ListReader, type StructReader } from './reader.js';

/**
 * Builder for single-segment Cap'n Proto messages (all that the tunnel RPC sends).
 *
 * Objects are laid out in the order they are created: the root pointer first, then each struct or list directly
 * when its pointer is set. Writing fields in schema order therefore gives the depth-first canonical-style layout
 * of the recorded byte vectors `golden.test.ts` compares against. Empty `Text`/`Data` are written as null pointers (the form the edge's decoder is known to accept) and
 * zero-sized structs as the offset −1 pointer `fcffffff 00000000`.
 */
export class MessageBuilder {
  buffer: Buffer;
  #words = 0;

  constructor(initialWords = 32) {
    this.buffer = Buffer.alloc(initialWords * 8);
  }

  /** Allocates `words` zeroed words and returns the index of the first. */
  allocate(words: number): number {
    const start = this.#words;
    const needed = (start + words) * 8;
    if (needed > this.buffer.length) {
      const grown = Buffer.alloc(Math.max(needed, this.buffer.length * 2));
      this.buffer.copy(grown, 0, 0, start * 8);
      this.buffer = grown;
    }
    this.#words += words;
    return start;
  }

  /** Allocates the root pointer and the root struct. Call once, first. */
  initRoot(dataWords: number, ptrWords: number): StructBuilder {
    const rootPointer = this.allocate(1);
    return linkStruct(this, rootPointer, dataWords, ptrWords);
  }

  /** The message's only segment (a copy of the used words). */
  segment(): Buffer {
    return Buffer.from(this.buffer.subarray(0, this.#words * 8));
  }

  /** The message in standard stream framing, ready to write. */
  framed(): Buffer {
    return frameSingleSegment(this.buffer.subarray(0, this.#words * 8));
  }
}

/** Write access to one struct of a {@link MessageBuilder}; data offsets are byte offsets in the data section. */
export class StructBuilder {
  constructor(
    readonly builder: MessageBuilder,
    /** Word index of the data section. */
    readonly word: number,
    readonly dataWords: number,
    readonly ptrWords: number,
  ) {}

  #at(byte: number, size: number): number {
    if (byte + size > this.dataWords * 8) throw new RangeError(`data offset ${byte} outside a ${this.dataWords}-word data section`);
    return this.word * 8 + byte;
  }

  #ptr(index: number): number {
    if (index >= this.ptrWords) throw new RangeError(`pointer ${index} outside a ${this.ptrWords}-pointer section`);
    return this.word + this.dataWords + index;
  }

  setU8(byte: number, value: number): this {
    this.builder.buffer.writeUInt8(value, this.#at(byte, 1));
    return this;
  }

  setU16(byte: number, value: number): this {
    this.builder.buffer.writeUInt16LE(value, this.#at(byte, 2));
    return this;
  }

  setU32(byte: number, value: number): this {
    this.builder.buffer.writeUInt32LE(value, this.#at(byte, 4));
    return this;
  }

  setU64(byte: number, value: bigint): this {
    this.builder.buffer.writeBigUInt64LE(value, this.#at(byte, 8));
    return this;
  }

  setI64(byte: number, value: bigint): this {
    this.builder.buffer.writeBigInt64LE(value, this.#at(byte, 8));
    return this;
  }

  /** Stores `value XOR defaultValue` in bit `bit` of the data section. */
  setBool(bit: number, value: boolean, defaultValue = false): this {
    const at = this.#at(bit >>> 3, 1);
    const mask = 1 << (bit & 7);
    const buf = this.builder.buffer;
    buf[at] = value !== defaultValue ? buf[at]! | mask : buf[at]! & ~mask;
    return this;
  }

  /** Allocates a struct for pointer `index` and returns it. */
  initStruct(index: number, dataWords: number, ptrWords: number): StructBuilder {
    return linkStruct(this.builder, this.#ptr(index), dataWords, ptrWords);
  }

  /** Writes `value` as Text (NUL-terminated byte list); "" stays a null pointer. */
  setText(index: number, value: string): this {
    if (value !== '') writeBytes(this.builder, this.#ptr(index), Buffer.from(value, 'utf8'), true);
    return this;
  }

  /** Writes `value` as Data (byte list); an empty buffer stays a null pointer. */
  setData(index: number, value: Uint8Array): this {
    if (value.length > 0) writeBytes(this.builder, this.#ptr(index), value, false);
    return this;
  }

  /** Writes a `List(Text)`; an empty array is still written as an empty pointer list. */
  setTextList(index: number, values: readonly string[]): this {
    const ptr = this.#ptr(index);
    const first = this.builder.allocate(values.length);
    writeListPointer(this.builder.buffer, ptr, first, ElementSize.Pointer, values.length);
    values.forEach((v, i) => {
      if (v !== '') writeBytes(this.builder, first + i, Buffer.from(v, 'utf8'), true);
    });
    return this;
  }

  /** Allocates a composite list of `count` structs (tag word included, even when empty) and returns them. */
  initStructList(index: number, count: number, dataWords: number, ptrWords: number): StructBuilder[] {
    return linkStructList(this.builder, this.#ptr(index), count, dataWords, ptrWords);
  }

  /** Writes a capability pointer naming entry `capIndex` of the enclosing payload's capability table. */
  setCapability(index: number, capIndex: number): this {
    const at = this.#ptr(index) * 8;
    this.builder.buffer.writeUInt32LE(3, at);
    this.builder.buffer.writeUInt32LE(capIndex >>> 0, at + 4);
    return this;
  }

  /** Deep-copies whatever `source` points at into pointer `index` (used to echo a message in `Unimplemented`). */
  copyPointer(index: number, source: AnyPointerReader): this {
    copyInto(this.builder, this.#ptr(index), source);
    return this;
  }
}

function linkStruct(builder: MessageBuilder, ptr: number, dataWords: number, ptrWords: number): StructBuilder {
  if (dataWords === 0 && ptrWords === 0) {
    builder.buffer.writeInt32LE(-4, ptr * 8);
    builder.buffer.writeUInt32LE(0, ptr * 8 + 4);
    return new StructBuilder(builder, ptr, 0, 0);
  }
  const target = builder.allocate(dataWords + ptrWords);
  writeStructPointer(builder.buffer, ptr, target, dataWords, ptrWords);
  return new StructBuilder(builder, target, dataWords, ptrWords);
}

function linkStructList(builder: MessageBuilder, ptr: number, count: number, dataWords: number, ptrWords: number): StructBuilder[] {
  const stride = dataWords + ptrWords;
  const tag = builder.allocate(1 + count * stride);
  writeListPointer(builder.buffer, ptr, tag, ElementSize.Composite, count * stride);
  builder.buffer.writeUInt32LE((count << 2) >>> 0, tag * 8);
  builder.buffer.writeUInt32LE((dataWords | (ptrWords << 16)) >>> 0, tag * 8 + 4);
  return Array.from({ length: count }, (_, i) => new StructBuilder(builder, tag + 1 + i * stride, dataWords, ptrWords));
}

function writeStructPointer(buf: Buffer, ptr: number, target: number, dataWords: number, ptrWords: number): void {
  buf.writeInt32LE((target - ptr - 1) * 4, ptr * 8);
  buf.writeUInt32LE((dataWords | (ptrWords << 16)) >>> 0, ptr * 8 + 4);
}

function writeListPointer(buf: Buffer, ptr: number, target: number, size: ElementSize, count: number): void {
  if (count >= 2 ** 29) throw new RangeError(`list of ${count} elements is too long for a list pointer`);
  buf.writeInt32LE((target - ptr - 1) * 4 + 1, ptr * 8);
  buf.writeUInt32LE((count * 8 + size) >>> 0, ptr * 8 + 4);
}

function writeBytes(builder: MessageBuilder, ptr: number, bytes: Uint8Array, nulTerminated: boolean): void {
  const count = bytes.length + (nulTerminated ? 1 : 0);
  const target = builder.allocate(Math.ceil(count / 8));
  writeListPointer(builder.buffer, ptr, target, ElementSize.Byte, count);
  builder.buffer.set(bytes, target * 8);
}

function copyInto(builder: MessageBuilder, ptr: number, source: AnyPointerReader): void {
  switch (source.kind) {
    case 'null':
      return;
    case 'capability':
      builder.buffer.writeUInt32LE(3, ptr * 8);
      builder.buffer.writeUInt32LE(source.index, ptr * 8 + 4);
      return;
    case 'struct':
      copyStruct(linkStruct(builder, ptr, Math.ceil(source.value.dataBytes / 8), source.value.ptrCount), source.value);
      return;
    case 'list':
      copyList(builder, ptr, source.value);
      return;
  }
}

function copyStruct(dest: StructBuilder, source: StructReader): void {
  if (source.dataBytes > 0) {
    const from = source.message.segments[source.segment]!;
    from.copy(dest.builder.buffer, dest.word * 8, source.word * 8, source.word * 8 + source.dataBytes);
  }
  for (let i = 0; i < source.ptrCount; i++) dest.copyPointer(i, source.pointer(i, `[${i}]`));
}

function copyList(builder: MessageBuilder, ptr: number, source: ListReader): void {
  if (source.elementSize === ElementSize.Composite) {
    const elements = linkStructList(builder, ptr, source.length, source.dataWords, source.ptrWords);
    elements.forEach((e, i) => {
      copyStruct(e, source.struct(i));
    });
    return;
  }
  if (source.elementSize === ElementSize.Pointer) {
    const first = builder.allocate(source.length);
    writeListPointer(builder.buffer, ptr, first, ElementSize.Pointer, source.length);
    for (let i = 0; i < source.length; i++) copyInto(builder, first + i, source.pointer(i));
    return;
  }
  const bytes = source.rawBytes();
  const target = builder.allocate(Math.ceil(bytes.length / 8));
  writeListPointer(builder.buffer, ptr, target, source.elementSize, source.length);
  builder.buffer.set(bytes, target * 8);
}
