/**
 * Control-stream RPC benchmark: codec throughput and full registration round trips over an in-memory stream.
 * Run: `npx tsc -b bench && npx node bench/build/rpc.js` (or `npm run bench -- rpc`).
 * Every loop is bounded by an iteration count and a time budget.
 */
import { duplexPair } from 'node:stream';
import type * as Codec from '../core/src/tunnel/rpc/codec/index.js';
import type * as Rpc from '../core/src/tunnel/rpc/index.js';
import type * as Messages from '../core/src/tunnel/rpc/messages.js';
import type * as RegistrationCodec from '../core/src/tunnel/rpc/registration-codec.js';
import type * as Schema from '../core/src/tunnel/rpc/schema.js';

// Loaded from core's build output next to this project's (type-only imports above keep the types).
const core = (path: string) => new URL(`../../core/build/src/tunnel/rpc/${path}`, import.meta.url).href;
const codec = (await import(core('codec/index.js'))) as typeof Codec;
const rpc = (await import(core('index.js'))) as typeof Rpc;
const messages = (await import(core('messages.js'))) as typeof Messages;
const registration = (await import(core('registration-codec.js'))) as typeof RegistrationCodec;
const schema = (await import(core('schema.js'))) as typeof Schema;

const uuid = (hex: string) => Buffer.from(hex.replaceAll('-', ''), 'hex');
const request: Rpc.RegistrationRequest = {
  auth: { accountTag: '0123456789abcdef0123456789abcdef', tunnelSecret: Buffer.alloc(32, 7) },
  tunnelId: uuid('11111111-2222-3333-4444-555555555555'),
  connIndex: 0,
  options: {
    client: {
      clientId: uuid('aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee'),
      features: ['serialized_headers', 'allow_remote_config', 'support_datagram_v2', 'support_quic_eof', 'management_logs'],
      version: '2026.8.2',
      arch: 'linux_amd64',
    },
    originLocalIp: Buffer.from('00000000000000000000ffff7f000001', 'hex'),
    replaceExisting: false,
    compressionQuality: 0,
    numPreviousAttempts: 0,
  },
};

const encodeRegister = () =>
  messages.encodeCall({
    questionId: 1,
    target: { kind: 'promisedAnswer', questionId: 0, transform: [] },
    interfaceId: schema.REGISTRATION_SERVER_INTERFACE_ID,
    methodId: 0,
    content: messages.structContent(schema.Layout.RegisterConnectionParams, (p) => registration.writeRegisterConnectionParams(p, request)),
  });

interface Row {
  name: string;
  ops: number;
  seconds: number;
  unit: string;
}

/** Runs `fn` up to `maxOps` times or `budgetMs`, whichever comes first (after a short warm-up). */
async function measure(name: string, unit: string, maxOps: number, budgetMs: number, fn: () => unknown): Promise<Row> {
  for (let i = 0; i < Math.min(1_000, maxOps / 10); i++) await fn();
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(budgetMs) * 1_000_000n;
  let ops = 0;
  while (ops < maxOps && process.hrtime.bigint() < deadline) {
    await fn();
    ops++;
  }
  return { name, unit, ops, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
}

const framedCall = encodeRegister();
const rows: Row[] = [];

rows.push(await measure('encode registerConnection Call', 'msg', 200_000, 3_000, encodeRegister));

rows.push(
  await measure('decode + read registerConnection Call', 'msg', 200_000, 3_000, () => {
    const [segments] = new codec.FrameReader().push(framedCall);
    const m = messages.decodeRpcMessage(segments!).message;
    if (m.type !== 'call' || m.params.content.kind !== 'struct') throw new Error('bad decode');
    return registration.readRegisterConnectionParams(m.params.content.value);
  }),
);

// A stream of back-to-back messages in 16 KiB chunks (DATA-frame sized): framing + envelope decode.
const stream = Buffer.concat(Array.from({ length: 1_000 }, () => framedCall));
const chunks = Array.from({ length: Math.ceil(stream.length / 16_384) }, (_, i) => stream.subarray(i * 16_384, (i + 1) * 16_384));
const streamRow = await measure('frame + decode 1000-message stream (16 KiB chunks)', 'stream', 2_000, 3_000, () => {
  const reader = new codec.FrameReader();
  let n = 0;
  for (const c of chunks) for (const s of reader.push(c)) n += messages.decodeRpcMessage(s).message.type === 'call' ? 1 : 0;
  if (n !== 1_000) throw new Error(`decoded ${n}`);
});
rows.push(streamRow);

// Full sessions: new stream, Bootstrap + pipelined registerConnection, Returns, Finishes, close (Release + Abort).
const handler: Rpc.RegistrationHandler = {
  registerConnection: () => ({ ok: true, details: { uuid: Buffer.alloc(16, 9), locationName: 'LIS', tunnelIsRemotelyManaged: false } }),
  unregisterConnection: () => {},
  updateLocalConfiguration: () => {},
};
rows.push(
  await measure('full session: register + close (client + edge)', 'session', 20_000, 5_000, async () => {
    const [a, b] = duplexPair();
    const server = rpc.serveRegistration(b, handler);
    const client = new rpc.RegistrationClient(a, { timeoutMs: 5_000 });
    const result = await client.registerConnection(request);
    if (!result.ok) throw new Error('registration refused');
    await client.close();
    await server.closed;
    a.destroy();
    b.destroy();
  }),
);

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
process.stdout.write(`| case | ops | time (s) | rate |\n|---|---:|---:|---:|\n`);
for (const r of rows) {
  const extra = r === streamRow ? ` (${((r.ops * stream.length) / r.seconds / 1e6).toFixed(0)} MB/s)` : '';
  process.stdout.write(`| ${r.name} | ${fmt(r.ops)} | ${r.seconds.toFixed(2)} | ${fmt(r.ops / r.seconds)} ${r.unit}/s${extra} |\n`);
}
process.stdout.write(`\nregisterConnection Call: ${framedCall.length} bytes framed\n`);
