import test from 'ava';
import { CLIENT_PREFACE, ErrorCode, frame, FrameType } from '../../../src/tunnel/h2/frames.js';
import { HpackDecoder } from '../../../src/tunnel/h2/hpack.js';
import type { H2Stream } from '../../../src/tunnel/h2/stream.js';
import { collected } from '../../support/collected.js';
import { eventually } from '../support/harness.js';
import { DEFAULT_TEST_OPTIONS, type RawPeer, rawPair, requestHeaders } from '../support/raw-h2-peer.js';

const u32 = (...values: number[]) => {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => {
    b.writeUInt32BE(v, i * 4);
  });
  return b;
};
const setting = (id: number, value: number) => {
  const b = Buffer.alloc(6);
  b.writeUInt16BE(id, 0);
  b.writeUInt32BE(value, 2);
  return b;
};

const headersFrame = (streamId: number, block: Buffer, flags = 0x4) => frame(FrameType.HEADERS, flags, streamId, block);
const dataFrame = (streamId: number, payload: Buffer, endStream = false) => frame(FrameType.DATA, endStream ? 1 : 0, streamId, payload);

function nextStream(session: import('../../../src/tunnel/h2/session.js').H2ServerSession): Promise<[H2Stream, string[], boolean]> {
  return new Promise((resolve) => session.once('stream', (s: H2Stream, h: string[], e: boolean) => resolve([s, h, e])));
}

/** Opens stream `id` with a request that HEADERS complete (END_STREAM), and returns it. */
async function openComplete(session: import('../../../src/tunnel/h2/session.js').H2ServerSession, peer: RawPeer, id: number): Promise<H2Stream> {
  const opened = nextStream(session);
  peer.send(headersFrame(id, requestHeaders('/'), 0x5));
  return (await opened)[0];
}

async function body(stream: H2Stream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** What `end(callback)` reports: 'ended', the error's code or message, or that it was never called (3 s). */
function endOutcome(stream: H2Stream): Promise<string> {
  return new Promise((resolve) => {
    stream.end((err?: Error | null) => resolve(err ? `error ${(err as { code?: string }).code ?? err.message}` : 'ended'));
    setTimeout(() => resolve('end callback never called'), 3000);
  });
}

/** Response frames on `streamId` until END_STREAM: status, body bytes, trailers. */
async function response(peer: RawPeer, streamId: number) {
  await peer.waitFor((f) => f.streamId === streamId && (f.type === 0x0 || f.type === 0x1) && (f.flags & 1) === 1, `END_STREAM on ${streamId}`);
  const decoder = new HpackDecoder(4096);
  const frames = peer.frames.filter((f) => f.streamId === streamId);
  const blocks = frames.filter((f) => f.type === 0x1).map((f) => decoder.decode(f.payload, { maxPairs: 100, maxListSize: 65536 }).headers);
  const data = Buffer.concat(frames.filter((f) => f.type === 0x0).map((f) => f.payload));
  return { head: blocks[0]!, trailers: blocks[1], data };
}

test('the server preface announces the settings, no push, and opens the connection window', async (t) => {
  const { peer } = await rawPair(t, { ...DEFAULT_TEST_OPTIONS, connectionWindow: 1_048_576 });
  peer.handshake();
  const settings = await peer.waitFor((f) => f.type === 0x4 && f.flags === 0, 'SETTINGS');
  const entries = new Map<number, number>();
  for (let i = 0; i < settings.payload.length; i += 6) entries.set(settings.payload.readUInt16BE(i), settings.payload.readUInt32BE(i + 2));
  t.deepEqual(Object.fromEntries(entries), { 2: 0, 3: 100, 4: 65_535, 5: 16_384, 6: 65_536 });
  const update = await peer.waitFor((f) => f.type === 0x8 && f.streamId === 0, 'connection WINDOW_UPDATE');
  t.is(update.payload.readUInt32BE(0), 1_048_576 - 65_535);
  await peer.waitFor((f) => f.type === 0x4 && f.flags === 1, 'SETTINGS ack');
  t.is(peer.frames.indexOf(settings), 0, 'SETTINGS is the first frame');
});

test('a request split across reads at any byte arrives whole, and its response goes out as HEADERS + DATA', async (t) => {
  const payload = Buffer.from(Array.from({ length: 3000 }, (_, i) => i % 251));
  const bytes = Buffer.concat([
    CLIENT_PREFACE,
    frame(0x4, 0, 0),
    headersFrame(1, requestHeaders('/upload', ['content-length', '3000']), 0x4),
    dataFrame(1, payload.subarray(0, 1000)),
    frame(0xfa, 0, 0, Buffer.from('unknown frame type: ignored')),
    frame(FrameType.PRIORITY, 0, 1, Buffer.alloc(5)),
    frame(FrameType.DATA, 0x8, 1, Buffer.concat([Buffer.from([3]), payload.subarray(1000, 2000), Buffer.alloc(3)])),
    dataFrame(1, payload.subarray(2000), true),
  ]);
  for (const split of [1, 4, 9, 10, 13, 100, 1009, bytes.length]) {
    const { session, peer, errors } = await rawPair(t);
    const opened = nextStream(session);
    const sending = peer.sendSplit(bytes, split);
    const [stream, headers, endStream] = await opened;
    t.deepEqual(headers.slice(0, 8), [':method', 'POST', ':scheme', 'https', ':authority', 'app.example.com', ':path', '/upload'], `split ${split}`);
    t.false(endStream);
    t.deepEqual(await body(stream), payload, `split ${split}: body`);
    await sending;
    stream.respond([':status', '200', 'content-type', 'text/plain']);
    stream.end('done');
    const reply = await response(peer, 1);
    t.deepEqual(reply.head, [':status', '200', 'content-type', 'text/plain']);
    t.is(reply.data.toString(), 'done');
    t.deepEqual(errors, []);
  }
});

test('trailers follow the body as a HEADERS frame with END_STREAM', async (t) => {
  const { session, peer } = await rawPair(t);
  const opened = nextStream(session);
  peer.handshake();
  peer.send(headersFrame(1, requestHeaders('/grpc'), 0x5));
  const [stream] = await opened;
  stream.respond([':status', '200'], { waitForTrailers: true });
  stream.once('wantTrailers', () => stream.sendTrailers(['grpc-status', '0']));
  stream.end(Buffer.from('message'));
  const reply = await response(peer, 1);
  t.is(reply.data.toString(), 'message');
  t.deepEqual(reply.trailers, ['grpc-status', '0']);
});

test('a GOAWAY with any last_stream_id, split across reads, is reported and the stream in flight still finishes', async (t) => {
  const { session, peer, errors } = await rawPair(t);
  const opened = nextStream(session);
  peer.handshake();
  peer.send(headersFrame(1, requestHeaders('/slow'), 0x5));
  const [stream] = await opened;
  const goaway = new Promise<[number, number]>((resolve) => session.once('goaway', (code: number, last: number) => resolve([code, last])));
  await peer.sendSplit(frame(FrameType.GOAWAY, 0, 0, Buffer.concat([u32(0x80000007, 0), Buffer.from('debug')])), 3);
  t.deepEqual(await goaway, [0, 7], 'code NO_ERROR, last_stream_id 7 (the reserved bit ignored)');
  session.close();
  t.deepEqual(await peer.goaway(), [1, ErrorCode.NO_ERROR], 'our GOAWAY names the last stream we saw');
  stream.respond([':status', '200']);
  stream.end('late but complete');
  t.is((await response(peer, 1)).data.toString(), 'late but complete');
  peer.send(headersFrame(3, requestHeaders('/new'), 0x5));
  await new Promise((resolve) => peer.socket.once('close', resolve));
  t.false(
    peer.frames.some((f) => f.streamId === 3 && f.type === 0x1),
    'no response to a stream opened after our GOAWAY',
  );
  t.deepEqual(errors, []);
});

test('responses wait for the peer’s stream and connection windows', async (t) => {
  const { session, peer } = await rawPair(t);
  const opened = nextStream(session);
  peer.handshake(setting(0x4, 100));
  peer.send(headersFrame(1, requestHeaders('/'), 0x5));
  const [stream] = await opened;
  stream.respond([':status', '200']);
  let finished = false;
  stream.end(Buffer.alloc(250, 7), () => (finished = true));
  await peer.waitFor((f) => f.type === 0x0 && f.streamId === 1, 'first DATA');
  await new Promise((resolve) => setTimeout(resolve, 50));
  const sent = () =>
    peer.frames
      .filter((f) => f.type === 0 && f.streamId === 1)
      .map((f) => f.payload.length)
      .reduce((a, b) => a + b, 0);
  t.is(sent(), 100, 'no more than the stream window');
  t.false(finished);
  peer.send(frame(FrameType.WINDOW_UPDATE, 0, 1, u32(200)));
  const reply = await response(peer, 1);
  t.is(reply.data.length, 250);
});

test('the stream window is returned as the body is read, not as it arrives', async (t) => {
  const { session, peer } = await rawPair(t);
  const opened = nextStream(session);
  peer.handshake();
  peer.send(headersFrame(1, requestHeaders('/'), 0x4), ...Array.from({ length: 4 }, () => dataFrame(1, Buffer.alloc(10_000))));
  const [stream] = await opened;
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.false(
    peer.frames.some((f) => f.type === 0x8 && f.streamId === 1),
    'no stream WINDOW_UPDATE while the body is unread',
  );
  stream.resume();
  const update = await peer.waitFor((f) => f.type === 0x8 && f.streamId === 1, 'stream WINDOW_UPDATE after reading');
  t.is(update.payload.readUInt32BE(0), 40_000);
});

test('lowering SETTINGS_INITIAL_WINDOW_SIZE lowers open streams once acknowledged; DATA beyond a stream window resets it', async (t) => {
  const { session, peer, errors } = await rawPair(t);
  const opened = nextStream(session);
  peer.handshake();
  peer.send(headersFrame(1, requestHeaders('/'), 0x4));
  const [stream] = await opened;
  session.settings({ initialWindowSize: 1000 });
  t.true(session.pendingSettingsAck);
  const acked = new Promise((resolve) => session.once('localSettings', resolve));
  peer.send(frame(0x4, 0x1, 0));
  await acked;
  t.false(session.pendingSettingsAck);
  peer.send(dataFrame(1, Buffer.alloc(1001)));
  t.is(await peer.reset(1), ErrorCode.FLOW_CONTROL_ERROR);
  t.is(stream.rstCode, ErrorCode.FLOW_CONTROL_ERROR);
  await peer.ping(1);
  t.deepEqual(errors, []);
});

test('DATA beyond the connection window is a connection error (FLOW_CONTROL_ERROR)', async (t) => {
  const { peer, errors } = await rawPair(t, { ...DEFAULT_TEST_OPTIONS, settings: { ...DEFAULT_TEST_OPTIONS.settings, initialWindowSize: 1_000_000, maxFrameSize: 100_000 } });
  peer.handshake();
  peer.send(headersFrame(1, requestHeaders('/'), 0x4), dataFrame(1, Buffer.alloc(65_536)));
  t.deepEqual(await peer.goaway(), [1, ErrorCode.FLOW_CONTROL_ERROR]);
  t.is((errors[0] as { code?: number }).code, ErrorCode.FLOW_CONTROL_ERROR);
});

test('a body that does not match its content-length resets the stream (PROTOCOL_ERROR)', async (t) => {
  const { peer } = await rawPair(t);
  peer.handshake();
  peer.send(headersFrame(1, requestHeaders('/', ['content-length', '5']), 0x4), dataFrame(1, Buffer.from('abc'), true));
  t.is(await peer.reset(1), ErrorCode.PROTOCOL_ERROR);
  peer.send(headersFrame(3, requestHeaders('/', ['content-length', '2']), 0x4), dataFrame(3, Buffer.from('abc')));
  t.is(await peer.reset(3), ErrorCode.PROTOCOL_ERROR);
  // END_STREAM on HEADERS is an empty body: a declared length other than 0 is malformed too.
  peer.send(headersFrame(5, requestHeaders('/', ['content-length', '5']), 0x5));
  t.is(await peer.reset(5), ErrorCode.PROTOCOL_ERROR);
  await peer.ping(1);
});

test('malformed request headers reset their stream (PROTOCOL_ERROR) and leave the connection up', async (t) => {
  const { session, peer } = await rawPair(t);
  let streams = 0;
  session.on('stream', () => streams++);
  peer.handshake();
  const cases = [
    ['x-Upper', 'v'],
    ['connection', 'keep-alive'],
    ['te', 'gzip'],
    ['x-crlf', 'a\r\nb'],
    [':unknown', 'x'],
  ];
  let id = 1;
  for (const extra of cases) {
    peer.send(headersFrame(id, requestHeaders('/', extra), 0x5));
    t.is(await peer.reset(id), ErrorCode.PROTOCOL_ERROR, extra[0]);
    id += 2;
  }
  const pseudoLate = Buffer.concat([requestHeaders('/'), (await import('../../../src/tunnel/h2/hpack.js')).encodeHeaderBlock(['x-a', '1', ':path', '/again'])]);
  peer.send(headersFrame(id, pseudoLate, 0x5));
  t.is(await peer.reset(id), ErrorCode.PROTOCOL_ERROR, 'pseudo-header after a regular one');
  t.is(streams, 0);
  await peer.ping(2);
});

test('connection errors: bad preface, even stream id, oversized frame, bad SETTINGS, PUSH_PROMISE, interrupted header block', async (t) => {
  const expectGoaway = async (bytes: Buffer[], code: number, label: string, handshake = true) => {
    const { peer } = await rawPair(t);
    if (handshake) peer.handshake();
    peer.send(...bytes);
    const [, got] = await peer.goaway();
    t.is(got, code, label);
  };
  await expectGoaway([Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')], ErrorCode.PROTOCOL_ERROR, 'HTTP/1.1 instead of the preface', false);
  await expectGoaway([CLIENT_PREFACE, frame(0x6, 0, 0, Buffer.alloc(8))], ErrorCode.PROTOCOL_ERROR, 'PING before SETTINGS', false);
  await expectGoaway([headersFrame(2, requestHeaders('/'), 0x5)], ErrorCode.PROTOCOL_ERROR, 'even stream id');
  await expectGoaway([dataFrame(1, Buffer.alloc(16_385))], ErrorCode.FRAME_SIZE_ERROR, 'frame over SETTINGS_MAX_FRAME_SIZE');
  await expectGoaway([frame(0x4, 0, 0, Buffer.alloc(5))], ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS of 5 bytes');
  await expectGoaway([frame(0x4, 0, 0, setting(0x4, 0x80000000))], ErrorCode.FLOW_CONTROL_ERROR, 'INITIAL_WINDOW_SIZE 2^31');
  await expectGoaway([frame(0x4, 0, 0, setting(0x5, 100))], ErrorCode.PROTOCOL_ERROR, 'MAX_FRAME_SIZE 100');
  await expectGoaway([frame(0x5, 0x4, 1, Buffer.alloc(4))], ErrorCode.PROTOCOL_ERROR, 'PUSH_PROMISE');
  await expectGoaway([headersFrame(1, requestHeaders('/'), 0x1), frame(0x6, 0, 0, Buffer.alloc(8))], ErrorCode.PROTOCOL_ERROR, 'PING inside a header block');
  await expectGoaway([headersFrame(1, Buffer.from([0xbe]), 0x5)], ErrorCode.COMPRESSION_ERROR, 'index beyond the table');
  await expectGoaway([frame(0x6, 0, 0, Buffer.alloc(7))], ErrorCode.FRAME_SIZE_ERROR, 'PING of 7 bytes');
  await expectGoaway([frame(0x8, 0, 0, u32(0))], ErrorCode.PROTOCOL_ERROR, 'connection WINDOW_UPDATE of 0');
  await expectGoaway([frame(0x8, 0, 0, u32(0x7fffffff))], ErrorCode.FLOW_CONTROL_ERROR, 'connection window over 2^31-1');
});

test('limit: CONTINUATION frames per header block (flood)', async (t) => {
  const { peer, errors } = await rawPair(t, { ...DEFAULT_TEST_OPTIONS, limits: { ...DEFAULT_TEST_OPTIONS.limits, maxContinuations: 8 } });
  peer.handshake();
  const block = requestHeaders('/');
  peer.send(headersFrame(1, block.subarray(0, 1), 0), ...Array.from({ length: 8 }, () => frame(0x9, 0, 1, Buffer.alloc(0))));
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.false(
    peer.frames.some((f) => f.type === 0x7),
    'eight CONTINUATION frames are within the limit',
  );
  peer.send(frame(0x9, 0, 1, Buffer.alloc(0)));
  t.deepEqual(await peer.goaway(), [0, ErrorCode.ENHANCE_YOUR_CALM]);
  t.regex(errors[0]!.message, /CONTINUATION/);
});

test('limit: a compressed header block over twice SETTINGS_MAX_HEADER_LIST_SIZE ends the connection', async (t) => {
  const { peer } = await rawPair(t, { ...DEFAULT_TEST_OPTIONS, settings: { ...DEFAULT_TEST_OPTIONS.settings, maxHeaderListSize: 4096 } });
  peer.handshake();
  peer.send(headersFrame(1, Buffer.alloc(5000, 0x82), 0), frame(0x9, 0, 1, Buffer.alloc(5000, 0x82)));
  t.deepEqual(await peer.goaway(), [0, ErrorCode.ENHANCE_YOUR_CALM]);
});

test('limit: header fields per request and the decoded list size (HPACK bomb) reset only that stream', async (t) => {
  const { session, peer } = await rawPair(t, { ...DEFAULT_TEST_OPTIONS, limits: { ...DEFAULT_TEST_OPTIONS.limits, maxHeaderPairs: 16 } });
  let streams = 0;
  session.on('stream', () => streams++);
  peer.handshake();
  const many = Array.from({ length: 20 }, (_, i) => [`x-h-${i}`, 'v']).flat();
  peer.send(headersFrame(1, requestHeaders('/', many), 0x5));
  t.is(await peer.reset(1), ErrorCode.ENHANCE_YOUR_CALM, '24 fields over a limit of 16');
  // One 4,000-byte entry inserted, then referenced 20 times: 80 KB decoded from a 4 KB block.
  const insert = Buffer.concat([Buffer.from([0x40, 0x01, 0x62, 0x7f, 0xa1, 0x1e]), Buffer.alloc(4000, 0x78)]);
  peer.send(headersFrame(3, Buffer.concat([requestHeaders('/'), insert, Buffer.alloc(15, 0xbe)]), 0x5));
  t.is(await peer.reset(3), ErrorCode.ENHANCE_YOUR_CALM, 'decoded list over SETTINGS_MAX_HEADER_LIST_SIZE');
  peer.send(headersFrame(5, Buffer.concat([requestHeaders('/'), Buffer.from([0xbe])]), 0x5));
  const [, headers] = await new Promise<[H2Stream, string[]]>((resolve) => session.once('stream', (s: H2Stream, h: string[]) => resolve([s, h])));
  t.is(headers.at(-1)!.length, 4000, 'the dynamic table kept up with the refused block');
  t.is(streams, 1);
});

test('limit: concurrent streams beyond SETTINGS_MAX_CONCURRENT_STREAMS are refused', async (t) => {
  const { session, peer } = await rawPair(t, { ...DEFAULT_TEST_OPTIONS, settings: { ...DEFAULT_TEST_OPTIONS.settings, maxConcurrentStreams: 2 } });
  const open: H2Stream[] = [];
  session.on('stream', (s: H2Stream) => open.push(s));
  peer.handshake();
  peer.send(headersFrame(1, requestHeaders('/'), 0x5), headersFrame(3, requestHeaders('/'), 0x5), headersFrame(5, requestHeaders('/'), 0x5));
  t.is(await peer.reset(5), ErrorCode.REFUSED_STREAM);
  t.is(open.length, 2);
  open[0]!.respond([':status', '204'], { endStream: true });
  await peer.waitFor((f) => f.streamId === 1 && f.type === 0x1, 'response 1');
  peer.send(headersFrame(7, requestHeaders('/'), 0x5));
  await eventually(() => open.length === 3, 3000, 'stream 7 accepted once stream 1 closed');
  t.is(session.streamCount, 2);
});

test('limit: RST_STREAM burst and refill rate (rapid reset)', async (t) => {
  const { peer, errors } = await rawPair(t, { ...DEFAULT_TEST_OPTIONS, limits: { ...DEFAULT_TEST_OPTIONS.limits, streamResetBurst: 5, streamResetRate: 1 } });
  peer.handshake();
  const openAndReset = (id: number) => [headersFrame(id, requestHeaders('/'), 0x5), frame(0x3, 0, id, u32(ErrorCode.CANCEL))];
  peer.send(...[1, 3, 5, 7, 9].flatMap(openAndReset));
  await peer.ping(1);
  t.deepEqual(errors, [], 'five resets are within the burst');
  peer.send(...openAndReset(11));
  t.deepEqual(await peer.goaway(), [11, ErrorCode.ENHANCE_YOUR_CALM]);
});

/** PINGs from a peer that reads nothing, until the session gives up (bounded at 15 s). */
async function pingFlood(peer: RawPeer, errors: Error[]): Promise<void> {
  peer.handshake();
  peer.socket.pause();
  const ping = frame(0x6, 0, 0, Buffer.alloc(8));
  const burst = Buffer.concat(Array.from({ length: 4096 }, () => ping));
  const deadline = Date.now() + 15_000;
  while (errors.length === 0 && !peer.closed && Date.now() < deadline) {
    if (!peer.socket.write(burst)) await new Promise((resolve) => setTimeout(resolve, 5));
    await new Promise((resolve) => setImmediate(resolve));
  }
}

test('limit: SETTINGS and PING acknowledgements owed to a peer that does not read', async (t) => {
  t.timeout(20_000);
  const { peer, errors } = await rawPair(t, { ...DEFAULT_TEST_OPTIONS, limits: { ...DEFAULT_TEST_OPTIONS.limits, maxOwedAcks: 100 } });
  await pingFlood(peer, errors);
  t.is((errors[0] as { code?: number } | undefined)?.code, ErrorCode.ENHANCE_YOUR_CALM);
  t.regex(errors[0]!.message, /acknowledgements owed/);
});

test('limit: bytes queued for a peer that does not read', async (t) => {
  t.timeout(20_000);
  const { peer, errors } = await rawPair(t, { ...DEFAULT_TEST_OPTIONS, limits: { ...DEFAULT_TEST_OPTIONS.limits, maxQueuedBytes: 64 * 1024, maxOwedAcks: 1_000_000 } });
  await pingFlood(peer, errors);
  t.is((errors[0] as { code?: number } | undefined)?.code, ErrorCode.ENHANCE_YOUR_CALM);
  t.regex(errors[0]!.message, /queued for a peer that does not read/);
});

test('end(callback) completes when the response ends the stream (request already complete), with and without trailers', async (t) => {
  const { session, peer } = await rawPair(t);
  peer.handshake();
  for (const [id, trailers] of [
    [1, false],
    [3, true],
  ] as const) {
    const stream = await openComplete(session, peer, id);
    stream.respond([':status', '200'], { waitForTrailers: trailers });
    if (trailers) stream.once('wantTrailers', () => stream.sendTrailers(['grpc-status', '0']));
    stream.write('body');
    t.is(await endOutcome(stream), 'ended', `stream ${id}`);
    t.is(stream.rstCode, ErrorCode.NO_ERROR);
  }
});

test('responses to a peer that reads slowly wait in their writers, not in the socket, whatever the windows', async (t) => {
  t.timeout(20_000);
  const { session, peer, errors } = await rawPair(t, { ...DEFAULT_TEST_OPTIONS, limits: { ...DEFAULT_TEST_OPTIONS.limits, maxQueuedBytes: 4 * 1024 * 1024 } });
  const streams: H2Stream[] = [];
  session.on('stream', (s: H2Stream) => streams.push(s));
  // Windows far larger than anything queued: 16 MiB per stream, 256 MiB for the connection.
  peer.handshake(setting(0x4, 16 * 1024 * 1024));
  peer.send(frame(FrameType.WINDOW_UPDATE, 0, 0, u32(256 * 1024 * 1024)));
  peer.socket.pause();
  const count = 12;
  for (let i = 0; i < count; i++) peer.send(headersFrame(1 + 2 * i, requestHeaders('/'), 0x5));
  await eventually(() => streams.length === count, 5000, 'all streams open');
  const body = Buffer.alloc(1024 * 1024, 0x61);
  const finished = streams.map((s) => {
    s.respond([':status', '200']);
    return new Promise<void>((resolve) => s.end(body, () => resolve()));
  });
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.deepEqual(errors, [], '12 MiB of responses did not pile up on a socket bounded at 4 MiB');
  peer.socket.resume();
  await Promise.all(finished);
  for (let i = 0; i < count; i++) t.is((await response(peer, 1 + 2 * i)).data.length, body.length);
});

test("end(callback) from a 'drain' listener ends the response cleanly: no error for the callback, 'finish' emitted; a reset still errors it", async (t) => {
  const { session, peer, errors } = await rawPair(t);
  // A stream window smaller than the first write: it completes when the peer opens the window.
  peer.handshake(setting(0x4, 32 * 1024));
  peer.send(frame(FrameType.WINDOW_UPDATE, 0, 0, u32(4 * 1024 * 1024)));
  for (const [id, reset] of [
    [1, false],
    [3, true],
  ] as const) {
    const stream = await openComplete(session, peer, id);
    stream.respond([':status', '200']);
    let finishEmitted = false;
    stream.on('finish', () => (finishEmitted = true));
    const body = Buffer.alloc(64 * 1024, 0x61);
    // A pipeline that waits for 'drain' and then finds the body complete ends the stream from the listener.
    t.false(stream.write(body), 'the write waits for the stream window');
    const ended = new Promise<string>((resolve) => {
      stream.once('drain', () => {
        if (reset) {
          // More than the stream window: still pending when the peer resets the stream.
          stream.write(Buffer.alloc(2 * 1024 * 1024));
          peer.send(frame(FrameType.RST_STREAM, 0, id, u32(ErrorCode.CANCEL)));
        }
        resolve(endOutcome(stream));
      });
    });
    peer.send(frame(FrameType.WINDOW_UPDATE, 0, id, u32(1024 * 1024)));
    const closed = new Promise((resolve) => stream.once('close', resolve));
    if (reset) {
      t.regex(await ended, /^error /, `stream ${id}: a reset fails the end callback`);
      await closed;
      t.is(stream.rstCode, ErrorCode.CANCEL);
      continue;
    }
    t.is(await ended, 'ended', `stream ${id}`);
    await closed;
    t.true(finishEmitted, `stream ${id}: 'finish' was emitted`);
    t.is(stream.rstCode, ErrorCode.NO_ERROR);
    t.is((await response(peer, id)).data.length, body.length);
  }
  t.deepEqual(errors, []);
});

test('a request that HEADERS end has an empty body that ends for whoever reads it, however it is read', async (t) => {
  const { session, peer, errors } = await rawPair(t);
  peer.handshake();
  const iterated = await openComplete(session, peer, 1);
  t.is((await body(iterated)).length, 0, 'async iteration ends');
  const resumed = await openComplete(session, peer, 3);
  await new Promise((resolve) => setTimeout(resolve, 20));
  resumed.resume();
  await new Promise((resolve) => resumed.once('end', resolve));
  const readable = await openComplete(session, peer, 5);
  const ended = new Promise((resolve) => readable.once('end', resolve));
  readable.on('readable', () => readable.read());
  await ended;
  for (const [stream, id] of [
    [iterated, 1],
    [resumed, 3],
    [readable, 5],
  ] as const) {
    stream.respond([':status', '204'], { endStream: true });
    t.deepEqual((await response(peer, id)).head, [':status', '204']);
  }
  t.deepEqual(errors, []);
});

test('streams that wait for the socket to drain take turns: none finishes while another has sent little', async (t) => {
  t.timeout(30_000);
  const { session, peer, errors } = await rawPair(t);
  const streams: H2Stream[] = [];
  session.on('stream', (s: H2Stream) => streams.push(s));
  peer.handshake(setting(0x4, 16 * 1024 * 1024));
  peer.send(frame(FrameType.WINDOW_UPDATE, 0, 0, u32(256 * 1024 * 1024)));
  const count = 16;
  for (let i = 0; i < count; i++) peer.send(headersFrame(1 + 2 * i, requestHeaders('/'), 0x5));
  await eventually(() => streams.length === count, 5000, 'all streams open');
  // Each response is 16 writes of 64 KiB, as a pipeline writes what it reads from its origin: together
  // 16 MiB, many times what the session queues on the socket at once.
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  // The peer reads in bursts, so the socket fills up and writers wait for it to drain.
  let bursts = true;
  peer.socket.pause();
  const reader = setInterval(() => {
    peer.socket.resume();
    setTimeout(() => bursts && peer.socket.pause(), 1);
  }, 5);
  t.teardown(() => clearInterval(reader));
  const done = streams.map(async (s) => {
    s.respond([':status', '200']);
    for (let i = 0; i < 16; i++) {
      // The next chunk comes from the origin's socket, on a later turn.
      await new Promise((resolve) => setImmediate(resolve));
      if (!s.write(chunk)) await new Promise((resolve) => s.once('drain', resolve));
    }
    await new Promise<void>((resolve) => s.end(() => resolve()));
  });
  await Promise.all(done);
  clearInterval(reader);
  bursts = false;
  peer.socket.resume();
  await peer.waitFor((f) => f.type === 0 && (f.flags & 1) === 1 && f.streamId === 2 * count - 1, 'the last END_STREAM', 20_000);
  // Where in the connection's bytes each response's body was complete.
  const sent = new Map<number, number>();
  let total = 0;
  let firstComplete = 0;
  for (const f of peer.frames) {
    if (f.type !== 0) continue;
    total += f.payload.length;
    const mine = (sent.get(f.streamId) ?? 0) + f.payload.length;
    sent.set(f.streamId, mine);
    if (mine === 16 * chunk.length && firstComplete === 0) firstComplete = total;
  }
  t.is(total, count * 16 * chunk.length);
  t.log(`the first response body was complete after ${firstComplete} of ${total} bytes`);
  t.true(firstComplete >= total / 2, `no response complete before half of all bytes were sent (first: after ${firstComplete} bytes)`);
  t.deepEqual(errors, []);
});

/** Counts what the session hands its socket: one entry (bytes) per `write()` call. */
function countWrites(socket: import('node:net').Socket): number[] {
  const writes: number[] = [];
  const write = socket.write.bind(socket) as (chunk: Buffer) => boolean;
  socket.write = ((chunk: Buffer, ...rest: unknown[]) => {
    writes.push(chunk.length);
    return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof socket.write;
  return writes;
}

/** The frames on `streamId` as [type, flags, payload length], in wire order. */
const framesOf = (peer: RawPeer, streamId: number) => peer.frames.filter((f) => f.streamId === streamId).map((f) => [f.type, f.flags, f.payload.length]);

test('a small response leaves in one socket write: HEADERS, then its body as DATA carrying END_STREAM', async (t) => {
  const { session, socket, peer } = await rawPair(t);
  peer.handshake();
  await peer.waitFor((f) => f.type === 0x4 && f.flags === 1, 'SETTINGS ack');
  const stream = await openComplete(session, peer, 1);
  await new Promise((resolve) => setImmediate(resolve));
  const writes = countWrites(socket);
  const body = Buffer.alloc(1024, 'b');
  stream.respond([':status', '200', 'content-type', 'application/octet-stream']);
  stream.write(body);
  stream.end();
  const reply = await response(peer, 1);
  t.deepEqual(reply.data, body);
  const frames = framesOf(peer, 1);
  t.is(writes.length, 1, `one socket write for the whole response (writes: ${writes.join(', ')})`);
  t.is(writes[0], 9 + frames[0]![2]! + 9 + 1024);
  t.deepEqual(
    frames.map(([type, flags]) => [type, flags]),
    [
      [0x1, 0x4],
      [0x0, 0x1],
    ],
    'HEADERS (END_HEADERS), then one DATA frame with END_STREAM: no empty DATA frame to end the stream',
  );
  // end(chunk) in one call, and an end that comes a turn after the last write (its DATA frame has left by then).
  const second = await openComplete(session, peer, 3);
  second.respond([':status', '200']);
  second.end(Buffer.from('all at once'));
  t.is((await response(peer, 3)).data.toString(), 'all at once');
  t.deepEqual(
    framesOf(peer, 3).map(([type, flags]) => [type, flags]),
    [
      [0x1, 0x4],
      [0x0, 0x1],
    ],
  );
  const third = await openComplete(session, peer, 5);
  third.respond([':status', '200']);
  third.write('early');
  await peer.waitFor((f) => f.streamId === 5 && f.type === 0x0, 'DATA on 5');
  third.end();
  t.is((await response(peer, 5)).data.toString(), 'early');
  t.deepEqual(framesOf(peer, 5), [
    [0x1, 0x4, framesOf(peer, 5)[0]![2]],
    [0x0, 0x0, 5],
    [0x0, 0x1, 0],
  ]);
});

test('END_STREAM goes on the right stream’s frame when streams write and end in the same turn', async (t) => {
  const { session, peer } = await rawPair(t);
  peer.handshake();
  const a = await openComplete(session, peer, 1);
  const b = await openComplete(session, peer, 3);
  a.respond([':status', '200']);
  b.respond([':status', '200']);
  a.write('a1');
  b.write('b1');
  a.end(); // a's DATA is no longer the last frame queued: its end is a frame of its own
  b.end('b2');
  t.is((await response(peer, 1)).data.toString(), 'a1');
  t.is((await response(peer, 3)).data.toString(), 'b1b2');
  for (const id of [1, 3]) {
    const frames = framesOf(peer, id);
    t.is(frames.filter(([, flags]) => (flags! & 1) === 1).length, 1, `stream ${id}: one END_STREAM`);
    t.is(frames.at(-1)![1]! & 1, 1, `stream ${id}: END_STREAM on its last frame`);
  }
  t.deepEqual(framesOf(peer, 1).slice(1), [
    [0x0, 0x0, 2],
    [0x0, 0x1, 0],
  ]);
  t.deepEqual(framesOf(peer, 3).slice(1), [
    [0x0, 0x0, 2],
    [0x0, 0x1, 2],
  ]);
});

/** Listeners the way an exchange hangs them on its stream: closures over state only they reach. */
function hangExchangeState(stream: H2Stream): WeakRef<object> {
  const state = { upstream: Buffer.alloc(64 * 1024), headers: ['x-request', 'state'] };
  stream.on('close', () => state.headers.length);
  stream.on('finish', () => state.upstream.length);
  stream.on('error', () => state.headers.length);
  return new WeakRef(state);
}

test('a stream that has closed lets go of its listeners: what they captured is not kept alive by the stream', async (t) => {
  const { session, peer } = await rawPair(t);
  peer.handshake();
  const kept: H2Stream[] = [];
  const states: Array<WeakRef<object>> = [];
  const heardClose: number[] = [];
  for (const [id, how] of [
    [1, 'ended'],
    [3, 'reset by the peer'],
    [5, 'destroyed with an error'],
  ] as const) {
    const stream = await openComplete(session, peer, id);
    states.push(hangExchangeState(stream));
    stream.once('close', () => heardClose.push(id));
    const closed = new Promise((resolve) => stream.once('close', resolve));
    if (how === 'ended') {
      stream.respond([':status', '200']);
      stream.end('done');
    } else if (how === 'reset by the peer') {
      stream.respond([':status', '200']);
      peer.send(frame(FrameType.RST_STREAM, 0, id, u32(ErrorCode.CANCEL)));
    } else {
      stream.destroy(new Error('upstream failed'));
    }
    await closed;
    // The stream itself stays referenced, as a finished stream often is for a while after its end.
    kept.push(stream);
  }
  t.deepEqual(heardClose, [1, 3, 5], "every 'close' listener heard its stream's end before anything was dropped");
  t.deepEqual(await collected(states), [true, true, true], 'state captured by a closed stream’s listeners was collected');
  for (const stream of kept) {
    t.is(stream.listenerCount('close'), 0);
    // A no-op stays for 'error', so an error raised after the end cannot crash the process.
    t.is(stream.listenerCount('error'), 1);
    t.notThrows(() => stream.emit('error', new Error('late')));
  }
});
