import test from 'ava';
import { createLogger, componentLogger, errorSummary } from '../../src/observability/logger.js';
import { LogCapture } from '../support/controller.js';

test('JSON lines with level label, ISO time and component; secrets redacted wherever they are named', (t) => {
  const logs = new LogCapture();
  const root = createLogger({ level: 'info', destination: logs, base: { app: 'warren' } });
  const log = componentLogger(root, 'status');
  log.info({ token: 'eyJhbGciOi-secret', secret: { data: { 'tls.key': 'PRIVATE' } }, headers: { authorization: 'Bearer abc' }, ingress: 'ns/a' }, 'published');
  log.debug('not written at info');
  const [line, ...rest] = logs.parsed();
  t.is(rest.length, 0);
  t.is(line!.level, 'info');
  t.is(line!.component, 'status');
  t.is(line!.app, 'warren');
  t.is(line!.msg, 'published');
  t.is(line!.ingress, 'ns/a');
  t.regex(String(line!.time), /^\d{4}-\d\d-\d\dT/);
  t.false(logs.text.includes('eyJhbGciOi-secret'));
  t.false(logs.text.includes('PRIVATE'));
  t.false(logs.text.includes('Bearer abc'));
});

test('errorSummary keeps status and the first line only', (t) => {
  const err = Object.assign(new Error('HTTP-Code: 403\nBody: {"token":"x"}'), { code: 403 });
  t.deepEqual(errorSummary(err), { message: 'HTTP-Code: 403', status: 403 });
});
