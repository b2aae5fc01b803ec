/**
 * The HPACK Huffman code (RFC 7541 §5.2, Appendix B), decoding only: responses are encoded without it.
 *
 * The code is canonical: codes of one length are consecutive and ordered by symbol, and each length starts
 * where the previous one ended, shifted left. So the 257 code lengths are all the table there is; codes are
 * derived from them at load. Decoding walks a 4-bit-at-a-time state machine built from those codes.
 */

/** Code length in bits of each symbol 0–255 and EOS (256), as the RFC's table gives them. */
// prettier-ignore
const LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11,
  8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6,
  5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23,
  24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22,
  23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22,
  25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30,
];

const EOS = 256;

/** Codes derived canonically from {@link LENGTHS}: `CODES[sym]` right-aligned in `LENGTHS[sym]` bits. */
export const HUFFMAN_CODES: readonly number[] = (() => {
  const order = LENGTHS.map((len, sym) => ({ len, sym })).sort((a, b) => a.len - b.len || a.sym - b.sym);
  const codes = new Array<number>(LENGTHS.length);
  let code = 0;
  let len = order[0]!.len;
  for (const entry of order) {
    code *= 2 ** (entry.len - len);
    len = entry.len;
    codes[entry.sym] = code;
    code++;
  }
  return codes;
})();

export const HUFFMAN_LENGTHS: readonly number[] = LENGTHS;

/**
 * Decoder states: a binary tree of the code, walked 4 bits at a time. For state s and nibble n,
 * `NEXT[s * 16 + n]` is the state reached, `EMIT[...]` the symbol completed on the way (−1: none; a nibble
 * completes at most one symbol since no code is shorter than 5 bits), and `FAIL[...]` is set when the walk hit
 * EOS (a decoding error). `ACCEPT[s]` says whether ending in state s is valid padding: at most 7 bits, all
 * ones (a prefix of EOS).
 */
interface Machine {
  readonly next: Uint16Array;
  readonly emit: Int16Array;
  readonly fail: Uint8Array;
  readonly accept: Uint8Array;
}

const MACHINE: Machine = (() => {
  // Binary tree: node 0 is the root; child[node * 2 + bit]; leaf symbols stored as −(sym + 1).
  const child: number[] = [0, 0];
  let nodes = 1;
  for (let sym = 0; sym < LENGTHS.length; sym++) {
    let node = 0;
    const len = LENGTHS[sym]!;
    const code = HUFFMAN_CODES[sym]!;
    for (let i = len - 1; i >= 0; i--) {
      const bit = Math.floor(code / 2 ** i) & 1;
      const slot = node * 2 + bit;
      if (i === 0) {
        child[slot] = -(sym + 1);
      } else {
        if (child[slot] === 0) {
          child[slot] = nodes++;
          child.push(0, 0);
        }
        node = child[slot]!;
      }
    }
  }
  // Depth and all-ones-ness of each internal node, for padding acceptance.
  const depth = new Array<number>(nodes).fill(0);
  const ones = new Array<boolean>(nodes).fill(false);
  ones[0] = true;
  for (let n = 0; n < nodes; n++) {
    for (const bit of [0, 1]) {
      const c = child[n * 2 + bit]!;
      if (c > 0) {
        depth[c] = depth[n]! + 1;
        ones[c] = ones[n]! && bit === 1;
      }
    }
  }
  const next = new Uint16Array(nodes * 16);
  const emit = new Int16Array(nodes * 16).fill(-1);
  const fail = new Uint8Array(nodes * 16);
  const accept = new Uint8Array(nodes);
  for (let n = 0; n < nodes; n++) {
    accept[n] = ones[n] && depth[n]! <= 7 ? 1 : 0;
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = n;
      let sym = -1;
      let failed = false;
      for (let i = 3; i >= 0; i--) {
        const c = child[node * 2 + ((nibble >> i) & 1)]!;
        if (c < 0) {
          const s = -c - 1;
          if (s === EOS) failed = true;
          sym = s;
          node = 0;
        } else node = c;
      }
      next[n * 16 + nibble] = node;
      emit[n * 16 + nibble] = failed ? -1 : sym;
      fail[n * 16 + nibble] = failed ? 1 : 0;
    }
  }
  return { next, emit, fail, accept };
})();

/** Decodes a Huffman-coded string literal into bytes; undefined when the input is not valid (RFC 7541 §5.2). */
export function huffmanDecode(input: Uint8Array, start: number, end: number): Buffer | undefined {
  const out = Buffer.allocUnsafe(huffmanDecodedBound(end - start));
  const written = huffmanDecodeInto(input, start, end, out);
  return written < 0 ? undefined : out.subarray(0, written);
}

/** The most bytes `length` Huffman-coded bytes decode to: every code is at least 5 bits. */
export function huffmanDecodedBound(length: number): number {
  return Math.ceil((length * 8) / 5);
}

/**
 * Decodes into `out` (at least {@link huffmanDecodedBound} bytes) and returns the bytes written, or −1 when
 * the input is not valid.
 */
export function huffmanDecodeInto(input: Uint8Array, start: number, end: number, out: Uint8Array): number {
  const { next, emit, fail, accept } = MACHINE;
  let written = 0;
  let state = 0;
  for (let i = start; i < end; i++) {
    const byte = input[i]!;
    let index = state * 16 + (byte >> 4);
    if (fail[index]) return -1;
    let sym = emit[index]!;
    if (sym >= 0) out[written++] = sym;
    state = next[index]!;
    index = state * 16 + (byte & 0x0f);
    if (fail[index]) return -1;
    sym = emit[index]!;
    if (sym >= 0) out[written++] = sym;
    state = next[index]!;
  }
  return accept[state] ? written : -1;
}

/** Huffman-encodes bytes (used by tests and peers written in this project; responses go out as plain literals). */
export function huffmanEncode(input: Uint8Array): Buffer {
  let bits = 0;
  for (const byte of input) bits += LENGTHS[byte]!;
  const out = Buffer.alloc(Math.ceil(bits / 8));
  let acc = 0;
  let accBits = 0;
  let at = 0;
  for (const byte of input) {
    const len = LENGTHS[byte]!;
    const code = HUFFMAN_CODES[byte]!;
    for (let i = len - 1; i >= 0; i--) {
      acc = (acc << 1) | (Math.floor(code / 2 ** i) & 1);
      if (++accBits === 8) {
        out[at++] = acc;
        acc = 0;
        accBits = 0;
      }
    }
  }
  if (accBits > 0) out[at] = (acc << (8 - accBits)) | (0xff >> accBits);
  return out;
}
