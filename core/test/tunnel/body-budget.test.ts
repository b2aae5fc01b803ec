import test from 'ava';
import { fork, type ChildProcess } from 'node:child_process';
import { request, type ClientRequest } from 'node:http';
import { startEdgeSimulator } from '../../src/edge-simulator/simulator.js';
import { eyeballRequest } from './support/client.js';

const UPLOADS = 400;
const UPLOAD_BYTES = 1.5 * 1048576;
const MiB = 1048576;

function childRss(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the connector process did not report its RSS within 5 s')), 5000);
    child.once('message', (m: { rss: number }) => {
      clearTimeout(timer);
      resolve(m.rss);
    });
    child.send('rss');
  });
}

test('400 stalled 1.5 MiB uploads hold a bounded amount of connector memory, and another host is still served', async (t) => {
  t.timeout(60_000);
  const sim = await startEdgeSimulator();
  t.teardown(() => sim.close());
  const child = fork(new URL('./support/stalled-upload-connector.js', import.meta.url), [sim.edgeAddresses[0]!, sim.caFile, sim.token, '1'], {
    execArgv: ['--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  t.teardown(() => void child.kill());
  await sim.waitForRegistrations(1, 15_000);
  const canary = () => eyeballRequest(sim.eyeballUrl, { headers: { host: 'canary.example.com' } });
  t.is((await canary()).status, 200);
  const before = await childRss(child);

  const body = Buffer.alloc(UPLOAD_BYTES, 0x61);
  const uploads: ClientRequest[] = [];
  const statuses: number[] = [];
  for (let i = 0; i < UPLOADS; i++) {
    const req = request(`${sim.eyeballUrl}/upload/${i}`, {
      method: 'POST',
      headers: { host: 'uploads.example.com', 'content-length': String(UPLOAD_BYTES) },
      agent: false,
    });
    req.on('error', () => undefined);
    req.on('response', (res) => {
      statuses.push(res.statusCode ?? 0);
      res.resume();
    });
    req.end(body);
    uploads.push(req);
  }
  t.teardown(() => uploads.forEach((u) => u.destroy()));

  // The uploads arrive over a few seconds on a loaded machine: sample until the held memory stops growing.
  let peak = before;
  let stableSince = Date.now();
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && Date.now() - stableSince < 2000) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    const rss = await childRss(child);
    if (rss > peak + MiB) stableSince = Date.now();
    peak = Math.max(peak, rss);
  }
  const growthMiB = (peak - before) / MiB;
  t.log(`connector RSS ${Math.round(before / MiB)} → ${Math.round(peak / MiB)} MiB (+${growthMiB.toFixed(1)}); ${statuses.length} uploads answered early (${[...new Set(statuses)].join(', ') || 'none'})`);
  // The bound is 32 MiB of bodies (tunnel.requestBodyBufferTotalBytes) plus per-stream state; unbounded it was ~1 MiB per upload.
  t.true(growthMiB <= 64, `RSS grew by ${growthMiB.toFixed(1)} MiB`);
  t.true(statuses.every((s) => s === 503), 'an upload answered early is one refused by the budget');

  const started = Date.now();
  const reply = await canary();
  t.is(reply.status, 200);
  t.is(reply.body.toString(), 'ok');
  t.true(Date.now() - started < 5000);
});
