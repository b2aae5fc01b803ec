import { huffmanDecodedBound, huffmanDecodeInto } from './huffman.js';

/**
 * HPACK (RFC 7541) for the tunnel's HTTP/2 server: a decoder with a bounded dynamic table for the edge's
 * request headers, and an encoder for responses that never indexes (literal without indexing, static-table
 * names where there are some, no Huffman), so the edge's decoder state is never touched.
 *
 * Header strings are Latin-1 both ways: every byte maps to one character and back, as HTTP/1.1 carries them.
 */

/** RFC 7541 Appendix A; index 1 is the first entry. */
// prettier-ignore
const STATIC_TABLE: ReadonlyArray<readonly [string, string]> = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];

/** Per-entry overhead counted in table and header-list sizes (RFC 7541 §4.1, RFC 9113 §6.5.2). */
export const ENTRY_OVERHEAD = 32;

/** A decoding error: the connection must end with COMPRESSION_ERROR (RFC 9113 §4.3). */
export class HpackError extends Error {}

export interface DecodeLimits {
  /** Header fields (pseudo-headers included) kept; more marks the list as over the limit. */
  readonly maxPairs: number;
  /** Sum of name + value + 32 over the fields kept (SETTINGS_MAX_HEADER_LIST_SIZE). */
  readonly maxListSize: number;
}

export interface DecodedHeaders {
  /** `[name, value, name, value, …]` in wire order. Incomplete when `overLimit`. */
  readonly headers: string[];
  /** The block decoded to more fields or bytes than the limits allow (the stream is refused). */
  readonly overLimit: boolean;
}

/**
 * Decodes header blocks of one connection, in order. The dynamic table never exceeds `maxTableSize`
 * (what this side announced as SETTINGS_HEADER_TABLE_SIZE); a block that asks for more is a COMPRESSION_ERROR.
 * Past the list limits the block is still decoded to the end (the table must stay in step with the peer's
 * encoder) but nothing more is kept, so a small block that expands into a huge list (an "HPACK bomb") costs
 * only the time to walk its bytes.
 */
export class HpackDecoder {
  readonly #maxTableSize: number;
  #capacity: number;
  /**
   * The dynamic table, oldest first from `#oldest` (entries before it are evicted, dropped in bulk now and
   * then): the newest entry, dynamic index 62, is the last. Inserting and evicting are then O(1).
   */
  #names: string[] = [];
  #values: string[] = [];
  #oldest = 0;
  #size = 0;
  // The block being decoded.
  #block: Uint8Array = EMPTY_BLOCK;
  #at = 0;

  constructor(maxTableSize: number) {
    this.#maxTableSize = maxTableSize;
    this.#capacity = maxTableSize;
  }

  /** Bytes the dynamic table holds (entry sizes per RFC 7541 §4.1). */
  get tableSize(): number {
    return this.#size;
  }

  decode(block: Uint8Array, limits: DecodeLimits): DecodedHeaders {
    const headers: string[] = [];
    const maxFields = limits.maxPairs * 2;
    const maxListSize = limits.maxListSize;
    let listSize = 0;
    let overLimit = false;
    let sawField = false;
    const end = block.length;
    this.#block = block;
    this.#at = 0;
    try {
      while (this.#at < end) {
        const byte = block[this.#at]!;
        let name: string;
        let value: string;
        if (byte & 0x80) {
          // Indexed field (§6.1).
          const index = this.#integer(7);
          name = this.#nameAt(index);
          value = this.#valueAt(index);
        } else if (byte & 0x40) {
          // Literal with incremental indexing (§6.2.1).
          const index = this.#integer(6);
          name = index === 0 ? this.#string() : this.#nameAt(index);
          value = this.#string();
          this.#insert(name, value);
        } else if (byte & 0x20) {
          // Dynamic table size update (§6.3): only before the first field of a block.
          if (sawField) throw new HpackError('table size update after a header field');
          const size = this.#integer(5);
          if (size > this.#maxTableSize) throw new HpackError(`table size update to ${size} exceeds ${this.#maxTableSize}`);
          this.#capacity = size;
          this.#evict(0);
          continue;
        } else {
          // Literal without indexing (§6.2.2) or never indexed (§6.2.3): both 4-bit prefixes.
          const index = this.#integer(4);
          name = index === 0 ? this.#string() : this.#nameAt(index);
          value = this.#string();
        }
        sawField = true;
        if (overLimit) continue;
        listSize += name.length + value.length + ENTRY_OVERHEAD;
        if (headers.length >= maxFields || listSize > maxListSize) overLimit = true;
        else headers.push(name, value);
      }
    } finally {
      this.#block = EMPTY_BLOCK;
    }
    return { headers, overLimit };
  }

  #integer(prefixBits: number): number {
    const block = this.#block;
    const mask = (1 << prefixBits) - 1;
    let value = block[this.#at++]! & mask;
    if (value < mask) return value;
    let shift = 0;
    for (;;) {
      if (this.#at >= block.length) throw new HpackError('truncated integer');
      const byte = block[this.#at++]!;
      value += (byte & 0x7f) * 2 ** shift;
      shift += 7;
      if (value > 0x7fffffff) throw new HpackError('integer overflow');
      if ((byte & 0x80) === 0) return value;
    }
  }

  #string(): string {
    const block = this.#block;
    if (this.#at >= block.length) throw new HpackError('truncated string');
    const huffman = (block[this.#at]! & 0x80) !== 0;
    const length = this.#integer(7);
    const from = this.#at;
    if (block.length - from < length) throw new HpackError('truncated string');
    this.#at = from + length;
    if (!huffman) return latin1(block, from, from + length);
    const bound = huffmanDecodedBound(length);
    if (huffmanScratch.length < bound) huffmanScratch = Buffer.allocUnsafe(Math.max(bound, 2 * huffmanScratch.length));
    const written = huffmanDecodeInto(block, from, from + length, huffmanScratch);
    if (written < 0) throw new HpackError('invalid Huffman code');
    return latin1(huffmanScratch, 0, written);
  }

  /** Position in `#names`/`#values` of a dynamic-table index (62 and up), or a static index's negative. */
  #dynamic(index: number): number {
    if (index === 0) throw new HpackError('index 0');
    const i = this.#names.length - 1 - (index - STATIC_TABLE.length - 1);
    if (i < this.#oldest) throw new HpackError(`index ${index} beyond the table`);
    return i;
  }

  #nameAt(index: number): string {
    if (index > 0 && index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1]![0];
    return this.#names[this.#dynamic(index)]!;
  }

  #valueAt(index: number): string {
    if (index > 0 && index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1]![1];
    return this.#values[this.#dynamic(index)]!;
  }

  #insert(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    this.#evict(size);
    if (size > this.#capacity) return; // An entry larger than the table empties it (§4.4).
    this.#names.push(name);
    this.#values.push(value);
    this.#size += size;
  }

  /** Evicts oldest entries until `incoming` more bytes fit the capacity. */
  #evict(incoming: number): void {
    const names = this.#names;
    const values = this.#values;
    let oldest = this.#oldest;
    while (oldest < names.length && this.#size + incoming > this.#capacity) {
      this.#size -= names[oldest]!.length + values[oldest]!.length + ENTRY_OVERHEAD;
      oldest++;
    }
    if (oldest === names.length) {
      names.length = 0;
      values.length = 0;
      oldest = 0;
    } else if (oldest >= 64 && oldest * 2 >= names.length) {
      // Evicted entries are dropped in bulk, once they are at least half of the arrays.
      names.splice(0, oldest);
      values.splice(0, oldest);
      oldest = 0;
    }
    this.#oldest = oldest;
  }
}

const EMPTY_BLOCK = new Uint8Array(0);
/** Where Huffman-coded strings are decoded before they become strings (grown as needed). */
let huffmanScratch = Buffer.allocUnsafe(4096);

function latin1(bytes: Uint8Array, from: number, to: number): string {
  return Buffer.prototype.latin1Slice.call(bytes, from, to) as string;
}

/** Static-table index of each name (first occurrence), and of each name's full pairs where it has some. */
const NAME_INDEX = new Map<string, number>();
const PAIR_INDEX = new Map<string, Map<string, number>>();
STATIC_TABLE.forEach(([name, value], i) => {
  if (!NAME_INDEX.has(name)) NAME_INDEX.set(name, i + 1);
  if (value === '') return;
  let values = PAIR_INDEX.get(name);
  if (!values) PAIR_INDEX.set(name, (values = new Map()));
  values.set(value, i + 1);
});

function writeInteger(out: Buffer, at: number, value: number, prefixBits: number, flags: number): number {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out[at] = flags | value;
    return at + 1;
  }
  out[at++] = flags | max;
  value -= max;
  while (value >= 128) {
    out[at++] = (value % 128) | 0x80;
    value = Math.floor(value / 128);
  }
  out[at++] = value;
  return at;
}

/**
 * Encodes a header list (`[name, value, …]`, names lower-case) as one header block: fully indexed when
 * the static table has the pair (`:status: 200`), else a literal without indexing, with the static table's
 * name index where it has the name. Strings are Latin-1, not Huffman-coded. The block starts after `reserve`
 * bytes left for the caller (a frame header), in a Buffer of exactly the size needed.
 */
export function encodeHeaderBlock(headers: readonly string[], reserve = 0): Buffer {
  // Each field takes at most its strings plus a prefix byte and two 5-byte integers.
  let bound = reserve;
  for (let i = 0; i < headers.length; i++) bound += headers[i]!.length + 6;
  if (encodeScratch.length < bound) encodeScratch = Buffer.allocUnsafe(Math.max(bound, 2 * encodeScratch.length));
  const out = encodeScratch;
  let at = reserve;
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i]!;
    const value = headers[i + 1]!;
    const pair = PAIR_INDEX.get(name)?.get(value);
    if (pair !== undefined) {
      out[at++] = 0x80 | pair;
      continue;
    }
    const nameIndex = NAME_INDEX.get(name);
    if (nameIndex === undefined) {
      out[at++] = 0;
      at = writeInteger(out, at, name.length, 7, 0);
      at += out.write(name, at, 'latin1');
    } else at = writeInteger(out, at, nameIndex, 4, 0);
    at = writeInteger(out, at, value.length, 7, 0);
    at += out.write(value, at, 'latin1');
  }
  // The scratch is reused by the next block: the result is a copy of exactly the bytes written.
  const block = Buffer.allocUnsafe(at);
  out.copy(block, 0, 0, at);
  return block;
}

/** Where header blocks are encoded (grown as needed, up to the largest block sent). */
let encodeScratch = Buffer.allocUnsafe(4096);
