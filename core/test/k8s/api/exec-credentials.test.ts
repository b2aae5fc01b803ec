import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { stringify } from 'yaml';
import { kubeconfigAccess } from '../../../src/k8s/api/access.js';
import { execCredentialSource, type ExecConfig } from '../../../src/k8s/api/exec-credentials.js';
import { tempDir } from './temp-dir.js';

const V1 = 'client.authentication.k8s.io/v1';
const V1BETA1 = 'client.authentication.k8s.io/v1beta1';
const TOKEN = 'SECRET-TOKEN-4f1d2c';
const CA_PEM = '-----BEGIN CERTIFICATE-----\nZXhlYy1jYQ==\n-----END CERTIFICATE-----\n';
const CLUSTER = { server: 'https://127.0.0.1:6443', caPem: CA_PEM, insecureSkipTlsVerify: false };

interface Plugin {
  /** Absolute path of the executable script. */
  readonly command: string;
  /** How many times the script has run. */
  runs(): number;
  /** What the last run saw: KUBERNETES_EXEC_INFO (parsed), argv after the script, and its environment. */
  lastSeen(): { info: { apiVersion: string; kind: string; spec: Record<string, unknown> }; args: string[]; env: Record<string, string> };
}

/**
 * Writes an executable Node script that records each run (count, exec info, args, env) next to itself and then
 * runs `body`, JavaScript with `fs`, `process` and `write(obj)` (prints obj as JSON) in scope.
 */
function plugin(t: ExecutionContext, body: string, name = 'plugin'): Plugin {
  const dir = tempDir(t, 'exec-plugin');
  const command = join(dir, name);
  const counter = join(dir, 'runs');
  const seen = join(dir, 'seen.json');
  writeFileSync(
    command,
    `#!${process.execPath}
'use strict';
const fs = require('node:fs');
const runs = (fs.existsSync(${JSON.stringify(counter)}) ? Number(fs.readFileSync(${JSON.stringify(counter)}, 'utf8')) : 0) + 1;
fs.writeFileSync(${JSON.stringify(counter)}, String(runs));
fs.writeFileSync(${JSON.stringify(seen)}, JSON.stringify({ info: JSON.parse(process.env.KUBERNETES_EXEC_INFO || 'null'), args: process.argv.slice(2), env: process.env }));
const write = (obj) => process.stdout.write(JSON.stringify(obj));
${body}
`,
  );
  chmodSync(command, 0o755);
  return {
    command,
    runs: () => (existsSync(counter) ? Number(readFileSync(counter, 'utf8')) : 0),
    lastSeen: () => JSON.parse(readFileSync(seen, 'utf8')),
  };
}

function config(command: string, overrides: Partial<ExecConfig> = {}): ExecConfig {
  return { apiVersion: V1, command, args: [], env: {}, provideClusterInfo: false, where: 'users[u].user.exec (/k/config)', ...overrides };
}

const credential = (status: Record<string, unknown>, apiVersion = V1) =>
  `write({ apiVersion: ${JSON.stringify(apiVersion)}, kind: 'ExecCredential', status: ${JSON.stringify(status)} });`;
const inOneHour = () => new Date(Date.now() + 3_600_000).toISOString();

test('the plugin gets KUBERNETES_EXEC_INFO (non-interactive, no cluster), its args and env; a token becomes Bearer', async (t) => {
  const p = plugin(t, credential({ token: TOKEN }));
  const source = execCredentialSource(config(p.command, { args: ['get-token', '--cluster', 'kind warren'], env: { PLUGIN_MODE: 'test', SHARED: 'from-exec-env' } }), CLUSTER, {
    BASE_ONLY: 'from-base',
    SHARED: 'from-base',
  });
  t.deepEqual(await source(), { authorization: `Bearer ${TOKEN}`, clientCert: undefined });
  const seen = p.lastSeen();
  t.deepEqual(seen.info, { apiVersion: V1, kind: 'ExecCredential', spec: { interactive: false } });
  t.deepEqual(seen.args, ['get-token', '--cluster', 'kind warren']);
  t.is(seen.env.PLUGIN_MODE, 'test');
  t.is(seen.env.SHARED, 'from-exec-env', 'exec env entries override the inherited environment');
  t.is(seen.env.BASE_ONLY, 'from-base', 'the given environment is inherited');
});

test('provideClusterInfo passes server, CA data and insecure-skip-tls-verify in the exec info', async (t) => {
  const p = plugin(t, credential({ token: TOKEN }, V1BETA1));
  const source = execCredentialSource(
    config(p.command, { apiVersion: V1BETA1, provideClusterInfo: true }),
    { server: 'https://127.0.0.1:6443/prefix', caPem: CA_PEM, insecureSkipTlsVerify: true },
    {},
  );
  await source();
  const { info } = p.lastSeen();
  t.is(info.apiVersion, V1BETA1);
  t.is(info.spec.interactive, false);
  const cluster = info.spec.cluster as Record<string, unknown>;
  t.is(cluster.server, 'https://127.0.0.1:6443/prefix');
  t.is(Buffer.from(String(cluster['certificate-authority-data']), 'base64').toString('utf8'), CA_PEM);
  t.is(cluster['insecure-skip-tls-verify'], true);
});

test('through a kubeconfig: a relative command resolves against its folder, and cluster info comes from the context', async (t) => {
  const p = plugin(t, credential({ token: TOKEN }));
  const dir = tempDir(t, 'kubeconfig');
  mkdirSync(join(dir, 'bin'));
  // The kubeconfig names the plugin as ./bin/<name>; put a copy there.
  writeFileSync(join(dir, 'bin', 'auth'), readFileSync(p.command));
  chmodSync(join(dir, 'bin', 'auth'), 0o755);
  const file = join(dir, 'config');
  writeFileSync(
    file,
    stringify({
      clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:6443/k8s/', 'certificate-authority-data': Buffer.from(CA_PEM).toString('base64') } }],
      users: [
        { name: 'u', user: { exec: { apiVersion: V1, command: './bin/auth', args: ['--x'], env: [{ name: 'FROM_KUBECONFIG', value: 'yes' }], provideClusterInfo: true } } },
      ],
      contexts: [{ name: 'main', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'main',
    }),
  );
  const access = kubeconfigAccess([file], {});
  t.deepEqual(await access.credentials(), { authorization: `Bearer ${TOKEN}`, clientCert: undefined });
  const seen = p.lastSeen();
  t.deepEqual(seen.args, ['--x']);
  t.is(seen.env.FROM_KUBECONFIG, 'yes');
  const cluster = seen.info.spec.cluster as Record<string, unknown>;
  t.is(cluster.server, 'https://127.0.0.1:6443/k8s');
  t.is(Buffer.from(String(cluster['certificate-authority-data']), 'base64').toString('utf8'), CA_PEM);
  t.false('insecure-skip-tls-verify' in cluster);
});

test('a bare command name is looked up on the PATH of the given environment', async (t) => {
  const p = plugin(t, credential({ token: TOKEN }), 'warren-test-auth-plugin');
  const source = execCredentialSource(config('warren-test-auth-plugin'), CLUSTER, { PATH: join(p.command, '..') });
  t.is((await source()).authorization, `Bearer ${TOKEN}`);
  t.is(p.runs(), 1);
});

test('a client certificate and key are returned, with a token when both are given', async (t) => {
  const certOnly = plugin(t, credential({ clientCertificateData: 'CERT-PEM', clientKeyData: 'KEY-PEM' }));
  t.deepEqual(await execCredentialSource(config(certOnly.command), CLUSTER, {})(), { authorization: undefined, clientCert: { certPem: 'CERT-PEM', keyPem: 'KEY-PEM' } });
  const both = plugin(t, credential({ token: TOKEN, clientCertificateData: 'CERT-PEM', clientKeyData: 'KEY-PEM' }));
  t.deepEqual(await execCredentialSource(config(both.command), CLUSTER, {})(), { authorization: `Bearer ${TOKEN}`, clientCert: { certPem: 'CERT-PEM', keyPem: 'KEY-PEM' } });
});

test('a credential is cached until its expirationTimestamp, and re-fetched on refresh', async (t) => {
  // Each run hands out a numbered token, so a cached answer is told apart from a fresh one.
  const p = plugin(t, `write({ apiVersion: '${V1}', kind: 'ExecCredential', status: { token: 'tok-' + runs, expirationTimestamp: ${JSON.stringify(inOneHour())} } });`);
  const source = execCredentialSource(config(p.command), CLUSTER, {});
  t.is((await source()).authorization, 'Bearer tok-1');
  t.is((await source()).authorization, 'Bearer tok-1');
  t.is((await source(false)).authorization, 'Bearer tok-1');
  t.is(p.runs(), 1);
  t.is((await source(true)).authorization, 'Bearer tok-2', 'refresh runs the plugin again');
  t.is((await source()).authorization, 'Bearer tok-2', 'and caches the new answer');
  t.is(p.runs(), 2);
});

test('a credential without expirationTimestamp is kept until a refresh', async (t) => {
  const p = plugin(t, `write({ apiVersion: '${V1}', kind: 'ExecCredential', status: { token: 'tok-' + runs } });`);
  const source = execCredentialSource(config(p.command), CLUSTER, {});
  for (let i = 0; i < 3; i++) t.is((await source()).authorization, 'Bearer tok-1');
  t.is(p.runs(), 1);
  t.is((await source(true)).authorization, 'Bearer tok-2');
});

test('an expired credential, or one expiring within the renewal margin, is fetched again on the next call', async (t) => {
  for (const [label, offsetMs] of [
    ['expired a minute ago', -60_000],
    ['expires in 5 s', 5_000],
  ] as const) {
    const p = plugin(
      t,
      `write({ apiVersion: '${V1}', kind: 'ExecCredential', status: { token: 'tok-' + runs, expirationTimestamp: new Date(Date.now() + ${offsetMs}).toISOString() } });`,
    );
    const source = execCredentialSource(config(p.command), CLUSTER, {});
    t.is((await source()).authorization, 'Bearer tok-1', label);
    t.is((await source()).authorization, 'Bearer tok-2', label);
    t.is((await source()).authorization, 'Bearer tok-3', label);
    t.is(p.runs(), 3, label);
  }
});

test('concurrent callers share one run', async (t) => {
  const p = plugin(t, `setTimeout(() => write({ apiVersion: '${V1}', kind: 'ExecCredential', status: { token: 'tok-' + runs } }), 200);`);
  const source = execCredentialSource(config(p.command), CLUSTER, {});
  const answers = await Promise.all([source(), source(), source(true), source()]);
  t.is(p.runs(), 1);
  t.deepEqual(
    answers.map((a) => a.authorization),
    ['Bearer tok-1', 'Bearer tok-1', 'Bearer tok-1', 'Bearer tok-1'],
  );
});

test('a failed run is not cached: the next call runs the plugin again', async (t) => {
  const p = plugin(
    t,
    `if (runs === 1) { process.stderr.write('temporary failure\\n'); process.exit(1); } write({ apiVersion: '${V1}', kind: 'ExecCredential', status: { token: 'tok-' + runs } });`,
  );
  const source = execCredentialSource(config(p.command), CLUSTER, {});
  await t.throwsAsync(source(), { message: /temporary failure/ });
  t.is((await source()).authorization, 'Bearer tok-2');
  t.is(p.runs(), 2);
});

test('a command that does not exist is reported as not found, naming the command and the kubeconfig field', async (t) => {
  const dir = tempDir(t, 'exec-plugin');
  const missing = join(dir, 'no-such-plugin');
  const err = await t.throwsAsync(execCredentialSource(config(missing), CLUSTER, {})());
  t.is(err.message, `exec credential plugin users[u].user.exec (/k/config) failed: command not found: ${missing}`);
  const bare = await t.throwsAsync(execCredentialSource(config('warren-no-such-plugin'), CLUSTER, { PATH: dir })());
  t.regex(bare.message, /command not found: warren-no-such-plugin/);
});

/** Plugins that misbehave; each prints the secret token somewhere, and no error may repeat it. */
const failures: ReadonlyArray<{ title: string; body: string; message: RegExp }> = [
  {
    title: 'a non-zero exit reports the last line of stderr',
    body: `process.stdout.write(JSON.stringify({ status: { token: '${TOKEN}' } })); process.stderr.write('starting\\nerror: refresh token expired, run login again\\n'); process.exit(3);`,
    message: /failed: error: refresh token expired, run login again$/,
  },
  { title: 'non-JSON output', body: `process.stdout.write('token=${TOKEN}\\n');`, message: /did not print an ExecCredential as JSON/ },
  { title: 'a wrong kind', body: `write({ apiVersion: '${V1}', kind: 'Credential', status: { token: '${TOKEN}' } });`, message: /printed no ExecCredential status/ },
  { title: 'no status', body: `write({ apiVersion: '${V1}', kind: 'ExecCredential', spec: { token: '${TOKEN}' } });`, message: /printed no ExecCredential status/ },
  {
    title: 'a wrong apiVersion',
    body: `write({ apiVersion: '${V1BETA1}', kind: 'ExecCredential', status: { token: '${TOKEN}' } });`,
    message: /answered with apiVersion "client\.authentication\.k8s\.io\/v1beta1", expected client\.authentication\.k8s\.io\/v1$/,
  },
  {
    title: 'neither token nor certificate',
    body: `write({ apiVersion: '${V1}', kind: 'ExecCredential', status: { token: '', clientCertificateData: '${TOKEN}', expirationTimestamp: '2999-01-01T00:00:00Z' } });`,
    message: /returned neither a token nor a client certificate and key/,
  },
];

for (const failure of failures) {
  test(`plugin errors: ${failure.title}, naming the field and never the token`, async (t) => {
    const p = plugin(t, failure.body);
    const err = await t.throwsAsync(execCredentialSource(config(p.command), CLUSTER, {})());
    t.regex(err.message, failure.message);
    t.true(err.message.startsWith('exec credential plugin users[u].user.exec (/k/config) '), err.message);
    t.false(err.message.includes(TOKEN), 'the token is not in the message');
    t.false(String(err.stack).includes(TOKEN), 'nor in the stack');
    t.is(p.runs(), 1);
  });
}

// Known bug, reported for the owner of exec-credentials.ts to fix: when the plugin exits non-zero with nothing on
// stderr, the message falls back to Node's "Command failed: <command> <args…>", and kubeconfig args can hold
// secrets (e.g. kubelogin's --oidc-client-secret=…). Once fixed (report the exit code or signal instead), this
// test passes and ava asks for `.failing` to be removed.
test('plugin errors: a silent non-zero exit does not repeat the plugin arguments', async (t) => {
  const p = plugin(t, 'process.exit(2);');
  const err = await t.throwsAsync(execCredentialSource(config(p.command, { args: ['get-token', `--oidc-client-secret=${TOKEN}`] }), CLUSTER, {})());
  t.true(err.message.startsWith('exec credential plugin users[u].user.exec (/k/config) failed'), err.message);
  t.false(err.message.includes(TOKEN), err.message);
});
