import { protocolError } from './protocol-error.js';

/**
 * Schema-less reader for Cap'n Proto messages in the standard binary encoding (segments, words, pointers).
 *
 * Why not capnp-es: its readers are built around generated classes, its framing allocates per declared segment
 * before checking bounds, and its errors are plain `Error`s. The tunnel RPC needs a dozen fixed structs, exact
 * field paths in errors and hard limits against hostile peers, which this small reader gives directly.
 *
 * Every accessor is bounds-checked; anything malformed throws a `TunnelProtocol` WarrenError naming the field path.
 * Reads outside a (shorter) struct's sections yield the field's default (0 / false / null), as the spec requires.
 */

/** Limits applied while traversing one message (amplification and recursion guards). */
export interface ReadLimits {
  /** Words that may be visited in total; zero-sized list elements count one word each. */
  traversalWords: number;
  /** Maximum pointer nesting depth. */
  depth: number;
}

export const DEFAULT_READ_LIMITS: Readonly<ReadLimits> = Object.freeze({ traversalWords: 8 * 1024 * 1024, depth: 64 });

/** List element size codes (pointer bits 32–34). */
export const ElementSize = {
  Void: 0,
  Bit: 1,
  Byte: 2,
  TwoBytes: 3,
  FourBytes: 4,
  EightBytes: 5,
  Pointer: 6,
  Composite: 7,
} as const;
export type ElementSize = (typeof ElementSize)[keyof typeof ElementSize];

/** Bits per element for each non-composite element size. */
const ELEMENT_BITS: readonly number[] = [0, 1, 8, 16, 32, 64, 64];

/** A resolved pointer of any kind (the value of an `AnyPointer` field). */
export type AnyPointerReader =
  | { readonly kind: 'null' }
  | { readonly kind: 'struct'; readonly value: StructReader }
  | { readonly kind: 'list'; readonly value: ListReader }
  | { readonly kind: 'capability'; readonly index: number };

const NULL_POINTER: AnyPointerReader = Object.freeze({ kind: 'null' });

/** One framed message, ready to be read from its root pointer. */
export class MessageReader {
  readonly segments: readonly Buffer[];
  #traversalLeft: number;
  readonly #depth: number;

  constructor(segments: readonly Buffer[], limits: ReadLimits = DEFAULT_READ_LIMITS) {
    if (segments.length === 0 || segments[0]!.length < 8) throw protocolError('message has no root pointer');
    for (const [i, s] of segments.entries()) {
      if (s.length % 8 !== 0) throw protocolError(`segment ${i} is not a whole number of words`);
    }
    this.segments = segments;
    this.#traversalLeft = limits.traversalWords;
    this.#depth = limits.depth;
  }

  /** The root struct (a null root reads as an empty struct). */
  root(path = 'root'): StructReader {
    const p = this.resolve(0, 0, this.#depth, path);
    if (p.kind === 'null') return emptyStruct(this, path);
    if (p.kind !== 'struct') throw protocolError(`${path}: expected a struct pointer, found a ${p.kind}`);
    return p.value;
  }

  /**
   * Resolves the pointer in word `word` of segment `segment` (following far and double-far pointers).
   * Internal to the codec; `depth` is what the target may still nest.
   */
  resolve(segment: number, word: number, depth: number, path: string): AnyPointerReader {
    const seg = this.segments[segment]!;
    const lo = seg.readUInt32LE(word * 8);
    const hi = seg.readUInt32LE(word * 8 + 4);
    if (lo === 0 && hi === 0) return NULL_POINTER;
    if (depth <= 0) throw protocolError(`${path}: pointers nest deeper than the limit`);
    const kind = lo & 3;
    if (kind === 3) {
      if (lo !== 3) throw protocolError(`${path}: unknown "other" pointer 0x${lo.toString(16)}`);
      return { kind: 'capability', index: hi };
    }
    if (kind !== 2) return this.#resolveNear(segment, word + 1 + ((lo | 0) >> 2), lo, hi, depth, path);
    // Far pointer: bit 2 = double-far, bits 3–31 = landing pad word, bits 32–63 = landing pad segment.
    const padSegment = this.#segment(hi, path);
    const padWord = lo >>> 3;
    const doubleFar = (lo & 4) !== 0;
    if (padWord + (doubleFar ? 2 : 1) > padSegment.length / 8) throw protocolError(`${path}: far pointer lands outside its segment`);
    const padLo = padSegment.readUInt32LE(padWord * 8);
    const padHi = padSegment.readUInt32LE(padWord * 8 + 4);
    if (!doubleFar) {
      if ((padLo & 3) === 2 || (padLo & 3) === 3) throw protocolError(`${path}: far pointer landing pad is not a struct or list pointer`);
      if (padLo === 0 && padHi === 0) return NULL_POINTER;
      return this.#resolveNear(hi, padWord + 1 + ((padLo | 0) >> 2), padLo, padHi, depth, path);
    }
    // Double-far: pad word 0 is a plain far pointer to the content, pad word 1 is the tag describing it.
    if ((padLo & 7) !== 2) throw protocolError(`${path}: double-far landing pad does not start with a single far pointer`);
    const tagLo = padSegment.readUInt32LE(padWord * 8 + 8);
    const tagHi = padSegment.readUInt32LE(padWord * 8 + 12);
    if ((tagLo & 3) > 1) throw protocolError(`${path}: double-far tag is not a struct or list pointer`);
    this.#segment(padHi, path);
    return this.#resolveNear(padHi, padLo >>> 3, tagLo, tagHi, depth, path);
  }

  /** Decodes a struct or list pointer word (`lo`, `hi`) whose content starts at `target` in `segment`. */
  #resolveNear(segment: number, target: number, lo: number, hi: number, depth: number, path: string): AnyPointerReader {
    const seg = this.segments[segment]!;
    const segWords = seg.length / 8;
    if ((lo & 3) === 0) {
      const dataWords = hi & 0xffff;
      const ptrWords = hi >>> 16;
      if (target < 0 || target + dataWords + ptrWords > segWords) throw protocolError(`${path}: struct pointer out of bounds`);
      this.#charge(Math.max(1, dataWords + ptrWords), path);
      return { kind: 'struct', value: new StructReader(this, segment, target, dataWords * 8, ptrWords, depth - 1, path) };
    }
    const elementSize = (hi & 7) as ElementSize;
    const count = hi >>> 3;
    if (elementSize === ElementSize.Composite) {
      // `count` is the number of content words; the tag word before them holds the element count and sizes.
      if (target < 0 || target + 1 + count > segWords) throw protocolError(`${path}: composite list out of bounds`);
      const tagLo = seg.readUInt32LE(target * 8);
      const tagHi = seg.readUInt32LE(target * 8 + 4);
      if ((tagLo & 3) !== 0) throw protocolError(`${path}: composite list tag is not a struct tag`);
      const length = tagLo >>> 2;
      const dataWords = tagHi & 0xffff;
      const ptrWords = tagHi >>> 16;
      if (length * (dataWords + ptrWords) > count) throw protocolError(`${path}: composite list elements exceed its ${count} words`);
      this.#charge(Math.max(count, length), path);
      return {
        kind: 'list',
        value: new ListReader(this, segment, target + 1, elementSize, length, dataWords, ptrWords, depth - 1, path),
      };
    }
    const words = Math.ceil((count * ELEMENT_BITS[elementSize]!) / 64);
    if (target < 0 || target + words > segWords) throw protocolError(`${path}: list pointer out of bounds`);
    this.#charge(Math.max(words, elementSize === ElementSize.Void ? count : 0), path);
    const ptrWords = elementSize === ElementSize.Pointer ? 1 : 0;
    return { kind: 'list', value: new ListReader(this, segment, target, elementSize, count, 0, ptrWords, depth - 1, path) };
  }

  #segment(id: number, path: string): Buffer {
    const seg = this.segments[id];
    if (!seg) throw protocolError(`${path}: far pointer names missing segment ${id}`);
    return seg;
  }

  #charge(words: number, path: string): void {
    this.#traversalLeft -= words;
    if (this.#traversalLeft < 0) throw protocolError(`${path}: message traversal limit exceeded`);
  }
}

function emptyStruct(message: MessageReader, path: string): StructReader {
  return new StructReader(message, 0, 0, 0, 0, 0, path);
}

/** Read access to one struct. `path` names it in error messages. */
export class StructReader {
  constructor(
    readonly message: MessageReader,
    readonly segment: number,
    /** Word index of the data section. */
    readonly word: number,
    readonly dataBytes: number,
    readonly ptrCount: number,
    /** Nesting depth still allowed below this struct. */
    readonly depth: number,
    readonly path: string,
  ) {}

  #buf(): Buffer {
    return this.message.segments[this.segment]!;
  }

  u8(byte: number): number {
    return byte + 1 <= this.dataBytes ? this.#buf()[this.word * 8 + byte]! : 0;
  }

  u16(byte: number): number {
    return byte + 2 <= this.dataBytes ? this.#buf().readUInt16LE(this.word * 8 + byte) : 0;
  }

  u32(byte: number): number {
    return byte + 4 <= this.dataBytes ? this.#buf().readUInt32LE(this.word * 8 + byte) : 0;
  }

  u64(byte: number): bigint {
    return byte + 8 <= this.dataBytes ? this.#buf().readBigUInt64LE(this.word * 8 + byte) : 0n;
  }

  i64(byte: number): bigint {
    return byte + 8 <= this.dataBytes ? this.#buf().readBigInt64LE(this.word * 8 + byte) : 0n;
  }

  /** Bit `bit` of the data section, XORed with `defaultValue` (fields are stored XOR their default). */
  bool(bit: number, defaultValue = false): boolean {
    const byte = bit >>> 3;
    const raw = byte < this.dataBytes ? (this.#buf()[this.word * 8 + byte]! >> (bit & 7)) & 1 : 0;
    return (raw === 1) !== defaultValue;
  }

  /** Pointer slot `index` resolved to whatever it points at. */
  pointer(index: number, name: string): AnyPointerReader {
    if (index >= this.ptrCount) return NULL_POINTER;
    return this.message.resolve(this.segment, this.word + this.dataBytes / 8 + index, this.depth, `${this.path}.${name}`);
  }

  /** A struct field; null reads as an empty struct (all defaults). */
  struct(index: number, name: string): StructReader {
    const p = this.pointer(index, name);
    if (p.kind === 'struct') return p.value;
    if (p.kind === 'null') return emptyStruct(this.message, `${this.path}.${name}`);
    throw protocolError(`${this.path}.${name}: expected a struct pointer, found a ${p.kind}`);
  }

  /** A `Text` field; null reads as "". The text must be a byte list ending in NUL. */
  text(index: number, name: string): string {
    const p = this.pointer(index, name);
    return p.kind === 'null' ? '' : textOf(p, `${this.path}.${name}`);
  }

  /** A `Data` field as a copy; null reads as an empty buffer. */
  data(index: number, name: string): Buffer {
    const p = this.pointer(index, name);
    if (p.kind === 'null') return Buffer.alloc(0);
    return bytesOf(p, `${this.path}.${name}`);
  }

  /** A list field; null reads as an empty list. */
  list(index: number, name: string): ListReader {
    const p = this.pointer(index, name);
    if (p.kind === 'list') return p.value;
    if (p.kind === 'null') return new ListReader(this.message, 0, 0, ElementSize.Void, 0, 0, 0, 0, `${this.path}.${name}`);
    throw protocolError(`${this.path}.${name}: expected a list pointer, found a ${p.kind}`);
  }
}

/** Read access to one list of any element size. */
export class ListReader {
  constructor(
    readonly message: MessageReader,
    readonly segment: number,
    /** Word index of the first element (after the tag for composite lists). */
    readonly word: number,
    readonly elementSize: ElementSize,
    readonly length: number,
    /** Per-element sizes (composite lists; `ptrWords` is 1 for pointer lists). */
    readonly dataWords: number,
    readonly ptrWords: number,
    readonly depth: number,
    readonly path: string,
  ) {}

  /** Element `i` of a composite (struct) list. */
  struct(i: number): StructReader {
    if (this.elementSize !== ElementSize.Composite) {
      throw protocolError(`${this.path}: expected a list of structs, found element size ${this.elementSize}`);
    }
    this.#check(i);
    const stride = this.dataWords + this.ptrWords;
    return new StructReader(this.message, this.segment, this.word + i * stride, this.dataWords * 8, this.ptrWords, this.depth, `${this.path}[${i}]`);
  }

  /** Element `i` of a pointer list, resolved. */
  pointer(i: number): AnyPointerReader {
    if (this.elementSize !== ElementSize.Pointer) {
      throw protocolError(`${this.path}: expected a list of pointers, found element size ${this.elementSize}`);
    }
    this.#check(i);
    return this.message.resolve(this.segment, this.word + i, this.depth, `${this.path}[${i}]`);
  }

  /** Element `i` of a `List(Text)`; null reads as "". */
  text(i: number): string {
    const p = this.pointer(i);
    return p.kind === 'null' ? '' : textOf(p, `${this.path}[${i}]`);
  }

  /** The raw content bytes of a primitive list (element size void … eight bytes), not copied. */
  rawBytes(): Buffer {
    if (this.elementSize >= ElementSize.Pointer) throw protocolError(`${this.path}: not a primitive list`);
    const bytes = Math.ceil((this.length * ELEMENT_BITS[this.elementSize]!) / 8);
    return this.message.segments[this.segment]!.subarray(this.word * 8, this.word * 8 + bytes);
  }

  #check(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.length) throw protocolError(`${this.path}[${i}]: index out of range`);
  }
}

function bytesOf(p: AnyPointerReader, path: string): Buffer {
  if (p.kind !== 'list' || p.value.elementSize !== ElementSize.Byte) {
    throw protocolError(`${path}: expected a byte list, found ${p.kind === 'list' ? `element size ${p.value.elementSize}` : `a ${p.kind}`}`);
  }
  return Buffer.from(p.value.rawBytes());
}

function textOf(p: AnyPointerReader, path: string): string {
  if (p.kind !== 'list' || p.value.elementSize !== ElementSize.Byte) {
    throw protocolError(`${path}: expected text, found ${p.kind === 'list' ? `element size ${p.value.elementSize}` : `a ${p.kind}`}`);
  }
  const bytes = p.value.rawBytes();
  if (bytes.length === 0 || bytes[bytes.length - 1] !== 0) throw protocolError(`${path}: text is not NUL-terminated`);
  return bytes.toString('utf8', 0, bytes.length - 1);
}
