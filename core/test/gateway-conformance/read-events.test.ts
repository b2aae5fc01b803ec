/**
 * How the conformance runner reads the suite's `go test -json` stream (the format of `go tool test2json`): one
 * outcome per suite test with its subtests' output, the tests a bound cut off, and TestConformance's own outcome.
 */
import test from 'ava';
import { readEvents } from './support/run-suite.js';

const line = (event: Record<string, unknown>) => JSON.stringify({ Package: 'conformance', ...event });
const out = (name: string, text: string) => line({ Action: 'output', Test: name, Output: `${text}\n` });

test('each suite test gets its outcome and the output of its subtests; a test that never ended is unfinished', (t) => {
  const stream = [
    '{"Action":"start","Package":"conformance"}',
    line({ Action: 'run', Test: 'TestConformance' }),
    out('TestConformance', 'Running conformance tests with:'),
    line({ Action: 'run', Test: 'TestConformance/HTTPRouteSimpleSameNamespace' }),
    line({ Action: 'run', Test: 'TestConformance/HTTPRouteSimpleSameNamespace/Simple_HTTP_request' }),
    out('TestConformance/HTTPRouteSimpleSameNamespace/Simple_HTTP_request', 'request ok'),
    line({ Action: 'pass', Test: 'TestConformance/HTTPRouteSimpleSameNamespace/Simple_HTTP_request', Elapsed: 1.5 }),
    line({ Action: 'pass', Test: 'TestConformance/HTTPRouteSimpleSameNamespace', Elapsed: 2.25 }),
    line({ Action: 'run', Test: 'TestConformance/HTTPRouteWeight' }),
    out('TestConformance/HTTPRouteWeight/weights', 'expected 70/30, got 50/50'),
    line({ Action: 'fail', Test: 'TestConformance/HTTPRouteWeight/weights', Elapsed: 3 }),
    line({ Action: 'fail', Test: 'TestConformance/HTTPRouteWeight', Elapsed: 4 }),
    line({ Action: 'run', Test: 'TestConformance/TLSRouteSimpleSameNamespace' }),
    out('TestConformance/TLSRouteSimpleSameNamespace', 'Skipping: not supported'),
    line({ Action: 'skip', Test: 'TestConformance/TLSRouteSimpleSameNamespace', Elapsed: 0 }),
    'not json: a line the binary printed outside test2json',
    line({ Action: 'run', Test: 'TestConformance/HTTPRouteMatching' }),
    out('TestConformance/HTTPRouteMatching', 'panic: test timed out after 15m0s'),
    line({ Action: 'fail', Test: 'TestConformance', Elapsed: 900 }),
    line({ Action: 'run', Test: 'TestOther' }),
    line({ Action: 'pass', Test: 'TestOther' }),
  ].join('\n');
  const { outcomes, unfinished, top } = readEvents(stream);
  t.deepEqual([...outcomes.keys()], ['HTTPRouteSimpleSameNamespace', 'HTTPRouteWeight', 'TLSRouteSimpleSameNamespace']);
  t.deepEqual(outcomes.get('HTTPRouteSimpleSameNamespace'), { action: 'pass', seconds: 2.25, output: ['request ok'] });
  t.is(outcomes.get('HTTPRouteWeight')?.action, 'fail');
  t.deepEqual(outcomes.get('HTTPRouteWeight')?.output, ['expected 70/30, got 50/50']);
  t.is(outcomes.get('TLSRouteSimpleSameNamespace')?.action, 'skip');
  t.deepEqual(unfinished, ['HTTPRouteMatching']);
  t.is(top?.action, 'fail');
  t.deepEqual(top?.output, ['Running conformance tests with:']);
});

test('a test keeps only its last 80 lines of output', (t) => {
  const lines = Array.from({ length: 100 }, (_, i) => out('TestConformance/GatewayModifyListeners', `line ${i}`));
  const { outcomes } = readEvents([...lines, line({ Action: 'fail', Test: 'TestConformance/GatewayModifyListeners', Elapsed: 1 })].join('\n'));
  const output = outcomes.get('GatewayModifyListeners')!.output;
  t.is(output.length, 80);
  t.is(output[0], 'line 20');
  t.is(output.at(-1), 'line 99');
});
