import test, { type ExecutionContext } from 'ava';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { Readable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pipeline } from 'node:stream/promises';
import { patternBytes } from './support/origin.js';
import { startHarness } from './support/harness.js';

const SIZE = 50 * 1024 * 1024;
/**
 * Everything (client, edge simulator, connector, origin) runs in this process, so a component that buffered
 * a whole 50 MiB upload would show up as RSS growth well above this bound.
 */
const RSS_BOUND = 25 * 1024 * 1024;
/** Download sizes compared, and what the larger may add to the smaller's growth (a buffered body adds 80 MiB). */
const SMALL = 16 * 1024 * 1024;
const LARGE = 96 * 1024 * 1024;
const SCALING_BOUND = 16 * 1024 * 1024;
/** Well under the larger body: buffering it whole cannot pass. */
const RSS_BOUND_LARGE = 64 * 1024 * 1024;
/**
 * Live body bytes (ArrayBuffers reachable after a full collection) in flight at any time during a download,
 * whatever its size: the simulator's 4 MiB stream window and the connector's 1 MiB socket queue, with the 64 KiB
 * reads on either side, bound them. Heap snapshots mid-download found 1.1-1.5 MiB, the connector's share 0.06-0.13
 * (docs/benchmarks.md, "What the connector holds"); the sampled peaks were 3.3-3.7 MiB. A connector that buffered
 * the body measured 15 MiB for 16 MiB.
 */
const LIVE_BOUND = 8 * 1024 * 1024;
const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;

// Collect garbage while sampling, so the measure is live memory rather than how lazily V8 frees buffers.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/**
 * The ArrayBuffer bytes reachable now. V8 frees the buffers a full collection found dead on a background thread
 * afterwards, so right after one collection they still count (32 MiB of them right after a single gc(),
 * taken for bytes in flight); a second collection first finishes that sweep.
 */
function liveBuffers(): number {
  gc();
  gc();
  return process.memoryUsage().arrayBuffers;
}

/** RSS growth and the peak of live ArrayBuffers over their starting level, sampled every 50 ms. */
function sampleMemory(): { stop(): { rss: number; live: number } } {
  const liveBase = liveBuffers();
  const base = process.memoryUsage.rss();
  let peak = base;
  let livePeak = liveBase;
  const sample = () => {
    livePeak = Math.max(livePeak, liveBuffers());
    peak = Math.max(peak, process.memoryUsage.rss());
  };
  const timer = setInterval(sample, 50);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return { rss: peak - base, live: livePeak - liveBase };
    },
  };
}

function expectedHash(size = SIZE): string {
  const hash = createHash('sha256');
  for (let done = 0; done < size; done += 65536) hash.update(patternBytes(done, Math.min(65536, size - done)));
  return hash.digest('hex');
}

function patternStream(total: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= total) return void this.push(null);
      const size = Math.min(65536, total - sent);
      this.push(patternBytes(sent, size));
      sent += size;
    },
  });
}

/** Downloads `size` bytes through the tunnel, checks them whole and in order, and returns the memory sampled meanwhile. */
async function download(t: ExecutionContext, eyeballUrl: string, size: number): Promise<{ rss: number; live: number }> {
  const memory = sampleMemory();
  const hash = createHash('sha256');
  let length = 0;
  await new Promise<void>((resolve, reject) => {
    const req = request(`${eyeballUrl}/bytes?n=${size}`, { headers: { host: 'app.example.com' } }, (res) => {
      t.is(res.headers['content-length'], String(size));
      res.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        length += chunk.length;
      });
      res.on('end', resolve);
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
  const growth = memory.stop();
  t.is(length, size);
  t.is(hash.digest('hex'), expectedHash(size));
  return growth;
}

test.serial('downloads stream through the tunnel with flat memory: what is in flight does not grow with the body', async (t) => {
  const h = await startHarness(t);
  await h.sim.waitForRegistrations(1);
  // Warm up every component once so lazily allocated buffers do not count as growth.
  await new Promise<void>((resolve, reject) =>
    request(`${h.sim.eyeballUrl}/bytes?n=4194304`, { headers: { host: 'a' } }, (res) => res.resume().on('end', resolve))
      .on('error', reject)
      .end(),
  );
  // Everything (client, simulated edge with its 4 MiB stream windows, connector, origin) is in this process.
  // RSS growth also holds the dead buffers glibc keeps between collections (10-35 MiB across runs with one
  // collection per sample, whatever the body's size); live buffers are what is in flight. A component that
  // buffered the body instead of flowing under backpressure would grow with it.
  const small = await download(t, h.sim.eyeballUrl, SMALL);
  const large = await download(t, h.sim.eyeballUrl, LARGE);
  t.log(
    `downloading ${SMALL / 1048576} MiB: RSS grew ${mib(small.rss)}, live buffers peaked ${mib(small.live)} above the start; ${LARGE / 1048576} MiB: ${mib(large.rss)}, ${mib(large.live)}`,
  );
  t.true(large.rss - small.rss < SCALING_BOUND, `RSS grew ${mib(large.rss - small.rss)} more for ${(LARGE - SMALL) / 1048576} MiB more body`);
  t.true(large.rss < RSS_BOUND_LARGE, `RSS grew by ${mib(large.rss)} while downloading ${LARGE / 1048576} MiB`);
  t.true(Math.max(small.live, large.live) < LIVE_BOUND, `live buffers peaked ${mib(Math.max(small.live, large.live))} above the start while downloading`);
});

test.serial('a 50 MiB upload streams through the tunnel with flat memory', async (t) => {
  const h = await startHarness(t);
  await h.sim.waitForRegistrations(1);
  await new Promise<void>((resolve, reject) => {
    const req = request(`${h.sim.eyeballUrl}/echo`, { method: 'PUT', headers: { host: 'a', 'content-length': String(4194304) } }, (res) => res.resume().on('end', resolve));
    req.on('error', reject);
    void pipeline(patternStream(4194304), req);
  });
  const memory = sampleMemory();
  const echo = await new Promise<{ body: { length: number; sha256: string } }>((resolve, reject) => {
    const req = request(`${h.sim.eyeballUrl}/echo`, { method: 'POST', headers: { host: 'app.example.com', 'content-length': String(SIZE) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString()) as { body: { length: number; sha256: string } }));
    });
    req.on('error', reject);
    pipeline(patternStream(SIZE), req).catch(reject);
  });
  const growth = memory.stop();
  t.is(echo.body.length, SIZE);
  t.is(echo.body.sha256, expectedHash());
  t.true(growth.rss < RSS_BOUND, `RSS grew by ${mib(growth.rss)}`);
  t.true(growth.live < LIVE_BOUND, `live buffers peaked ${mib(growth.live)} above the start while uploading`);
  t.log(`uploading 50 MiB: RSS grew ${mib(growth.rss)}, live buffers peaked ${mib(growth.live)} above the start`);
});
