import test from 'ava';
import { completeJsonLines } from './support/json-lines.js';

test('a log line caught half-written is left for the next read; complete lines parse, other output is skipped', (t) => {
  const whole = '{"msg":"one"}\nnot json\n{"msg":"two","n":2}\n';
  t.deepEqual(completeJsonLines(whole), [{ msg: 'one' }, { msg: 'two', n: 2 }]);
  // The process is still writing its third line.
  t.deepEqual(completeJsonLines(`${whole}{"msg":"thr`), [{ msg: 'one' }, { msg: 'two', n: 2 }]);
  t.deepEqual(completeJsonLines('{"msg":"only half'), []);
  t.deepEqual(completeJsonLines(''), []);
});
