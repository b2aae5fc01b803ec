import { huffmanDecode } from './huffman.js';

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
  /** Newest first: `#names[0]` is dynamic index 62. */
  #names: string[] = [];
  #values: string[] = [];
  #size = 0;

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
    let listSize = 0;
    let overLimit = false;
    let at = 0;
    const end = block.length;
    let sawField = false;
    const keep = (name: string, value: string) => {
      if (overLimit) return;
      listSize += name.length + value.length + ENTRY_OVERHEAD;
      if (headers.length / 2 >= limits.maxPairs || listSize > limits.maxListSize) {
        overLimit = true;
        return;
      }
      headers.push(name, value);
    };
    const integer = (prefixBits: number): number => {
      const mask = (1 << prefixBits) - 1;
      let value = block[at++]! & mask;
      if (value < mask) return value;
      let shift = 0;
      for (;;) {
        if (at >= end) throw new HpackError('truncated integer');
        const byte = block[at++]!;
        value += (byte & 0x7f) * 2 ** shift;
        shift += 7;
        if (value > 0x7fffffff) throw new HpackError('integer overflow');
        if ((byte & 0x80) === 0) return value;
      }
    };
    const string = (): string => {
      if (at >= end) throw new HpackError('truncated string');
      const huffman = (block[at]! & 0x80) !== 0;
      const length = integer(7);
      if (end - at < length) throw new HpackError('truncated string');
      const from = at;
      at += length;
      if (!huffman) return latin1(block, from, at);
      const decoded = huffmanDecode(block, from, at);
      if (!decoded) throw new HpackError('invalid Huffman code');
      return latin1(decoded, 0, decoded.length);
    };
    while (at < end) {
      const byte = block[at]!;
      if (byte & 0x80) {
        // Indexed field (§6.1).
        const index = integer(7);
        const [name, value] = this.#entry(index);
        keep(name, value);
        sawField = true;
      } else if (byte & 0x40) {
        // Literal with incremental indexing (§6.2.1).
        const index = integer(6);
        const name = index === 0 ? string() : this.#entry(index)[0];
        const value = string();
        this.#insert(name, value);
        keep(name, value);
        sawField = true;
      } else if (byte & 0x20) {
        // Dynamic table size update (§6.3): only before the first field of a block.
        if (sawField) throw new HpackError('table size update after a header field');
        const size = integer(5);
        if (size > this.#maxTableSize) throw new HpackError(`table size update to ${size} exceeds ${this.#maxTableSize}`);
        this.#capacity = size;
        this.#evict(0);
      } else {
        // Literal without indexing (§6.2.2) or never indexed (§6.2.3): both 4-bit prefixes.
        const index = integer(4);
        const name = index === 0 ? string() : this.#entry(index)[0];
        const value = string();
        keep(name, value);
        sawField = true;
      }
    }
    return { headers, overLimit };
  }

  #entry(index: number): readonly [string, string] {
    if (index === 0) throw new HpackError('index 0');
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1]!;
    const i = index - STATIC_TABLE.length - 1;
    if (i >= this.#names.length) throw new HpackError(`index ${index} beyond the table`);
    return [this.#names[i]!, this.#values[i]!];
  }

  #insert(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    this.#evict(size);
    if (size > this.#capacity) return; // An entry larger than the table empties it (§4.4).
    this.#names.unshift(name);
    this.#values.unshift(value);
    this.#size += size;
  }

  /** Evicts oldest entries until `incoming` more bytes fit the capacity. */
  #evict(incoming: number): void {
    while (this.#names.length > 0 && this.#size + incoming > this.#capacity) {
      const name = this.#names.pop()!;
      const value = this.#values.pop()!;
      this.#size -= name.length + value.length + ENTRY_OVERHEAD;
    }
  }
}

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
 * name index where it has the name. Strings are Latin-1, not Huffman-coded.
 */
export function encodeHeaderBlock(headers: readonly string[]): Buffer {
  // Each field takes at most its strings plus a prefix byte and two 5-byte integers.
  let bound = 0;
  for (let i = 0; i < headers.length; i++) bound += headers[i]!.length + 6;
  const out = Buffer.allocUnsafe(bound);
  let at = 0;
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
  return out.subarray(0, at);
}
