import test from 'ava';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeHeapSnapshot } from 'node:v8';
import { buffersByRetainer } from '../lib/heap-buffers.js';

/** A holder with a recognisable name, its buffers in an array as a queue keeps them. */
class BufferHolderForTest {
  readonly queue = [Buffer.alloc(300 * 1024, 1), Buffer.alloc(300 * 1024, 2)];
}

test('live buffers are grouped by the path that retains them, the chunks of one queue together', (t) => {
  const held = new BufferHolderForTest();
  const file = join(tmpdir(), `heap-buffers-${process.pid}.heapsnapshot`);
  writeHeapSnapshot(file);
  t.teardown(() => rmSync(file, { force: true }));
  const { total, groups } = buffersByRetainer(JSON.parse(readFileSync(file, 'utf8')), 6);
  const ours = groups.find((g) => g.path.includes('BufferHolderForTest.queue'));
  t.truthy(ours, groups.map((g) => g.path).join('\n'));
  t.is(ours!.count, 2, 'the two chunks of one queue make one line');
  t.is(ours!.bytes, 600 * 1024);
  t.true(total >= 600 * 1024);
  t.is(held.queue.length, 2);
});
