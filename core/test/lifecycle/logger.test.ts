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

test('errors are written with their code and cause chain; a stack only for unexpected errors; summaries stay plain', async (t) => {
  const { WarrenError, ErrorCode } = await import('../../src/errors.js');
  const logs = new LogCapture();
  const log = createLogger({ level: 'info', destination: logs });
  const inUse = Object.assign(new Error('listen EADDRINUSE: address already in use 127.0.0.1:8080'), {
    code: 'EADDRINUSE',
    syscall: 'listen',
    address: '127.0.0.1',
    port: 8080,
  });
  log.error({ err: new WarrenError(ErrorCode.ConfigInvalid, 'cannot listen on 127.0.0.1:8080 (local.eyeballListen)', { terminal: true, cause: inUse }) }, 'expected');
  log.error({ err: errorSummary(Object.assign(new Error('HTTP-Code: 500'), { code: 500 })) }, 'summary');
  log.error({ err: new TypeError('x is not a function') }, 'bug');
  const [expected, summary, bug] = logs.parsed() as Array<{ err: Record<string, unknown> }>;
  t.deepEqual(expected!.err, {
    type: 'WarrenError',
    message: 'cannot listen on 127.0.0.1:8080 (local.eyeballListen)',
    code: 'WARREN_ERR_CONFIG_INVALID',
    terminal: true,
    cause: { type: 'Error', message: 'listen EADDRINUSE: address already in use 127.0.0.1:8080', code: 'EADDRINUSE', syscall: 'listen', address: '127.0.0.1', port: 8080 },
  });
  t.deepEqual(summary!.err, { message: 'HTTP-Code: 500', status: 500 }, 'no "type":"Object" and no empty stack');
  t.is(bug!.err.type, 'TypeError');
  t.regex(String(bug!.err.stack), /^TypeError: x is not a function\n\s+at /, 'an unexpected error keeps its stack');
});
