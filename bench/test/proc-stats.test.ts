import test from 'ava';
import { parseSchedstat, runQueueWaitMs } from '../lib/proc-stats.js';

test('a schedstat line gives on-CPU time and run-queue wait in milliseconds', (t) => {
  t.deepEqual(parseSchedstat('1234567890 5500000 731\n'), { cpuMs: 1234.56789, waitMs: 5.5 });
  t.throws(() => parseSchedstat(''), { message: /schedstat: cannot read/ });
});

test("a process's run-queue wait is read from its main thread and never goes back", (t) => {
  const first = runQueueWaitMs(process.pid);
  // Keep the thread busy for a moment so the scheduler accounts for it again.
  const until = Date.now() + 20;
  while (Date.now() < until);
  const second = runQueueWaitMs(process.pid);
  t.true(Number.isFinite(first) && first >= 0);
  t.true(second >= first);
});
