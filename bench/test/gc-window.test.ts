import { GCProfiler, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import test from 'ava';
import { gcWindow } from '../lib/gc-window.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as (options?: { type: 'minor' | 'major' }) => void;

test('a GC window counts what its scavenges moved to the old generation, and its mark-compacts', (t) => {
  const profiler = new GCProfiler();
  profiler.start();
  const kept = Array.from({ length: 20_000 }, (_, i) => ({ i }));
  gc({ type: 'minor' });
  gc({ type: 'minor' });
  gc({ type: 'major' });
  const window = gcWindow(profiler.stop());
  t.is(kept.length, 20_000);
  t.true(window.scavenges >= 2);
  t.true(window.markCompacts >= 1);
  // 20,000 objects of at least 16 bytes survived two scavenges, so they were promoted.
  t.true(window.promoted >= 20_000 * 16, `promoted ${window.promoted}`);
  t.deepEqual(gcWindow(undefined), { promoted: 0, scavenges: 0, markCompacts: 0 });
});
