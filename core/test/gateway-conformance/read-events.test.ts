/**
 * How the conformance runner reads the suite's `go test -json` stream (the format of `go tool test2json`): one
 * outcome per suite test with its subtests' output, the tests a bound cut off, and TestConformance's own outcome.
 */
import test from 'ava';
import { readEvents } from './support/run-suite.js';

const line = (event: Record<string, unknown>) => JSON.stringify({ Package: 'conformance', ...event });
const out = (name: string, text: string) => line({ Action: 'output', Test: name, Output: `${text}\n` });

test('each suite test gets its outcome and the output of its subtests; a test cut off by the bound is unfinished', (t) => {
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
    out('TestConformance/HTTPRouteWeight', '--- FAIL: TestConformance/HTTPRouteWeight (4.50s)'),
    line({ Action: 'fail', Test: 'TestConformance/HTTPRouteWeight' }),
    line({ Action: 'run', Test: 'TestConformance/TLSRouteSimpleSameNamespace' }),
    out('TestConformance/TLSRouteSimpleSameNamespace', 'Skipping: not supported'),
    line({ Action: 'skip', Test: 'TestConformance/TLSRouteSimpleSameNamespace', Elapsed: 0 }),
    'not json: a line the binary printed outside test2json',
    line({ Action: 'run', Test: 'TestConformance/HTTPRouteMatching' }),
    line({ Action: 'run', Test: 'TestConformance/HTTPRouteNoBackendRefs' }),
    out('TestConformance/HTTPRouteNoBackendRefs', 'panic: test timed out after 15m0s'),
    line({ Action: 'fail', Test: 'TestConformance/HTTPRouteNoBackendRefs' }),
    line({ Action: 'fail', Test: 'TestConformance', Elapsed: 900 }),
    line({ Action: 'run', Test: 'TestOther' }),
    line({ Action: 'pass', Test: 'TestOther' }),
  ].join('\n');
  const { outcomes, unfinished, top } = readEvents(stream);
  t.deepEqual([...outcomes.keys()], ['HTTPRouteSimpleSameNamespace', 'HTTPRouteWeight', 'TLSRouteSimpleSameNamespace']);
  t.deepEqual(outcomes.get('HTTPRouteSimpleSameNamespace'), { action: 'pass', output: ['request ok'] });
  t.is(outcomes.get('HTTPRouteWeight')?.action, 'fail');
  t.deepEqual(outcomes.get('HTTPRouteWeight')?.output, ['expected 70/30, got 50/50', '--- FAIL: TestConformance/HTTPRouteWeight (4.50s)']);
  t.is(outcomes.get('TLSRouteSimpleSameNamespace')?.action, 'skip');
  t.deepEqual(unfinished, ['HTTPRouteMatching', 'HTTPRouteNoBackendRefs'], 'a paused test, and the one the timeout panic struck');
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

test('lines that differ only in their times from one of the last few fold into it with a count, as the suite polls ten times a second', (t) => {
  const poll = (at: string) => out('TestConformance/GatewayWithAttachedRoutes', `    helpers.go:1057: 2026-12-07T12:29:${at}Z: Expected 1 Gateway status listeners, got 0`);
  const { outcomes } = readEvents(
    [
      poll('54.827592101'),
      out('TestConformance/GatewayWithAttachedRoutes', '    helpers.go:279: 2026-12-07T12:29:54.83Z: gateway not Accepted yet'),
      poll('54.927662905'),
      out('TestConformance/GatewayWithAttachedRoutes', '    helpers.go:279: 2026-12-07T12:29:54.93Z: gateway not Accepted yet'),
      poll('55.027433796'),
      out('TestConformance/GatewayWithAttachedRoutes', '    http.go:325: 2026-12-07T12:29:55.1Z: expected infra-backend-v2, got infra-backend-v3 (after 1.008034844s)'),
      out('TestConformance/GatewayWithAttachedRoutes', '    http.go:325: 2026-12-07T12:29:56.1Z: expected infra-backend-v2, got infra-backend-v3 (after 2.012214195s)'),
      out('TestConformance/GatewayWithAttachedRoutes', '        Error: context deadline exceeded'),
      line({ Action: 'fail', Test: 'TestConformance/GatewayWithAttachedRoutes', Elapsed: 30 }),
    ].join('\n'),
  );
  t.deepEqual(outcomes.get('GatewayWithAttachedRoutes')?.output, [
    '    helpers.go:1057: 2026-12-07T12:29:54.827592101Z: Expected 1 Gateway status listeners, got 0   [and 2 more like it]',
    '    helpers.go:279: 2026-12-07T12:29:54.83Z: gateway not Accepted yet   [and 1 more like it]',
    '    http.go:325: 2026-12-07T12:29:55.1Z: expected infra-backend-v2, got infra-backend-v3 (after 1.008034844s)   [and 1 more like it]',
    '        Error: context deadline exceeded',
  ]);
});
