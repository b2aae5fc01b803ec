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
const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;

// Collect garbage while sampling, so the measure is live memory rather than how lazily V8 frees buffers.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function sampleRss(): { stop(): number } {
  gc();
  const base = process.memoryUsage.rss();
  let peak = base;
  const timer = setInterval(() => {
    gc();
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 50);
  return {
    stop() {
      clearInterval(timer);
      gc();
      peak = Math.max(peak, process.memoryUsage.rss());
      return peak - base;
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

/** Downloads `size` bytes through the tunnel, checks them whole and in order, and returns the RSS growth meanwhile. */
async function download(t: ExecutionContext, eyeballUrl: string, size: number): Promise<number> {
  const rss = sampleRss();
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
  const growth = rss.stop();
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
  // Everything (client, simulated edge with its 4 MiB stream windows, connector, origin) is in this process, so
  // the growth holds every component's bytes in flight, 10-35 MiB across runs whatever the body's size (a single
  // 25 MiB bound on a 50 MiB download failed in about half the runs). A component that buffered the body instead
  // of flowing under backpressure would grow with it.
  const small = await download(t, h.sim.eyeballUrl, SMALL);
  const large = await download(t, h.sim.eyeballUrl, LARGE);
  t.log(`RSS growth while downloading ${SMALL / 1048576} MiB: ${mib(small)}, ${LARGE / 1048576} MiB: ${mib(large)}`);
  t.true(large - small < SCALING_BOUND, `RSS grew ${mib(large - small)} more for ${(LARGE - SMALL) / 1048576} MiB more body`);
  t.true(large < RSS_BOUND_LARGE, `RSS grew by ${mib(large)} while downloading ${LARGE / 1048576} MiB`);
});

test.serial('a 50 MiB upload streams through the tunnel with flat memory', async (t) => {
  const h = await startHarness(t);
  await h.sim.waitForRegistrations(1);
  await new Promise<void>((resolve, reject) => {
    const req = request(`${h.sim.eyeballUrl}/echo`, { method: 'PUT', headers: { host: 'a', 'content-length': String(4194304) } }, (res) => res.resume().on('end', resolve));
    req.on('error', reject);
    void pipeline(patternStream(4194304), req);
  });
  const rss = sampleRss();
  const echo = await new Promise<{ body: { length: number; sha256: string } }>((resolve, reject) => {
    const req = request(`${h.sim.eyeballUrl}/echo`, { method: 'POST', headers: { host: 'app.example.com', 'content-length': String(SIZE) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString()) as { body: { length: number; sha256: string } }));
    });
    req.on('error', reject);
    pipeline(patternStream(SIZE), req).catch(reject);
  });
  const growth = rss.stop();
  t.is(echo.body.length, SIZE);
  t.is(echo.body.sha256, expectedHash());
  t.true(growth < RSS_BOUND, `RSS grew by ${(growth / 1048576).toFixed(1)} MiB`);
  t.log(`RSS growth while uploading 50 MiB: ${(growth / 1048576).toFixed(1)} MiB`);
});
