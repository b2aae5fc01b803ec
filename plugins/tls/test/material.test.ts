import test from 'ava';
import { checkMaterial, MAX_CERTIFICATES } from '../src/material.js';

const BEGIN = '-----BEGIN CERTIFICATE-----\n';

test('unterminated certificate markers are judged in one pass, not by backtracking over the whole Secret', (t) => {
  // 336 KB of BEGIN markers without an END: quadratic scanning would hold the event loop for seconds.
  const hostile = Buffer.from(BEGIN.repeat(12_000));
  const started = performance.now();
  const problems = checkMaterial({ ca: hostile, cert: hostile });
  const elapsed = performance.now() - started;
  t.deepEqual(
    problems.map((p) => `${p.key} ${p.problem}`),
    ['ca.crt is not PEM: no "-----BEGIN CERTIFICATE-----" block', 'tls.crt is not PEM: no "-----BEGIN CERTIFICATE-----" block'],
  );
  t.true(elapsed < 500, `checked in ${Math.round(elapsed)} ms`);
});

test('a block is what lies between a BEGIN and the next END; more blocks than the bound are refused without parsing them all', (t) => {
  const [problem] = checkMaterial({ ca: Buffer.from(`junk ${BEGIN}${BEGIN}not base64\n-----END CERTIFICATE-----\ntrailing`) });
  t.is(problem?.key, 'ca.crt');
  t.regex(problem!.problem, /^the certificate does not parse/);
  const many = Buffer.from(`${BEGIN}x\n-----END CERTIFICATE-----\n`.repeat(MAX_CERTIFICATES + 5));
  t.deepEqual(checkMaterial({ ca: many }), [{ key: 'ca.crt', problem: `holds more than ${MAX_CERTIFICATES} certificates` }]);
});
