import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import test from 'ava';
import { stringify } from 'yaml';
import { ErrorCode, WarrenError } from '../../../src/errors.js';
import { inClusterAccess, kubeconfigAccess, loadClusterAccess, parseKubeconfig, staticAccess, tokenFileSource } from '../../../src/k8s/api/access.js';
import { tempDir } from './temp-dir.js';

// No test here opens a connection: server URLs are only parsed.

const CA_PEM = '-----BEGIN CERTIFICATE-----\nY2EtZm9yLXRlc3Rz\n-----END CERTIFICATE-----\n';
const CERT_PEM = '-----BEGIN CERTIFICATE-----\nY2xpZW50LWNlcnQ=\n-----END CERTIFICATE-----\n';
const KEY_PEM = '-----BEGIN EC PRIVATE KEY-----\nY2xpZW50LWtleQ==\n-----END EC PRIVATE KEY-----\n';
const b64 = (s: string): string => Buffer.from(s).toString('base64');

interface Parts {
  clusters?: Record<string, Record<string, unknown>>;
  users?: Record<string, Record<string, unknown>>;
  contexts?: Record<string, Record<string, unknown>>;
  current?: string;
}

/** A kubeconfig document in kubectl's list-of-named-entries shape. */
function kubeconfigYaml(parts: Parts): string {
  const named = (field: string, entries: Record<string, Record<string, unknown>> | undefined) =>
    entries === undefined ? undefined : Object.entries(entries).map(([name, value]) => ({ name, [field]: value }));
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    ...(parts.clusters ? { clusters: named('cluster', parts.clusters) } : {}),
    ...(parts.users ? { users: named('user', parts.users) } : {}),
    ...(parts.contexts ? { contexts: named('context', parts.contexts) } : {}),
    ...(parts.current ? { 'current-context': parts.current } : {}),
  });
}

/** One context `main` → cluster `c`, user `u`. */
function single(cluster: Record<string, unknown>, user?: Record<string, unknown>): Parts {
  return {
    clusters: { c: cluster },
    ...(user ? { users: { u: user } } : {}),
    contexts: { main: { cluster: 'c', ...(user ? { user: 'u' } : {}) } },
    current: 'main',
  };
}

function writeConfig(dir: string, name: string, parts: Parts | string): string {
  const path = join(dir, name);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, typeof parts === 'string' ? parts : kubeconfigYaml(parts));
  return path;
}

test('certificate-authority-data and a token give the decoded CA and a Bearer header', async (t) => {
  const dir = tempDir(t, 'kubeconfig');
  const file = writeConfig(dir, 'config', single({ server: 'https://127.0.0.1:6443', 'certificate-authority-data': b64(CA_PEM) }, { token: 'tok-123' }));
  const access = kubeconfigAccess([file], {});
  t.is(access.server, 'https://127.0.0.1:6443');
  t.is(access.caPem, CA_PEM);
  t.false(access.insecureSkipTlsVerify);
  t.is(access.tlsServerName, undefined);
  t.is(access.clientCert, undefined);
  t.deepEqual(await access.credentials(), { authorization: 'Bearer tok-123' });
  t.deepEqual(await access.credentials(true), { authorization: 'Bearer tok-123' }, 'a static token is the answer after a 401 too');
  t.is(access.source, `context main (${file})`);
  t.false(access.source.includes('tok-123'), 'the source never holds the token');
});

test('a relative certificate-authority path resolves against the kubeconfig folder, not the working directory', (t) => {
  const dir = tempDir(t, 'kubeconfig');
  mkdirSync(join(dir, 'kube', 'pki'), { recursive: true });
  writeFileSync(join(dir, 'kube', 'pki', 'ca.crt'), CA_PEM);
  const file = writeConfig(dir, 'kube/config', single({ server: 'https://127.0.0.1:6443', 'certificate-authority': 'pki/ca.crt' }));
  t.not(process.cwd(), join(dir, 'kube'));
  t.is(kubeconfigAccess([file], {}).caPem, CA_PEM);
});

test('client certificate and key come from relative files or from -data, and -data wins over the file', (t) => {
  const dir = tempDir(t, 'kubeconfig');
  writeFileSync(join(dir, 'client.crt'), CERT_PEM);
  writeFileSync(join(dir, 'client.key'), KEY_PEM);
  const file = writeConfig(dir, 'config', {
    clusters: { c: { server: 'https://127.0.0.1:6443' } },
    users: {
      files: { 'client-certificate': 'client.crt', 'client-key': './client.key' },
      data: { 'client-certificate-data': b64('DATA-CERT'), 'client-key-data': b64('DATA-KEY') },
      both: { 'client-certificate': 'client.crt', 'client-certificate-data': b64('DATA-CERT'), 'client-key': 'client.key' },
    },
    contexts: { files: { cluster: 'c', user: 'files' }, data: { cluster: 'c', user: 'data' }, both: { cluster: 'c', user: 'both' } },
    current: 'files',
  });
  t.deepEqual(kubeconfigAccess([file], {}).clientCert, { certPem: CERT_PEM, keyPem: KEY_PEM });
  t.deepEqual(kubeconfigAccess([file], {}, 'data').clientCert, { certPem: 'DATA-CERT', keyPem: 'DATA-KEY' });
  t.deepEqual(kubeconfigAccess([file], {}, 'both').clientCert, { certPem: 'DATA-CERT', keyPem: KEY_PEM });
});

test('username and password become a Basic header', async (t) => {
  const access = parseKubeconfig(
    [{ path: '/k/config', text: kubeconfigYaml(single({ server: 'https://127.0.0.1:6443' }, { username: 'admin', password: 'p:ss wörd' })) }],
    {},
  );
  const { authorization } = await access.credentials();
  t.truthy(authorization?.startsWith('Basic '));
  t.is(Buffer.from(authorization!.slice('Basic '.length), 'base64').toString('utf8'), 'admin:p:ss wörd');
});

test('a user with no credentials and a context with no user send no Authorization', async (t) => {
  const noUser = parseKubeconfig([{ path: '/k/config', text: kubeconfigYaml(single({ server: 'https://127.0.0.1:6443' })) }], {});
  t.deepEqual(await noUser.credentials(), {});
  const emptyUser = parseKubeconfig([{ path: '/k/config', text: kubeconfigYaml(single({ server: 'https://127.0.0.1:6443' }, {})) }], {});
  t.is((await emptyUser.credentials()).authorization, undefined);
});

test('a relative tokenFile is read from the kubeconfig folder and re-read when a request was refused', async (t) => {
  const dir = tempDir(t, 'kubeconfig');
  mkdirSync(join(dir, 'secrets'));
  const tokenPath = join(dir, 'secrets', 'token');
  writeFileSync(tokenPath, 'first\n');
  const file = writeConfig(dir, 'config', single({ server: 'https://127.0.0.1:6443' }, { tokenFile: 'secrets/token' }));
  const access = kubeconfigAccess([file], {});
  t.deepEqual(await access.credentials(), { authorization: 'Bearer first' }, 'trailing newline trimmed');
  writeFileSync(tokenPath, 'second');
  t.deepEqual(await access.credentials(), { authorization: 'Bearer first' }, 'cached within the minute');
  t.deepEqual(await access.credentials(true), { authorization: 'Bearer second' }, 'refresh re-reads');
});

test('tokenFileSource re-reads the file once 60 s have passed and keeps the last token while the file is missing', async (t) => {
  const dir = tempDir(t, 'token');
  const path = join(dir, 'token');
  writeFileSync(path, 'one');
  let now = 1_000_000;
  const credentials = tokenFileSource(path, () => now);
  t.is((await credentials()).authorization, 'Bearer one');
  writeFileSync(path, 'two');
  now += 59_999;
  t.is((await credentials()).authorization, 'Bearer one', 'not yet a minute');
  now += 1;
  t.is((await credentials()).authorization, 'Bearer two', 'a minute after the last read');
  rmSync(path);
  now += 60_000;
  t.is((await credentials()).authorization, 'Bearer two', 'the file is being replaced: keep the last token');
  t.is((await credentials(true)).authorization, 'Bearer two');
  writeFileSync(path, 'three');
  t.is((await credentials()).authorization, 'Bearer three', 'a failed read does not reset the clock, so the next call tries again');
});

test('tokenFileSource rejects naming the path when the file was never readable, and an empty file sends no header', async (t) => {
  const dir = tempDir(t, 'token');
  const missing = join(dir, 'absent');
  const err = await t.throwsAsync(tokenFileSource(missing)());
  t.true(err.message.includes(missing));
  t.true(err.message.includes('ENOENT'));
  writeFileSync(join(dir, 'empty'), '  \n');
  t.deepEqual(await tokenFileSource(join(dir, 'empty'))(), { authorization: undefined });
});

test('insecure-skip-tls-verify and tls-server-name are carried over', (t) => {
  const access = parseKubeconfig(
    [{ path: '/k/config', text: kubeconfigYaml(single({ server: 'https://127.0.0.1:6443', 'insecure-skip-tls-verify': true, 'tls-server-name': 'kubernetes.default.svc' })) }],
    {},
  );
  t.true(access.insecureSkipTlsVerify);
  t.is(access.tlsServerName, 'kubernetes.default.svc');
});

test('the server URL keeps its path prefix without trailing slashes', (t) => {
  const serverOf = (server: string) => parseKubeconfig([{ path: '/k/config', text: kubeconfigYaml(single({ server })) }], {}).server;
  t.is(serverOf('https://127.0.0.1:8443/k8s/clusters/c-m-42/'), 'https://127.0.0.1:8443/k8s/clusters/c-m-42');
  t.is(serverOf('https://127.0.0.1:8443/k8s/clusters/c-m-42'), 'https://127.0.0.1:8443/k8s/clusters/c-m-42');
  t.is(serverOf('https://127.0.0.1:6443/'), 'https://127.0.0.1:6443');
  t.is(serverOf('https://kube.test:6443//'), 'https://kube.test:6443');
  t.is(serverOf('http://127.0.0.1:8080'), 'http://127.0.0.1:8080');
  t.is(serverOf('https://[::1]:6443/prefix/'), 'https://[::1]:6443/prefix');
});

test('merged files: the first definition of a name wins and current-context comes from the first file that sets it', async (t) => {
  const dir = tempDir(t, 'kubeconfig');
  const a = writeConfig(dir, 'a.yaml', {
    clusters: { shared: { server: 'https://127.0.0.1:1111' } },
    users: { shared: { token: 'from-a' } },
  });
  const b = writeConfig(dir, 'b.yaml', {
    clusters: { shared: { server: 'https://127.0.0.1:2222' }, other: { server: 'https://127.0.0.1:3333' } },
    users: { shared: { token: 'from-b' } },
    contexts: { 'ctx-b': { cluster: 'shared', user: 'shared' }, 'ctx-other': { cluster: 'other', user: 'shared' } },
    current: 'ctx-b',
  });
  const c = writeConfig(dir, 'c.yaml', {
    clusters: { third: { server: 'https://127.0.0.1:4444' } },
    contexts: { 'ctx-b': { cluster: 'third' }, 'ctx-c': { cluster: 'third' } },
    current: 'ctx-c',
  });
  const empty = writeConfig(dir, 'empty.yaml', '');
  const access = kubeconfigAccess([a, empty, b, c], {});
  t.is(access.server, 'https://127.0.0.1:1111', 'cluster "shared" from the first file');
  t.deepEqual(await access.credentials(), { authorization: 'Bearer from-a' }, 'user "shared" from the first file');
  t.is(access.source, `context ctx-b (${b})`, 'current-context from b, context ctx-b from b (not c)');

  t.is(kubeconfigAccess([a, b, c], {}, 'ctx-c').server, 'https://127.0.0.1:4444', 'an explicit context overrides current-context');
  t.is(kubeconfigAccess([a, b, c], {}, 'ctx-other').server, 'https://127.0.0.1:3333');
  t.is(kubeconfigAccess([c, b], {}).server, 'https://127.0.0.1:4444', 'order decides');
});

test('missing files in a multi-file list are skipped; a missing single file or an all-missing list is an error', (t) => {
  const dir = tempDir(t, 'kubeconfig');
  const real = writeConfig(dir, 'config', single({ server: 'https://127.0.0.1:6443' }));
  const gone1 = join(dir, 'gone-1');
  const gone2 = join(dir, 'gone-2');
  t.is(kubeconfigAccess([gone1, real, gone2], {}).server, 'https://127.0.0.1:6443');
  const single1 = t.throws(() => kubeconfigAccess([gone1], {}));
  t.true(single1.message.includes(gone1));
  const all = t.throws(() => kubeconfigAccess([gone1, gone2], {}));
  t.true(all.message.includes('none of the kubeconfig files exist'));
  t.true(all.message.includes(gone1) && all.message.includes(gone2));
});

/** Each bad kubeconfig must fail with a message naming the field (pattern) and the file it is in. */
const badConfigs: ReadonlyArray<{ title: string; yaml: string | Parts; context?: string; message: RegExp }> = [
  { title: 'missing current-context', yaml: { clusters: { c: { server: 'https://127.0.0.1:6443' } }, contexts: { main: { cluster: 'c' } } }, message: /no current-context/ },
  { title: 'unknown context', yaml: single({ server: 'https://127.0.0.1:6443' }), context: 'nope', message: /context "nope" is not defined/ },
  { title: 'unknown current-context', yaml: { ...single({ server: 'https://127.0.0.1:6443' }), current: 'ghost' }, message: /context "ghost" is not defined/ },
  { title: 'unknown cluster', yaml: { contexts: { main: { cluster: 'ghost' } }, current: 'main' }, message: /cluster "ghost" of context "main" is not defined/ },
  { title: 'context without a cluster', yaml: { contexts: { main: {} }, current: 'main' }, message: /cluster "" of context "main" is not defined/ },
  {
    title: 'unknown user',
    yaml: { clusters: { c: { server: 'https://127.0.0.1:6443' } }, contexts: { main: { cluster: 'c', user: 'nobody' } }, current: 'main' },
    message: /user "nobody" of context "main" is not defined/,
  },
  { title: 'missing server', yaml: single({ 'certificate-authority-data': b64(CA_PEM) }), message: /clusters\[c\]\.cluster\.server is missing/ },
  { title: 'non-URL server', yaml: single({ server: '127.0.0.1 port 6443' }), message: /clusters\[c\]\.cluster\.server is not a URL: "127\.0\.0\.1 port 6443"/ },
  { title: 'non-http server', yaml: single({ server: 'ftp://127.0.0.1' }), message: /clusters\[c\]\.cluster\.server must be http\(s\)/ },
  { title: 'server not a string', yaml: single({ server: 6443 }), message: /clusters\[c\]\.cluster\.server must be a string/ },
  {
    title: 'proxy-url',
    yaml: single({ server: 'https://127.0.0.1:6443', 'proxy-url': 'http://127.0.0.1:3128' }),
    message: /clusters\[c\]\.cluster\.proxy-url is not supported/,
  },
  {
    title: 'auth-provider',
    yaml: single({ server: 'https://127.0.0.1:6443' }, { 'auth-provider': { name: 'gcp', config: {} } }),
    message: /users\[u\]\.user\.auth-provider is not supported.*exec credential plugin/,
  },
  {
    title: 'certificate without key',
    yaml: single({ server: 'https://127.0.0.1:6443' }, { 'client-certificate-data': b64(CERT_PEM) }),
    message: /users\[u\]\.user needs both client-certificate and client-key/,
  },
  {
    title: 'key without certificate',
    yaml: single({ server: 'https://127.0.0.1:6443' }, { 'client-key-data': b64(KEY_PEM) }),
    message: /users\[u\]\.user needs both client-certificate and client-key/,
  },
  { title: 'token not a string', yaml: single({ server: 'https://127.0.0.1:6443' }, { token: 12345 }), message: /users\[u\]\.user\.token must be a string/ },
  { title: 'invalid YAML', yaml: 'clusters: [\n  - name: c\n    cluster: {server: "https://127.0.0.1"\n', message: /is not valid YAML/ },
  { title: 'a list document', yaml: '- a\n- b\n', message: /is not a kubeconfig \(expected a mapping\)/ },
  { title: 'a scalar document', yaml: 'just text\n', message: /is not a kubeconfig \(expected a mapping\)/ },
  { title: 'clusters not a list', yaml: 'clusters:\n  c:\n    server: https://127.0.0.1\n', message: /clusters must be a list/ },
  { title: 'entry without a name', yaml: 'users:\n  - user: {token: x}\n', message: /users\[0\]\.name is missing/ },
  { title: 'entry value not a mapping', yaml: 'clusters:\n  - name: c\n    cluster: https://127.0.0.1\n', message: /clusters\[c\]\.cluster must be a mapping/ },
  {
    title: 'exec apiVersion unsupported',
    yaml: single({ server: 'https://127.0.0.1:6443' }, { exec: { apiVersion: 'client.authentication.k8s.io/v1alpha1', command: 'plugin' } }),
    message: /users\[u\]\.user\.exec\.apiVersion "client\.authentication\.k8s\.io\/v1alpha1" is not supported/,
  },
  {
    title: 'exec without command',
    yaml: single({ server: 'https://127.0.0.1:6443' }, { exec: { apiVersion: 'client.authentication.k8s.io/v1' } }),
    message: /users\[u\]\.user\.exec\.command is missing/,
  },
  { title: 'exec not a mapping', yaml: single({ server: 'https://127.0.0.1:6443' }, { exec: 'plugin --token' }), message: /users\[u\]\.user\.exec must be a mapping/ },
  {
    title: 'exec args not strings',
    yaml: single({ server: 'https://127.0.0.1:6443' }, { exec: { command: 'plugin', args: ['ok', 3] } }),
    message: /users\[u\]\.user\.exec\.args must be a list of strings/,
  },
  {
    title: 'exec env not a list',
    yaml: single({ server: 'https://127.0.0.1:6443' }, { exec: { command: 'plugin', env: { A: 'b' } } }),
    message: /users\[u\]\.user\.exec\.env must be a list/,
  },
  {
    title: 'exec env entry without value',
    yaml: single({ server: 'https://127.0.0.1:6443' }, { exec: { command: 'plugin', env: [{ name: 'OK', value: 'v' }, { name: 'A' }] } }),
    message: /users\[u\]\.user\.exec\.env\[1\] needs a string name and value/,
  },
  {
    title: 'exec env entry a string',
    yaml: single({ server: 'https://127.0.0.1:6443' }, { exec: { command: 'plugin', env: ['A=b'] } }),
    message: /users\[u\]\.user\.exec\.env\[0\] needs a string name and value/,
  },
];

for (const bad of badConfigs) {
  test(`bad kubeconfig: ${bad.title} is an error naming the field and the file`, (t) => {
    const path = '/etc/warren-test/kube/config-under-test';
    const text = typeof bad.yaml === 'string' ? bad.yaml : kubeconfigYaml(bad.yaml);
    const err = t.throws(() => parseKubeconfig([{ path, text }], {}, bad.context));
    t.regex(err.message, bad.message);
    t.true(err.message.includes(path), `names the file: ${err.message}`);
  });
}

test('an unreadable certificate-authority file is an error naming the field, the resolved path and the kubeconfig', (t) => {
  const dir = tempDir(t, 'kubeconfig');
  const file = writeConfig(dir, 'config', single({ server: 'https://127.0.0.1:6443', 'certificate-authority': 'missing/ca.crt' }));
  const err = t.throws(() => kubeconfigAccess([file], {}));
  t.regex(err.message, /clusters\[c\]\.cluster\.certificate-authority: cannot read /);
  t.true(err.message.includes(join(dir, 'missing', 'ca.crt')));
  t.true(err.message.includes('ENOENT'));
  t.true(err.message.endsWith(`(${file})`));
});

test('an error in a later file names that file, not the first', (t) => {
  const dir = tempDir(t, 'kubeconfig');
  const good = writeConfig(dir, 'good', { clusters: { c: { server: 'https://127.0.0.1:6443' } }, current: 'main' });
  const bad = writeConfig(dir, 'bad', { contexts: { main: { cluster: 'c', user: 'u' } }, users: { u: { 'auth-provider': { name: 'oidc' } } } });
  const err = t.throws(() => kubeconfigAccess([good, bad], {}));
  t.regex(err.message, /auth-provider/);
  t.true(err.message.includes(bad));
  t.false(err.message.includes(good));
});

test('loadClusterAccess wraps errors as terminal WARREN_ERR_CONFIG_INVALID naming the file', (t) => {
  const dir = tempDir(t, 'kubeconfig');
  const file = writeConfig(dir, 'config', single({ server: 'https://127.0.0.1:6443', 'proxy-url': 'http://127.0.0.1:3128' }));
  const err = t.throws(() => loadClusterAccess({ kubeconfig: file }, {}));
  t.true(err instanceof WarrenError);
  const we = err as WarrenError;
  t.is(we.code, ErrorCode.ConfigInvalid);
  t.true(we.terminal);
  t.regex(we.message, /^cannot load the Kubernetes client configuration: .*proxy-url is not supported/);
  t.true(we.message.includes(file));
  t.true(we.cause instanceof Error);

  const missing = join(dir, 'no-such-config');
  const notFound = t.throws(() => loadClusterAccess({ kubeconfig: missing }, {}));
  t.is((notFound as WarrenError).code, ErrorCode.ConfigInvalid);
  t.true(notFound.message.includes(missing));
});

test('loadClusterAccess prefers the kubeconfig setting over $KUBECONFIG and in-cluster variables', (t) => {
  const dir = tempDir(t, 'kubeconfig');
  const setting = writeConfig(dir, 'setting', single({ server: 'https://127.0.0.1:1111' }));
  const fromEnv = writeConfig(dir, 'env', single({ server: 'https://127.0.0.1:2222' }));
  const access = loadClusterAccess({ kubeconfig: setting }, { KUBECONFIG: fromEnv, KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: '3333' });
  t.is(access.server, 'https://127.0.0.1:1111');
  t.is(access.source, `context main (${setting})`);
});

test('loadClusterAccess reads $KUBECONFIG as a delimiter-separated list, merged, skipping missing and empty entries', async (t) => {
  const dir = tempDir(t, 'kubeconfig');
  const first = writeConfig(dir, 'first', { users: { u: { token: 'first-token' } } });
  const second = writeConfig(dir, 'second', { ...single({ server: 'https://127.0.0.1:2222' }, { token: 'second-token' }) });
  const list = [join(dir, 'missing'), first, '', second].join(delimiter);
  const access = loadClusterAccess({}, { KUBECONFIG: list });
  t.is(access.server, 'https://127.0.0.1:2222');
  t.deepEqual(await access.credentials(), { authorization: 'Bearer first-token' }, 'user u from the first file');
  t.is(access.source, `context main (${second})`);

  const allMissing = t.throws(() => loadClusterAccess({}, { KUBECONFIG: [join(dir, 'x'), join(dir, 'y')].join(delimiter) }));
  t.is((allMissing as WarrenError).code, ErrorCode.ConfigInvalid);
  t.regex(allMissing.message, /none of the kubeconfig files exist/);
});

test('inClusterAccess builds the server URL from the service variables and reads CA and token from the folder', async (t) => {
  const dir = tempDir(t, 'serviceaccount');
  writeFileSync(join(dir, 'token'), 'sa-token-1\n');
  writeFileSync(join(dir, 'ca.crt'), CA_PEM);
  const access = inClusterAccess({ KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '6443' }, dir);
  t.is(access.server, 'https://10.96.0.1:6443');
  t.is(access.caPem, CA_PEM);
  t.is(access.source, 'in-cluster service account');
  t.deepEqual(await access.credentials(), { authorization: 'Bearer sa-token-1' });
  writeFileSync(join(dir, 'token'), 'sa-token-2\n');
  t.deepEqual(await access.credentials(true), { authorization: 'Bearer sa-token-2' }, 'the rotated token is read after a 401');
});

test('inClusterAccess brackets an IPv6 host, defaults the port to 443 and tolerates a missing ca.crt', (t) => {
  const dir = tempDir(t, 'serviceaccount');
  writeFileSync(join(dir, 'token'), 't');
  const access = inClusterAccess({ KUBERNETES_SERVICE_HOST: 'fd00:10:96::1' }, dir);
  t.is(access.server, 'https://[fd00:10:96::1]:443');
  t.notThrows(() => new URL(access.server));
  t.is(access.caPem, undefined);
  t.throws(() => inClusterAccess({}, dir), { message: /KUBERNETES_SERVICE_HOST is not set/ });
});

test('staticAccess drops trailing slashes and sends a Bearer token only when given one', async (t) => {
  const withToken = staticAccess({ server: 'https://127.0.0.1:6443/prefix//', token: 'abc', caPem: CA_PEM });
  t.is(withToken.server, 'https://127.0.0.1:6443/prefix');
  t.is(withToken.caPem, CA_PEM);
  t.deepEqual(await withToken.credentials(), { authorization: 'Bearer abc' });
  t.is(withToken.source, 'https://127.0.0.1:6443/prefix//');
  const anonymous = staticAccess({ server: 'http://127.0.0.1:8080', source: 'test server' });
  t.is((await anonymous.credentials()).authorization, undefined);
  t.is(anonymous.source, 'test server');
});
