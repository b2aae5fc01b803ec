import test from 'ava';
import { request } from 'undici';
import { spawnJsonChild } from '../lib/child.js';

const simulatorProcess = new URL('../lib/simulator-process.js', import.meta.url).pathname;

test('with --origin the simulator process serves the bench origin too: n bytes for /bytes/<n>, 404 for anything else', async (t) => {
  const sim = spawnJsonChild(process.execPath, [simulatorProcess, '--origin'], { input: true });
  t.teardown(() => sim.stop());
  const info = await sim.next<{ edge: string; origin?: string }>((m) => typeof m.edge === 'string', 20_000);
  t.regex(info.origin ?? '', /^http:\/\/127\.0\.0\.1:\d+$/);
  const sized = await request(`${info.origin}/bytes/70000`);
  t.is(sized.statusCode, 200);
  t.is(sized.headers['content-length'], '70000');
  t.is((await sized.body.arrayBuffer()).byteLength, 70_000);
  const posted = await request(`${info.origin}/bytes/12`, { method: 'POST', body: Buffer.alloc(100_000, 'u') });
  t.is(posted.statusCode, 200, 'an upload is answered once its body was read');
  t.is((await posted.body.arrayBuffer()).byteLength, 12);
  const other = await request(`${info.origin}/elsewhere`);
  t.is(other.statusCode, 404);
  await other.body.dump();
});

test('without --origin the simulator process names no origin', async (t) => {
  const sim = spawnJsonChild(process.execPath, [simulatorProcess], { input: true });
  t.teardown(() => sim.stop());
  const info = await sim.next<Record<string, unknown>>((m) => typeof m.edge === 'string', 20_000);
  t.false('origin' in info);
});
