/**
 * The chart as an operator uses it: the real `helm install`, `helm upgrade` and `helm uninstall` against a real
 * kube-apiserver (support/apiserver.ts). There is no kubelet or controller-manager, so pods never run and nothing
 * waits for them (no --wait); what is checked is what helm leaves in the API server: the release's objects and
 * their shapes, what an upgrade changes, that a value the chart's schema rejects stops the install before it
 * creates anything, and that uninstall removes it all again.
 *
 * The tests run in order and share one release: reject, install, inspect, upgrade, uninstall.
 */
import type { V1ObjectMeta, V1PolicyRule } from '@kubernetes/client-node';
import test from 'ava';
import { randomBytes, randomUUID } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { encodeTunnelToken, parseTunnelToken } from '../../src/tunnel/credentials.js';
import { loadRbacObjects, useApiServer } from '../support/apiserver.js';
import { CHART_DIR } from './helm.js';
import { configChecksum, helmOn, installClients, isAbsent, serviceAccountMay, type InstallClients } from './support-install.js';

const server = useApiServer(test);
const RELEASE = 'warren';
const NS = 'warren-system';
/** Object names for release "warren" (the full name is the release name when it contains "warren"). */
const FULLNAME = 'warren';
const SECRET = 'warren-credentials';
const LEADER_ELECTION = 'warren-leader-election';
const SECRETS_DIR = '/etc/warren/secrets';

const TUNNEL_ID = randomUUID();
const TUNNEL_TOKEN = encodeTunnelToken({ accountTag: 'warren-install-test-account', tunnelSecret: randomBytes(32), tunnelId: TUNNEL_ID });
/** Long and unique, so that finding it anywhere but the Secret means a leak. */
const API_TOKEN = `install-test-api-token-${randomBytes(12).toString('hex')}`;

let helm: ReturnType<typeof helmOn> | undefined;
let clients: InstallClients | undefined;
test.serial.before(() => {
  helm = helmOn(server());
  clients = installClients(server());
});
const run = (args: readonly string[]) => helm!(args);
const k8s = () => clients!;

const install = (...sets: string[]) =>
  run(['install', RELEASE, CHART_DIR, '-n', NS, '--create-namespace', '--set', `cloudflare.tunnelToken=${TUNNEL_TOKEN}`, ...sets.flatMap((s) => ['--set', s])]);

type Reader = (c: InstallClients) => Promise<{ metadata?: V1ObjectMeta }>;
/** Every object the default values (plus a tunnel token) install. */
const RELEASE_OBJECTS: ReadonlyArray<[string, Reader]> = [
  ['ServiceAccount', (c) => c.core.readNamespacedServiceAccount({ name: FULLNAME, namespace: NS })],
  ['Secret', (c) => c.core.readNamespacedSecret({ name: SECRET, namespace: NS })],
  ['ConfigMap', (c) => c.core.readNamespacedConfigMap({ name: FULLNAME, namespace: NS })],
  ['Service', (c) => c.core.readNamespacedService({ name: FULLNAME, namespace: NS })],
  ['Deployment', (c) => c.apps.readNamespacedDeployment({ name: FULLNAME, namespace: NS })],
  ['PodDisruptionBudget', (c) => c.policy.readNamespacedPodDisruptionBudget({ name: FULLNAME, namespace: NS })],
  ['IngressClass', (c) => c.networking.readIngressClass({ name: 'cloudflare-tunnel' })],
  ['ClusterRole', (c) => c.rbac.readClusterRole({ name: FULLNAME })],
  ['ClusterRoleBinding', (c) => c.rbac.readClusterRoleBinding({ name: FULLNAME })],
  ['Role', (c) => c.rbac.readNamespacedRole({ name: LEADER_ELECTION, namespace: NS })],
  ['RoleBinding', (c) => c.rbac.readNamespacedRoleBinding({ name: LEADER_ELECTION, namespace: NS })],
];

async function absentObjects(): Promise<string[]> {
  const absent: string[] = [];
  for (const [kind, read] of RELEASE_OBJECTS) if (await isAbsent(() => read(k8s()))) absent.push(kind);
  return absent;
}

/** Helm's release records (Secrets labelled owner=helm) in any namespace. */
async function releaseRecords(): Promise<string[]> {
  const list = await k8s().core.listSecretForAllNamespaces({ labelSelector: `owner=helm,name=${RELEASE}` });
  return list.items.map((s) => `${s.metadata?.namespace}/${s.metadata?.name}`);
}

async function releaseStatus(): Promise<{ status: string; version: number }> {
  const result = await run(['status', RELEASE, '-n', NS, '-o', 'json']);
  if (result.code !== 0) throw new Error(`helm status failed: ${result.stderr}`);
  const parsed = JSON.parse(result.stdout) as { version: number; info: { status: string } };
  return { status: parsed.info.status, version: parsed.version };
}

const deployment = () => k8s().apps.readNamespacedDeployment({ name: FULLNAME, namespace: NS });
const configText = async () => (await k8s().core.readNamespacedConfigMap({ name: FULLNAME, namespace: NS })).data?.['config.yaml'] ?? '';
async function secretData(): Promise<Record<string, string>> {
  const secret = await k8s().core.readNamespacedSecret({ name: SECRET, namespace: NS });
  return Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
}

/** JSON round trip: drops the client's undefined fields so objects compare with parsed YAML. */
const plain = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

/**
 * The rules of `kind` in deploy/rbac.yaml as the chart's defaults grant them: without the Gateway API rules (its
 * kinds, Namespaces and the ConfigMaps BackendTLSPolicies name), which the chart adds only with gateway.enabled=true.
 */
function referenceRules(kind: 'ClusterRole' | 'Role'): V1PolicyRule[] {
  const object = loadRbacObjects().find((o) => o.kind === kind) as { rules?: V1PolicyRule[] } | undefined;
  if (!object?.rules) throw new Error(`deploy/rbac.yaml has no ${kind}`);
  return object.rules.filter((r) => !r.apiGroups?.includes('gateway.networking.k8s.io') && !r.resources?.includes('namespaces') && !r.resources?.includes('configmaps'));
}

const saMay = (attributes: Parameters<typeof serviceAccountMay>[3]) => serviceAccountMay(k8s(), NS, FULLNAME, attributes);

let firstChecksums: { config: string; credentials: string } | undefined;

for (const [value, message, other] of [
  ['tunnel.haConnections=0', /at '\/tunnel\/haConnections': minimum: got 0, want 1/, /plugins/],
  ['plugins.grpc.enabled=notabool', /at '\/plugins\/grpc\/enabled': got string, want boolean/, /haConnections/],
] as const) {
  test.serial(`helm install --set ${value} fails naming that value, and creates nothing`, async (t) => {
    const result = await install(value);
    t.not(result.code, 0, result.stdout);
    t.regex(result.stderr, /values don't meet the specifications of the schema/);
    t.regex(result.stderr, message);
    t.notRegex(result.stderr, other, 'only the bad value is named');

    t.true(await isAbsent(() => k8s().core.readNamespace({ name: NS })), '--create-namespace did not create the namespace');
    t.deepEqual(
      await absentObjects(),
      RELEASE_OBJECTS.map(([kind]) => kind),
      'no object of the release exists',
    );
    t.deepEqual(await releaseRecords(), [], 'helm recorded no release');
  });
}

test.serial('helm install creates every object of the release, recorded as release 1', async (t) => {
  const result = await install();
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /STATUS: deployed/);

  t.deepEqual(await absentObjects(), []);
  for (const [kind, read] of RELEASE_OBJECTS) {
    const { metadata } = await read(k8s());
    t.is(metadata?.annotations?.['meta.helm.sh/release-name'], RELEASE, `${kind} belongs to the release`);
    t.is(metadata?.labels?.['app.kubernetes.io/managed-by'], 'Helm', `${kind} is labelled as managed by Helm`);
    t.is(metadata?.labels?.['app.kubernetes.io/instance'], RELEASE, `${kind} carries the instance label`);
  }
  t.deepEqual(await releaseStatus(), { status: 'deployed', version: 1 });
  t.deepEqual(await releaseRecords(), [`${NS}/sh.helm.release.v1.${RELEASE}.v1`]);
  const jobs = await k8s().batch.listNamespacedJob({ namespace: NS });
  t.deepEqual(jobs.items, [], 'the default values render no uninstall hook Job');
});

test.serial('the installed Deployment is hardened, runs two replicas and rolls on a config change', async (t) => {
  const d = await deployment();
  const pod = d.spec!.template.spec!;
  const container = pod.containers[0]!;
  t.is(d.spec!.replicas, 2);
  t.deepEqual(d.spec!.selector.matchLabels, { 'app.kubernetes.io/name': 'warren', 'app.kubernetes.io/instance': RELEASE });

  const annotations = d.spec!.template.metadata?.annotations ?? {};
  t.is(annotations['checksum/config'], configChecksum(await configText()), 'the checksum is of the installed config file');
  t.regex(annotations['checksum/credentials'] ?? '', /^[0-9a-f]{64}$/);
  firstChecksums = { config: annotations['checksum/config']!, credentials: annotations['checksum/credentials']! };

  t.is(pod.serviceAccountName, FULLNAME);
  t.false(pod.enableServiceLinks);
  t.like(pod.securityContext, { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532 });
  t.deepEqual(plain(pod.securityContext?.seccompProfile), { type: 'RuntimeDefault' });
  t.is(pod.containers.length, 1);
  t.deepEqual(plain(container.securityContext), {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    privileged: false,
    capabilities: { drop: ['ALL'] },
  });
  t.deepEqual(container.args, ['--config', '/etc/warren/config/config.yaml']);

  // The token reaches the pod only as a read-only file from the Secret.
  t.deepEqual(
    (container.env ?? []).map((e) => [e.name, e.value]),
    [
      ['POD_NAME', undefined],
      ['POD_NAMESPACE', undefined],
      ['NODE_OPTIONS', '--max-old-space-size=256'],
    ],
  );
  const credentials = pod.volumes?.find((v) => v.name === 'credentials');
  t.deepEqual(plain(credentials?.secret), { secretName: SECRET, defaultMode: 0o440, items: [{ key: 'tunnel-token', path: 'tunnel-token' }] });
  t.like(
    container.volumeMounts?.find((m) => m.name === 'credentials'),
    { mountPath: SECRETS_DIR, readOnly: true },
  );
  t.is(pod.volumes?.find((v) => v.name === 'config')?.configMap?.name, FULLNAME);
  t.false(JSON.stringify(d).includes(TUNNEL_TOKEN), 'the token is not in the Deployment');
});

test.serial('the installed ConfigMap holds a config the controller accepts, pointing at the token file and holding no token', async (t) => {
  const text = await configText();
  const config = parseConfig(parseYaml(text));
  t.is(config.source.kind, 'kubernetes');
  t.is(config.tunnel.tokenFile, `${SECRETS_DIR}/tunnel-token`);
  t.is(config.cloudflare.apiTokenFile, undefined);
  t.like(config.ingressClass, { name: 'cloudflare-tunnel', controller: 'warren.dev/ingress-controller', watchWithoutClass: false });
  t.like(config.kubernetes.leaderElection, { enabled: true, leaseNamespace: NS });
  t.is(config.server.listen, '0.0.0.0:10254');
  t.is(config.plugins.dns?.enabled, false);
  t.false(text.includes(TUNNEL_TOKEN), 'the token is not in the ConfigMap');
});

test.serial('the installed Secret holds exactly the tunnel token, which the controller can parse', async (t) => {
  const secret = await k8s().core.readNamespacedSecret({ name: SECRET, namespace: NS });
  t.is(secret.type, 'Opaque');
  const data = await secretData();
  t.deepEqual(Object.keys(data), ['tunnel-token']);
  t.is(data['tunnel-token'], TUNNEL_TOKEN);
  t.is(parseTunnelToken(data['tunnel-token']!).tunnelId, TUNNEL_ID);
});

test.serial('the installed RBAC is deploy/rbac.yaml bound to the release ServiceAccount, and grants no more', async (t) => {
  const c = k8s();
  t.deepEqual(plain((await c.rbac.readClusterRole({ name: FULLNAME })).rules), referenceRules('ClusterRole'));
  t.deepEqual(plain((await c.rbac.readNamespacedRole({ name: LEADER_ELECTION, namespace: NS })).rules), referenceRules('Role'));
  const subjects = [{ kind: 'ServiceAccount', name: FULLNAME, namespace: NS }];
  const clusterBinding = await c.rbac.readClusterRoleBinding({ name: FULLNAME });
  t.deepEqual(plain(clusterBinding.roleRef), { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: FULLNAME });
  t.deepEqual(plain(clusterBinding.subjects), subjects);
  const binding = await c.rbac.readNamespacedRoleBinding({ name: LEADER_ELECTION, namespace: NS });
  t.deepEqual(plain(binding.roleRef), { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: LEADER_ELECTION });
  t.deepEqual(plain(binding.subjects), subjects);
  t.true((await c.core.readNamespacedServiceAccount({ name: FULLNAME, namespace: NS })).automountServiceAccountToken);

  // The API server's own authorizer, asked about the ServiceAccount the Deployment runs as.
  t.true(await saMay({ group: 'networking.k8s.io', resource: 'ingresses', verb: 'watch' }), 'watch Ingresses in every namespace');
  t.true(await saMay({ group: 'networking.k8s.io', resource: 'ingresses', subresource: 'status', verb: 'update', namespace: 'default' }));
  t.true(await saMay({ resource: 'events', verb: 'create', namespace: 'default' }));
  t.true(await saMay({ group: 'coordination.k8s.io', resource: 'leases', verb: 'update', name: 'warren-leader', namespace: NS }));
  t.false(await saMay({ group: 'coordination.k8s.io', resource: 'leases', verb: 'update', name: 'another-lease', namespace: NS }));
  t.false(await saMay({ resource: 'secrets', verb: 'create', namespace: NS }), 'token mode creates no Secrets');
  t.false(await saMay({ resource: 'configmaps', verb: 'get', namespace: NS }));
  t.false(await saMay({ resource: 'pods', verb: 'list' }));
});

test.serial('the installed Service, PodDisruptionBudget and IngressClass select and name the controller', async (t) => {
  const c = k8s();
  const selector = (await deployment()).spec!.selector.matchLabels;
  const service = await c.core.readNamespacedService({ name: FULLNAME, namespace: NS });
  t.is(service.spec?.type, 'ClusterIP');
  t.deepEqual(service.spec?.selector, selector);
  t.deepEqual(
    service.spec?.ports?.map((p) => [p.name, p.port, p.targetPort, p.protocol]),
    [['metrics', 10254, 'metrics', 'TCP']],
  );
  const pdb = await c.policy.readNamespacedPodDisruptionBudget({ name: FULLNAME, namespace: NS });
  t.is(pdb.spec?.maxUnavailable, 1);
  t.is(pdb.spec?.minAvailable, undefined);
  t.deepEqual(pdb.spec?.selector?.matchLabels, selector);
  const ingressClass = await c.networking.readIngressClass({ name: 'cloudflare-tunnel' });
  t.is(ingressClass.spec?.controller, 'warren.dev/ingress-controller');
  t.is(ingressClass.metadata?.annotations?.['ingressclass.kubernetes.io/is-default-class'], undefined, 'not the default class unless asked');
});

test.serial('helm upgrade with the dns plugin, an API token and 3 replicas changes the config, credentials and replicas', async (t) => {
  t.truthy(firstChecksums, 'the install test recorded the first checksums');
  const result = await run([
    'upgrade',
    RELEASE,
    CHART_DIR,
    '-n',
    NS,
    '--reuse-values',
    '--set',
    'plugins.dns.enabled=true',
    '--set',
    `cloudflare.apiToken=${API_TOKEN}`,
    '--set',
    'replicaCount=3',
  ]);
  t.is(result.code, 0, result.stderr);
  t.deepEqual(await releaseStatus(), { status: 'deployed', version: 2 });

  const d = await deployment();
  const text = await configText();
  const annotations = d.spec!.template.metadata?.annotations ?? {};
  t.is(d.spec!.replicas, 3);
  t.not(annotations['checksum/config'], firstChecksums?.config, 'a changed config rolls the pods');
  t.is(annotations['checksum/config'], configChecksum(text), 'the checksum is of the upgraded config file');
  t.not(annotations['checksum/credentials'], firstChecksums?.credentials, 'changed credentials roll the pods');

  const config = parseConfig(parseYaml(text));
  t.is(config.plugins.dns?.enabled, true);
  t.is(config.cloudflare.apiTokenFile, `${SECRETS_DIR}/api-token`);
  t.is(config.tunnel.tokenFile, `${SECRETS_DIR}/tunnel-token`, '--reuse-values kept the tunnel token');

  t.deepEqual(await secretData(), { 'tunnel-token': TUNNEL_TOKEN, 'api-token': API_TOKEN });
  const items = d.spec!.template.spec!.volumes?.find((v) => v.name === 'credentials')?.secret?.items?.map((i) => i.path);
  t.deepEqual(items?.sort(), ['api-token', 'tunnel-token']);
  for (const secret of [TUNNEL_TOKEN, API_TOKEN]) {
    t.false(text.includes(secret), 'no credential in the ConfigMap');
    t.false(JSON.stringify(d).includes(secret), 'no credential in the Deployment');
  }
  const pdb = await k8s().policy.readNamespacedPodDisruptionBudget({ name: FULLNAME, namespace: NS });
  t.is(pdb.spec?.maxUnavailable, 1, 'the budget stays with 3 replicas');
});

test.serial('helm uninstall removes every object of the release and its record', async (t) => {
  const result = await run(['uninstall', RELEASE, '-n', NS]);
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, new RegExp(`release "${RELEASE}" uninstalled`));
  t.deepEqual(
    await absentObjects(),
    RELEASE_OBJECTS.map(([kind]) => kind),
  );
  t.deepEqual(await releaseRecords(), []);
  t.false(await saMay({ group: 'networking.k8s.io', resource: 'ingresses', verb: 'watch' }), 'the bindings are gone');
  const status = await run(['status', RELEASE, '-n', NS]);
  t.not(status.code, 0);
  t.regex(status.stderr, /release: not found/);
});
