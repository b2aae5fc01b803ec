import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configSchema } from '../../src/config/schema.js';
import { chartValueFor, envVarFor, generateReferences, GENERATED_PATHS } from '../../src/docgen/index.js';
import { describeType, flattenSchema, formatDuration, toInputJsonSchema, type JsonSchema } from '../../src/docgen/json-schema.js';
import { CORE_ANNOTATIONS } from '../../src/routes/core-annotations.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

test('the committed generated files are up to date (run `npm run generate` after changing a schema or manifest)', async (t) => {
  const files = await generateReferences();
  t.deepEqual(
    files.map((f) => f.path),
    [...GENERATED_PATHS],
  );
  for (const file of files) {
    const committed = readFileSync(join(ROOT, file.path), 'utf8');
    t.true(committed === file.text, `${file.path} is stale: run \`npm run generate\``);
  }
});

test('generation is deterministic', async (t) => {
  const [a, b] = [await generateReferences(), await generateReferences()];
  t.deepEqual(a, b);
});

test('the configuration reference lists every setting with its environment variable and Helm value', async (t) => {
  const text = (await generateReferences()).find((f) => f.path === 'docs/configuration.md')!.text;
  const rows = flattenSchema(toInputJsonSchema(configSchema));
  t.true(rows.length > 40);
  for (const row of rows) {
    t.true(text.includes(`| \`${row.path}\` |`), `row for ${row.path}`);
    if (!row.path.includes('[]')) t.true(text.includes(`\`${envVarFor(row.path)}\``), `env for ${row.path}`);
  }
  t.regex(text, /\| `proxy\.connectTimeout` \| duration \| `30s` \|/);
  t.regex(text, /\| `tunnel\.haConnections` \| integer 1–16 \| `4` \|/);
  t.regex(text, /\| `ingressClass\.controller` .*\| `ingressClass\.controllerValue` \|$/m);
});

test('environment variable names are the ones config/load.ts reads', (t) => {
  t.is(envVarFor('proxy.connectTimeout'), 'WARREN_PROXY__CONNECT_TIMEOUT');
  t.is(envVarFor('kubernetes.leaderElection.leaseDuration'), 'WARREN_KUBERNETES__LEADER_ELECTION__LEASE_DURATION');
  t.is(envVarFor('logLevel'), 'WARREN_LOG_LEVEL');
});

test('every setting maps to a value in the chart schema, or says how the chart sets it', (t) => {
  const values = JSON.parse(readFileSync(join(ROOT, 'chart', 'values.schema.json'), 'utf8')) as JsonSchema;
  for (const row of flattenSchema(toInputJsonSchema(configSchema))) {
    const target = chartValueFor(row.path);
    if ('note' in target) {
      t.true(target.note.length > 0);
      continue;
    }
    let node: JsonSchema | undefined = values;
    for (const segment of target.values.split('.')) {
      const list = segment.endsWith('[]');
      node = node?.properties?.[list ? segment.slice(0, -2) : segment];
      if (list) node = node?.items;
    }
    t.truthy(node, `${row.path} → ${target.values} exists in values.schema.json`);
  }
});

test('the annotation reference lists every core annotation and every backend protocol', async (t) => {
  const text = (await generateReferences()).find((f) => f.path === 'docs/annotations.md')!.text;
  for (const spec of CORE_ANNOTATIONS) t.true(text.includes(`| \`warren.dev/${spec.key}\` |`), spec.key);
  for (const value of ['HTTP', 'HTTPS', 'H2C', 'GRPC', 'GRPCS', 'AUTO']) t.regex(text, new RegExp(`^\\| \`${value}\` \\|`, 'm'));
});

test('types and durations read the way users write them', (t) => {
  t.is(formatDuration(90_000), '90s');
  t.is(formatDuration(120_000), '2m');
  t.is(formatDuration(3_600_000), '1h');
  t.is(formatDuration(250), '250ms');
  t.is(formatDuration(0), '0ms');
  const schema = toInputJsonSchema(configSchema).properties!;
  t.is(describeType(schema.logLevel!), 'one of "fatal", "error", "warn", "info", "debug", "trace", "silent"');
  t.is(describeType(schema.shutdownGracePeriod!), 'duration');
  t.is(describeType(schema.server!.properties!.listen!), 'host:port');
  t.is(describeType(schema.kubernetes!.properties!.namespaces!), 'list of string');
  t.is(describeType(schema.proxy!.properties!.maxHeaderBytes!), 'integer ≥ 1');
});
