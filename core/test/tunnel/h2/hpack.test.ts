import test from 'ava';
import { encodeHeaderBlock, HpackDecoder, HpackError } from '../../../src/tunnel/h2/hpack.js';
import { huffmanDecode, huffmanEncode } from '../../../src/tunnel/h2/huffman.js';

/** RFC 7541 Appendix C: each block decoded in order by one decoder, with the table size after it. */

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const wide = { maxPairs: 1000, maxListSize: 1 << 20 };

function decodeSequence(t: import('ava').ExecutionContext, tableSize: number, steps: Array<[string, string[], number]>) {
  const decoder = new HpackDecoder(tableSize);
  for (const [block, expected, size] of steps) {
    const { headers, overLimit } = decoder.decode(hex(block), wide);
    t.false(overLimit);
    t.deepEqual(headers, expected);
    t.is(decoder.tableSize, size);
  }
}

const steps = (blocks: string[], expected: Array<[string[], number]>): Array<[string, string[], number]> => blocks.map((b, i) => [b, expected[i]![0], expected[i]![1]]);

test('C.2: literal representations and an indexed field', (t) => {
  decodeSequence(t, 4096, [['400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572', ['custom-key', 'custom-header'], 55]]);
  decodeSequence(t, 4096, [['040c 2f73 616d 706c 652f 7061 7468', [':path', '/sample/path'], 0]]);
  decodeSequence(t, 4096, [['1008 7061 7373 776f 7264 0673 6563 7265 74', ['password', 'secret'], 0]]);
  decodeSequence(t, 4096, [['82', [':method', 'GET'], 0]]);
});

const requests: Array<[string[], number]> = [
  [[':method', 'GET', ':scheme', 'http', ':path', '/', ':authority', 'www.example.com'], 57],
  [[':method', 'GET', ':scheme', 'http', ':path', '/', ':authority', 'www.example.com', 'cache-control', 'no-cache'], 110],
  [[':method', 'GET', ':scheme', 'https', ':path', '/index.html', ':authority', 'www.example.com', 'custom-key', 'custom-value'], 164],
];

test('C.3: requests without Huffman coding share the dynamic table', (t) => {
  const blocks = [
    '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
    '8286 84be 5808 6e6f 2d63 6163 6865',
    '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
  ];
  decodeSequence(t, 4096, steps(blocks, requests));
});

test('C.4: requests with Huffman coding', (t) => {
  const blocks = ['8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff', '8286 84be 5886 a8eb 1064 9cbf', '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf'];
  decodeSequence(t, 4096, steps(blocks, requests));
});

const responses: Array<[string[], number]> = [
  [[':status', '302', 'cache-control', 'private', 'date', 'Mon, 21 Oct 2013 20:13:21 GMT', 'location', 'https://www.example.com'], 222],
  [[':status', '307', 'cache-control', 'private', 'date', 'Mon, 21 Oct 2013 20:13:21 GMT', 'location', 'https://www.example.com'], 222],
  [
    [
      ':status',
      '200',
      'cache-control',
      'private',
      'date',
      'Mon, 21 Oct 2013 20:13:22 GMT',
      'location',
      'https://www.example.com',
      'content-encoding',
      'gzip',
      'set-cookie',
      'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1',
    ],
    215,
  ],
];

test('C.5: responses without Huffman coding evict from a 256-byte table', (t) => {
  const blocks = [
    '4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
    '4803 3330 37c1 c0bf',
    '88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31',
  ];
  decodeSequence(t, 256, steps(blocks, responses));
});

test('C.6: responses with Huffman coding', (t) => {
  const blocks = [
    '4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3',
    '4883 640e ffc1 c0bf',
    '88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07',
  ];
  decodeSequence(t, 256, steps(blocks, responses));
});

test('Huffman: every byte round-trips; EOS, long padding and non-ones padding are errors', (t) => {
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const encoded = huffmanEncode(all);
  t.deepEqual(huffmanDecode(encoded, 0, encoded.length), all);
  t.deepEqual(huffmanEncode(Buffer.from('www.example.com')), hex('f1e3c2e5f23a6ba0ab90f4ff'));
  t.is(huffmanDecode(hex('ffffffff'), 0, 4), undefined, 'EOS (30 ones) inside the string');
  t.is(huffmanDecode(hex('1fff'), 0, 2), undefined, "'a' then 11 bits of padding");
  t.is(huffmanDecode(hex('00'), 0, 1), undefined, "'0' then padding that is not all ones");
  t.deepEqual(huffmanDecode(hex('07'), 0, 1), Buffer.from('0'), "'0' then three ones");
});

test('the encoder writes what the decoder reads: static pairs indexed, static names referenced, other names literal', (t) => {
  const list = [':status', '200', 'content-length', '12', 'cf-cloudflared-response-meta', '{"src":"origin"}', 'x-latin1', 'caf\u00e9', 'x-empty', ''];
  const block = encodeHeaderBlock(list);
  t.is(block[0], 0x88, ':status 200 is static index 8');
  t.deepEqual(block.subarray(1, 5), hex('0f0d 0231'), 'content-length by name index 28, literal without indexing');
  const decoder = new HpackDecoder(4096);
  t.deepEqual(decoder.decode(block, wide).headers, list);
  t.is(decoder.tableSize, 0, 'nothing was indexed');
  t.deepEqual(encodeHeaderBlock([':path', '/sample/path']), hex('040c 2f73 616d 706c 652f 7061 7468'), 'C.2.2 byte for byte');
  const long = 'v'.repeat(300);
  t.deepEqual(new HpackDecoder(4096).decode(encodeHeaderBlock(['x-long', long]), wide).headers, ['x-long', long], 'multi-byte integers');
});

test('decoding errors: table size update beyond our setting or after a field, bad index, truncation', (t) => {
  const decode = (block: string) => new HpackDecoder(4096).decode(hex(block), wide);
  t.throws(() => decode('3fe21f'), { instanceOf: HpackError }, 'size update to 8192');
  t.notThrows(() => decode('3fe11f 82'), 'size update to 4096 then a field');
  t.throws(() => decode('82 20'), { instanceOf: HpackError }, 'size update after a field');
  t.throws(() => decode('80'), { instanceOf: HpackError }, 'index 0');
  t.throws(() => decode('be'), { instanceOf: HpackError }, 'index 62 with an empty table');
  t.throws(() => decode('400a 6375'), { instanceOf: HpackError }, 'truncated string');
  t.throws(() => decode('ff ff ff ff ff 0f'), { instanceOf: HpackError }, 'integer overflow');
});

test('an HPACK bomb: a block expanding past the list limit is cut, the table still follows the encoder', (t) => {
  const decoder = new HpackDecoder(4096);
  const value = 'x'.repeat(4000);
  // Insert one 4 KiB entry, then reference it 2,000 times: a 2 KiB block that would expand to 8 MB.
  const insert = Buffer.concat([hex('40 01 62 7f a1 1e'), Buffer.from(value)]);
  t.is(insert.length, 6 + 4000);
  const block = Buffer.concat([insert, Buffer.alloc(2000, 0xbe)]);
  const result = decoder.decode(block, { maxPairs: 1000, maxListSize: 65_536 });
  t.true(result.overLimit);
  t.true(result.headers.length / 2 <= 16, `kept ${result.headers.length / 2} fields`);
  t.is(decoder.tableSize, 4000 + 1 + 32, 'the inserted entry is in the table');
  t.deepEqual(decoder.decode(hex('be'), wide).headers, ['b', value], 'the next block still decodes against it');
  const pairs = decoder.decode(Buffer.alloc(20, 0x82), { maxPairs: 8, maxListSize: 65_536 });
  t.true(pairs.overLimit, 'more fields than maxPairs');
  t.is(pairs.headers.length, 16);
});

/** An HPACK integer (RFC 7541 §5.1) with `flags` in the first byte's high bits. */
function integer(value: number, prefixBits: number, flags: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([flags | value]);
  const bytes = [flags | max];
  let rest = value - max;
  while (rest >= 128) {
    bytes.push((rest % 128) | 0x80);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

test('the dynamic table follows a long run of insertions, evictions and size updates', (t) => {
  const decoder = new HpackDecoder(4096);
  // The reference: newest first, as RFC 7541 §2.3.3 numbers them.
  const model: Array<[string, string]> = [];
  let capacity = 4096;
  const size = () => model.reduce((sum, [n, v]) => sum + n.length + v.length + 32, 0);
  const fit = () => {
    while (size() > capacity) model.pop();
  };
  const string = (text: string) => Buffer.concat([integer(text.length, 7, 0), Buffer.from(text, 'latin1')]);
  for (let i = 0; i < 2000; i++) {
    const parts: Buffer[] = [];
    if (i % 250 === 249) {
      // The table shrinks and grows back in turn: a size update at the start of the block.
      capacity = capacity === 4096 ? 1500 : 4096;
      parts.push(integer(capacity, 5, 0x20));
      fit();
    }
    const name = `x-h${i % 37}`;
    const value = 'v'.repeat(i % 90) + i;
    parts.push(Buffer.from([0x40]), string(name), string(value));
    model.unshift([name, value]);
    fit();
    // The oldest entry, by the highest index the table has.
    parts.push(integer(61 + model.length, 7, 0x80));
    const oldest = model[model.length - 1]!;
    t.deepEqual(decoder.decode(Buffer.concat(parts), wide).headers, [name, value, ...oldest], `block ${i}`);
    t.is(decoder.tableSize, size(), `table size after block ${i}`);
  }
});
