/**
 * One duration syntax for settings and annotations: a number with a unit, or a bare number meaning
 * milliseconds, whether it arrives as a YAML number, a `--set` value or an annotation string.
 */
import test from 'ava';
import { loadConfig } from '../../src/config/load.js';
import { durationAnnotation, parseDuration } from '../../src/config/duration.js';
import { CORE_ANNOTATIONS } from '../../src/routes/core-annotations.js';

const annotation = (key: string) => CORE_ANNOTATIONS.find((a) => a.key === key)!.schema;

test('a bare number means milliseconds in settings and in annotations alike', (t) => {
  for (const text of ['250', '250ms', '0.25s']) {
    t.is(parseDuration(text), 250, text);
    t.is(loadConfig({ env: {}, sets: [`proxy.connectTimeout=${text}`] }).proxy.connectTimeout, 250, `--set ${text}`);
    t.is(loadConfig({ env: { WARREN_PROXY__CONNECT_TIMEOUT: text } }).proxy.connectTimeout, 250, `env ${text}`);
    const parsed = annotation('connect-timeout').safeParse(text);
    t.true(parsed.success, `annotation ${text}`);
    t.is(parsed.data, 250, `annotation ${text}`);
  }
});

test('anything else is refused in both places with the same hint', (t) => {
  for (const text of ['5 s', '-5', '5sec', 's', '']) {
    t.is(parseDuration(text), undefined, text);
    t.false(annotation('connect-timeout').safeParse(text).success, `annotation "${text}"`);
  }
  const err = t.throws(() => loadConfig({ env: {}, sets: ['proxy.connectTimeout=5sec'] }));
  t.regex(err!.message, /proxy\.connectTimeout/);
  t.regex(err!.message, /a bare number means milliseconds/);
});

test('a plugin duration annotation parses to milliseconds within its bound and says what it wants otherwise', (t) => {
  const idle = durationAnnotation({ example: '10m', max: '24h' });
  t.is(idle.parse('10m'), 600_000);
  t.is(idle.parse('24h'), 86_400_000);
  for (const bad of ['0s', '25h', 'soon', '-1s']) {
    const result = idle.safeParse(bad);
    t.false(result.success, bad);
    t.is(result.error?.issues[0]?.message, 'a duration such as "10m", above 0 and at most 24h', bad);
  }
  const heartbeat = durationAnnotation({ example: '15s', max: '1h', zeroIsOff: true });
  t.is(heartbeat.parse('0s'), 0, 'zero turns the feature off where the annotation allows it');
  t.is(heartbeat.safeParse('2h').error?.issues[0]?.message, 'a duration such as "15s", at most 1h ("0s" = off)');
});
