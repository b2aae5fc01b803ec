import test from 'ava';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { loadConfig, parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { BUILTIN_PLUGINS } from '../../src/plugins/builtin.js';
import { resolvePlugins } from '../../src/plugins/registry.js';
import { CHART_DIR, REPO_ROOT, helm, lint, render, template, type Deployment, type K8sObject } from './helm.js';

const TUNNEL_TOKEN = 'eyJhIjoidGVzdC10dW5uZWwtdG9rZW4tdmFsdWUifQ';
const API_TOKEN = 'test-api-token-value-0123456789';
const withToken = { cloudflare: { tunnelToken: TUNNEL_TOKEN } };
const PLUGIN_NAMES = Object.keys(BUILTIN_PLUGINS);

function config(text: string): Readonly<Config> {
  return parseConfig(parseYaml(text));
}

function controller(d: Deployment) {
  return d.spec.template.spec.containers[0]!;
}

test('helm lint --strict passes with the minimal credentials, with every plugin on, and with every new chart object on', async (t) => {
  const extended = {
    ...withToken,
    kubernetes: { namespaces: ['shop'] },
    autoscaling: { enabled: true },
    networkPolicy: { enabled: true, egress: { enabled: true } },
    prometheusRule: { create: true },
    grafanaDashboard: { create: true },
    extraObjects: [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'extra' } }],
  };
  for (const values of [
    withToken,
    { cloudflare: { apiToken: API_TOKEN, tunnelToken: TUNNEL_TOKEN }, plugins: { dns: { enabled: true }, firewall: { enabled: true } } },
    extended,
  ]) {
    const result = await lint(values);
    t.is(result.code, 0, result.stdout + result.stderr);
    t.regex(result.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  }
});

test('defaults render a complete, hardened controller whose config the controller accepts', async (t) => {
  const out = await render(withToken);
  t.deepEqual(out.kinds(), [
    'ClusterRole',
    'ClusterRoleBinding',
    'ConfigMap',
    'Deployment',
    'IngressClass',
    'PodDisruptionBudget',
    'Role',
    'RoleBinding',
    'Secret',
    'Service',
    'ServiceAccount',
    'ValidatingAdmissionPolicy',
    'ValidatingAdmissionPolicyBinding',
  ]);
  const cfg = config(out.configText());
  t.is(cfg.source.kind, 'kubernetes');
  t.is(cfg.ingressClass.name, 'cloudflare-tunnel');
  t.is(cfg.kubernetes.leaderElection.enabled, true);
  t.is(cfg.kubernetes.leaderElection.leaseNamespace, 'warren-system');

  const d = out.deployment();
  t.is(d.spec.replicas, 2);
  const pod = d.spec.template.spec;
  const c = controller(d);
  t.is(pod.securityContext?.runAsNonRoot, true);
  t.true(Number(pod.securityContext?.runAsUser) > 0);
  t.deepEqual(pod.securityContext?.seccompProfile, { type: 'RuntimeDefault' });
  t.like(c.securityContext, { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, privileged: false });
  t.deepEqual((c.securityContext?.capabilities as { drop: string[] } | undefined)?.drop, ['ALL']);
  t.is(pod.serviceAccountName, out.get('ServiceAccount').metadata.name);
  // Kubernetes would otherwise inject WARREN_SERVICE_HOST etc. for the Service named "warren", which the
  // controller would read as (unknown) settings and refuse to start.
  t.is(pod.enableServiceLinks, false);
  const injected = { WARREN_SERVICE_HOST: '10.0.0.1', WARREN_SERVICE_PORT: '10254', WARREN_PORT: 'tcp://10.0.0.1:10254' };
  // (The loader ignores service-link variables too; disabling them keeps the pod environment clean anyway.)
  t.is(loadConfig({ env: injected }).logLevel, 'info');

  // Probes, the Service and the listen address all agree on the one metrics port.
  const port = c.ports!.find((p) => p.name === 'metrics')!.containerPort;
  t.is(cfg.server.listen, `0.0.0.0:${port}`);
  t.deepEqual(
    [c.livenessProbe?.httpGet, c.readinessProbe?.httpGet, c.startupProbe?.httpGet],
    [
      { path: '/healthz', port: 'metrics' },
      { path: '/readyz', port: 'metrics' },
      { path: '/healthz', port: 'metrics' },
    ],
  );
  const service = out.get('Service') as unknown as { spec: { ports: Array<{ port: number; targetPort: string }>; selector: Record<string, string> } };
  t.deepEqual(
    service.spec.ports.map((p) => [p.port, p.targetPort]),
    [[port, 'metrics']],
  );
  t.like(d.spec.template.metadata.labels, service.spec.selector);

  // The config file the pod reads is the one the ConfigMap carries.
  const configFile = c.args![c.args!.indexOf('--config') + 1]!;
  const mount = c.volumeMounts!.find((m) => configFile.startsWith(`${m.mountPath}/`))!;
  t.is(pod.volumes!.find((v) => v.name === mount.name)?.configMap?.name, out.get('ConfigMap').metadata.name);
  t.is(configFile.slice(mount.mountPath.length + 1), 'config.yaml');

  // The IngressClass and the controller agree on the class.
  const ingressClass = out.get('IngressClass') as unknown as { metadata: { name: string; annotations?: object }; spec: { controller: string } };
  t.deepEqual([ingressClass.metadata.name, ingressClass.spec.controller], [cfg.ingressClass.name, cfg.ingressClass.controller]);
  t.is(ingressClass.metadata.annotations, undefined);
});

test('credentials reach the pod only as files from the Secret, never in the ConfigMap, args or env', async (t) => {
  const out = await render({ cloudflare: { tunnelToken: TUNNEL_TOKEN, apiToken: API_TOKEN } });
  const secret = out.get('Secret') as unknown as { metadata: { name: string }; data: Record<string, string> };
  t.is(Buffer.from(secret.data['tunnel-token']!, 'base64').toString(), TUNNEL_TOKEN);
  t.is(Buffer.from(secret.data['api-token']!, 'base64').toString(), API_TOKEN);
  for (const object of out.objects.filter((o) => o.kind !== 'Secret')) {
    const text = JSON.stringify(object);
    t.false(text.includes(TUNNEL_TOKEN), `${object.kind} holds the tunnel token`);
    t.false(text.includes(API_TOKEN), `${object.kind} holds the API token`);
  }
  const cfg = config(out.configText());
  const d = out.deployment();
  const volume = d.spec.template.spec.volumes!.find((v) => v.secret)!;
  t.is(volume.secret!.secretName, secret.metadata.name);
  const mount = controller(d).volumeMounts!.find((m) => m.name === volume.name)!;
  t.true(mount.readOnly);
  const fileOf = (key: string) => `${mount.mountPath}/${volume.secret!.items!.find((i) => i.key === key)!.path}`;
  t.is(cfg.tunnel.tokenFile, fileOf('tunnel-token'));
  t.is(cfg.cloudflare.apiTokenFile, fileOf('api-token'));
  // The one literal value is the heap limit the chart derives from the memory limit (a number, never a credential).
  t.deepEqual(
    controller(d).env!.filter((e) => e.value !== undefined),
    [{ name: 'NODE_OPTIONS', value: '--max-old-space-size=256' }],
    'no other literal env values',
  );
});

test('an existing Secret is mounted with the named keys, and the chart renders no Secret of its own', async (t) => {
  const out = await render({
    cloudflare: { secretRef: { name: 'my-cloudflare', tunnelTokenKey: 'token', apiTokenKey: 'cf-api', credentialsKey: '' } },
  });
  t.is(out.find('Secret'), undefined);
  const d = out.deployment();
  const volume = d.spec.template.spec.volumes!.find((v) => v.secret)!;
  t.is(volume.secret!.secretName, 'my-cloudflare');
  t.deepEqual(volume.secret!.items, [
    { key: 'token', path: 'tunnel-token' },
    { key: 'cf-api', path: 'api-token' },
  ]);
  const cfg = config(out.configText());
  t.truthy(cfg.tunnel.tokenFile);
  t.truthy(cfg.cloudflare.apiTokenFile);
  t.is(cfg.tunnel.credentialsFile, undefined);
  t.false('checksum/credentials' in (d.spec.template.metadata.annotations ?? {}));
});

test('every plugin on: the controller resolves the same plugin set (dependencies included)', async (t) => {
  const plugins = Object.fromEntries(PLUGIN_NAMES.map((n) => [n, { enabled: true }]));
  const out = await render({ cloudflare: { tunnelToken: TUNNEL_TOKEN, apiToken: API_TOKEN }, plugins });
  const cfg = config(out.configText());
  const resolved = await resolvePlugins(cfg);
  t.deepEqual(resolved.map((p) => p.module.manifest.name).sort(), [...PLUGIN_NAMES].sort());
});

test('every plugin off: none is resolved', async (t) => {
  const plugins = Object.fromEntries(PLUGIN_NAMES.map((n) => [n, { enabled: false }]));
  const cfg = config((await render({ ...withToken, plugins })).configText());
  t.deepEqual(await resolvePlugins(cfg), []);
});

test('the defaults of values.yaml enable exactly the plugins that are on by default', async (t) => {
  const cfg = config((await render(withToken)).configText());
  const fromChart = (await resolvePlugins(cfg)).map((p) => p.module.manifest.name).sort();
  const byDefault = (await resolvePlugins(parseConfig({}))).map((p) => p.module.manifest.name).sort();
  t.deepEqual(fromChart, byDefault);
});

test('no IngressClass: none is rendered, and the controller still claims the configured class', async (t) => {
  const out = await render({ ...withToken, ingressClass: { enabled: false, name: 'tunnel-b', controllerValue: 'example.com/warren-b' } });
  t.is(out.find('IngressClass'), undefined);
  const cfg = config(out.configText());
  t.deepEqual([cfg.ingressClass.name, cfg.ingressClass.controller], ['tunnel-b', 'example.com/warren-b']);
});

test('the default-class flag annotates the IngressClass', async (t) => {
  const out = await render({ ...withToken, ingressClass: { isDefaultClass: true } });
  t.deepEqual(out.get('IngressClass').metadata.annotations, { 'ingressclass.kubernetes.io/is-default-class': 'true' });
});

test('replicas 3 keep leader election on and get a PodDisruptionBudget; one replica gets no budget', async (t) => {
  const three = await render({ ...withToken, replicaCount: 3 });
  t.is(three.deployment().spec.replicas, 3);
  t.true(config(three.configText()).kubernetes.leaderElection.enabled);
  const pdb = three.get('PodDisruptionBudget') as unknown as { spec: { maxUnavailable: number; selector: { matchLabels: object } } };
  t.is(pdb.spec.maxUnavailable, 1);
  t.like(three.deployment().spec.template.metadata.labels, pdb.spec.selector.matchLabels);
  const one = await render({ ...withToken, replicaCount: 1 });
  t.is(one.find('PodDisruptionBudget'), undefined);
});

test('a changed setting changes the config checksum on the pod template (pods roll); credentials too', async (t) => {
  const checksum = async (values: object) => (await render(values)).deployment().spec.template.metadata.annotations!;
  const a = await checksum(withToken);
  const b = await checksum({ ...withToken, proxy: { connectTimeout: '5s' } });
  const c = await checksum({ cloudflare: { tunnelToken: `${TUNNEL_TOKEN}x` } });
  t.not(a['checksum/config'], b['checksum/config']);
  t.is(a['checksum/config'], c['checksum/config']);
  t.not(a['checksum/credentials'], c['checksum/credentials']);
  const text = (await render(withToken)).configText();
  t.is(a['checksum/config'], createHash('sha256').update(text.replace(/\n$/, '')).digest('hex'));
});

test('each controller value lands on its setting, and the controller accepts the result', async (t) => {
  const values = {
    ...withToken,
    logLevel: 'debug',
    shutdownGracePeriod: '20s',
    watchIngressWithoutClass: true,
    leaderElection: { enabled: true, leaseName: 'edge', leaseNamespace: 'ops', leaseDuration: '20s', renewDeadline: '12s', retryPeriod: '3s' },
    kubernetes: { namespaces: ['shop', 'blog'], publishHostname: 'edge.example.com', resyncBurstWindow: '100ms' },
    tunnel: { haConnections: 2, region: 'us', edgeIpVersion: '6', edgeAddresses: ['198.18.0.9:7844'], rpcTimeout: '5s' },
    cloudflare: { tunnelToken: TUNNEL_TOKEN, accountId: 'acct', tunnelName: 'prod', apiBaseUrl: 'https://api.example.com/v4', deleteTunnelOnUninstall: true },
    proxy: {
      connectTimeout: '3s',
      idleTimeout: '2m',
      loadBalancing: 'round-robin',
      retries: 0,
      maxHeaderBytes: 32768,
      preserveHost: false,
      defaultBackend: { namespace: 'default', service: 'fallback', port: 'http' },
      accessLog: { enabled: false, sampleRate: 0.5 },
    },
    metrics: { port: 9100, address: '[::]' },
    extraPlugins: [{ package: '@acme/warren-plugin-x', config: { header: 'x-acme' } }],
  };
  const cfg = config((await render(values)).configText());
  t.is(cfg.logLevel, 'debug');
  t.is(cfg.shutdownGracePeriod, 20_000);
  t.true(cfg.ingressClass.watchWithoutClass);
  t.deepEqual(cfg.kubernetes.leaderElection, { enabled: true, leaseName: 'edge', leaseNamespace: 'ops', leaseDuration: 20_000, renewDeadline: 12_000, retryPeriod: 3000 });
  t.deepEqual(cfg.kubernetes.namespaces, ['shop', 'blog']);
  t.is(cfg.kubernetes.publishHostname, 'edge.example.com');
  t.is(cfg.kubernetes.resyncBurstWindow, 100);
  t.like(cfg.tunnel, { haConnections: 2, region: 'us', edgeIpVersion: '6', edgeAddresses: ['198.18.0.9:7844'], rpcTimeout: 5000 });
  t.like(cfg.cloudflare, { accountId: 'acct', tunnelName: 'prod', apiBaseUrl: 'https://api.example.com/v4', deleteTunnelOnUninstall: true });
  t.like(cfg.proxy, { connectTimeout: 3000, idleTimeout: 120_000, loadBalancing: 'round-robin', retries: 0, maxHeaderBytes: 32768, preserveHost: false });
  t.deepEqual(cfg.proxy.defaultBackend, { namespace: 'default', service: 'fallback', port: 'http' });
  t.deepEqual(cfg.proxy.accessLog, { enabled: false, sampleRate: 0.5 });
  t.is(cfg.server.listen, '[::]:9100');
  t.deepEqual(cfg.extraPlugins, [{ package: '@acme/warren-plugin-x', config: { header: 'x-acme' } }]);
  // The Lease Role follows the lease name and namespace.
  const role = (await render(values)).get('Role', 'warren-leader-election') as unknown as { metadata: { namespace: string }; rules: Array<{ resourceNames?: string[] }> };
  t.is(role.metadata.namespace, 'ops');
  t.deepEqual(
    role.rules.flatMap((r) => r.resourceNames ?? []),
    ['edge'],
  );
});

test('values the controller would reject are rejected by helm, naming the value', async (t) => {
  const cases: Array<[object, RegExp]> = [
    [{ proxy: { connectTimeout: 'fast' } }, /\/proxy\/connectTimeout/],
    [{ plugins: { grpcc: { enabled: true } } }, /\/plugins.*'grpcc' not allowed/],
    [{ tunnel: { haConnections: 99 } }, /\/tunnel\/haConnections/],
    [{ tunnel: { tokenFile: '/tmp/token' } }, /\/tunnel.*'tokenFile' not allowed/],
    [{ logLevel: 'loud' }, /\/logLevel/],
    [{ metrics: { port: 0 } }, /\/metrics\/port/],
    [{ image: { pullPolicy: 'Sometimes' } }, /\/image\/pullPolicy/],
    [{ plugins: { tls: { enabled: 'yes' } } }, /\/plugins\/tls\/enabled/],
    [{ replicaCuont: 2 }, /'replicaCuont' not allowed/],
    [{ extraPlugins: [{ config: {} }] }, /\/extraPlugins\/0.*package/],
  ];
  for (const [values, message] of cases) {
    const result = await template({ ...withToken, ...values });
    t.not(result.code, 0, JSON.stringify(values));
    t.regex(result.stderr, message, JSON.stringify(values));
  }
});

test('settings that only work together are checked together, with messages naming the values to set', async (t) => {
  const cases: Array<[object, RegExp]> = [
    [{}, /the tunnel needs credentials: set cloudflare\.tunnelToken/],
    [{ cloudflare: { tunnelToken: TUNNEL_TOKEN, secretRef: { name: 'x', tunnelTokenKey: 't' } } }, /use one credential source/],
    [{ cloudflare: { secretRef: { name: 'x' } } }, /names no key/],
    [{ ...withToken, plugins: { dns: { enabled: true } } }, /plugins\.dns needs a Cloudflare API token/],
    [{ ...withToken, replicaCount: 3, leaderElection: { enabled: false } }, /replicaCount > 1 needs leaderElection\.enabled=true/],
    [{ cloudflare: { apiToken: API_TOKEN, accountId: 'a' } }, /the tunnel needs credentials/],
  ];
  for (const [values, message] of cases) {
    const result = await template(values);
    t.not(result.code, 0, JSON.stringify(values));
    t.regex(result.stderr, message, JSON.stringify(values));
  }
  // Accepted: management mode, a token from the environment, and no tunnel at all.
  for (const values of [
    { cloudflare: { apiToken: API_TOKEN, accountId: 'a', tunnelName: 'prod' } },
    { extraEnv: [{ name: 'TUNNEL_TOKEN', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }] },
    { tunnel: { enabled: false } },
  ]) {
    const result = await template(values);
    t.is(result.code, 0, `${JSON.stringify(values)}: ${result.stderr}`);
  }
});

test('the RBAC rules are exactly those of deploy/rbac.yaml (with the Gateway API on)', async (t) => {
  const reference = parseAllDocuments(readFileSync(join(REPO_ROOT, 'deploy', 'rbac.yaml'), 'utf8')).map((d) => d.toJS() as K8sObject);
  const out = await render({ ...withToken, gateway: { enabled: true } });
  const rules = (objects: readonly K8sObject[], kind: string) => (objects.find((o) => o.kind === kind) as unknown as { rules: unknown[] }).rules;
  t.deepEqual(rules(out.objects, 'ClusterRole'), rules(reference, 'ClusterRole'));
  t.deepEqual(rules(out.objects, 'Role'), rules(reference, 'Role'));
  t.is(out.objects.filter((o) => o.kind === 'Role').length, 1, 'token mode needs only the Lease Role');
  // Bindings name the chart's objects and ServiceAccount.
  const sa = out.get('ServiceAccount').metadata.name;
  for (const kind of ['ClusterRoleBinding', 'RoleBinding']) {
    const binding = out.get(kind) as unknown as { roleRef: { kind: string; name: string }; subjects: Array<{ name: string; namespace: string }> };
    t.is(out.get(binding.roleRef.kind, binding.roleRef.name).kind, binding.roleRef.kind);
    t.deepEqual(
      binding.subjects.map((s) => [s.name, s.namespace]),
      [[sa, 'warren-system']],
    );
  }
});

test('management mode gets a Role for exactly the tunnel credentials Secret, and with the Gateway API for Secrets of its namespace; token mode gets none', async (t) => {
  const managed = await render({ cloudflare: { apiToken: API_TOKEN, accountId: 'acct', tunnelName: 'prod', credentialsSecretName: 'edge-creds' } });
  const role = managed.get('Role', 'warren-tunnel-credentials') as unknown as { rules: Array<{ resources: string[]; verbs: string[]; resourceNames?: string[] }> };
  t.deepEqual(role.rules, [
    { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
    { apiGroups: [''], resources: ['secrets'], resourceNames: ['edge-creds'], verbs: ['get', 'update', 'delete'] },
  ]);
  t.is(config(managed.configText()).cloudflare.credentialsSecretName, 'edge-creds');
  const binding = managed.get('RoleBinding', 'warren-tunnel-credentials') as unknown as { roleRef: { name: string } };
  t.is(binding.roleRef.name, 'warren-tunnel-credentials');
  t.is((await render(withToken)).find('Role', 'warren-tunnel-credentials'), undefined);
  // With the Gateway API, a tunnel per Gateway: its Secrets, in the release namespace only, are named after Gateways.
  const gateways = await render({
    gateway: { enabled: true },
    cloudflare: { apiToken: API_TOKEN, accountId: 'acct', tunnelName: 'prod', credentialsSecretName: 'edge-creds' },
  });
  const gatewayRole = gateways.get('Role', 'warren-tunnel-credentials') as unknown as {
    metadata: { namespace: string };
    rules: Array<{ resources: string[]; verbs: string[] }>;
  };
  t.deepEqual(gatewayRole.rules.at(-1), { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'update', 'delete'] });
  t.is(gatewayRole.metadata.namespace, 'warren-system');
});

test('values.yaml shows every value the schema knows and agrees with the controller defaults', async (t) => {
  const valuesText = readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8');
  const values = parseYaml(valuesText) as Record<string, Record<string, unknown>>;
  const schema = JSON.parse(readFileSync(join(CHART_DIR, 'values.schema.json'), 'utf8')) as {
    properties: Record<string, { properties?: Record<string, unknown> }>;
  };
  const missing: string[] = [];
  for (const [key, child] of Object.entries(schema.properties)) {
    if (key === 'global') continue;
    if (!new RegExp(`^#?\\s*${key}:`, 'm').test(valuesText)) missing.push(key);
    if (key === 'plugins') continue;
    for (const sub of Object.keys(child.properties ?? {})) if (!new RegExp(`^\\s+#?\\s*${sub}:`, 'm').test(valuesText)) missing.push(`${key}.${sub}`);
  }
  t.deepEqual(missing, [], 'keys missing from values.yaml (as a value or a commented example)');
  const defaults = parseConfig({});
  t.is(values.ingressClass!.name, defaults.ingressClass.name);
  t.is(values.ingressClass!.controllerValue, defaults.ingressClass.controller);
  t.is(values.watchIngressWithoutClass as unknown, defaults.ingressClass.watchWithoutClass);
  t.is(values.leaderElection!.enabled, defaults.kubernetes.leaderElection.enabled);
  t.is(`${String(values.metrics!.address)}:${String(values.metrics!.port)}`, defaults.server.listen);
});

type Rule = { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] };
const rulesOf = (o: K8sObject): Rule[] => (o as unknown as { rules: Rule[] }).rules;
const readsSecrets = (rules: readonly Rule[]) => rules.some((r) => r.resources.includes('secrets'));

test('with kubernetes.namespaces set, RBAC is one Role per watched namespace and nothing namespaced is cluster-wide', async (t) => {
  const out = await render({ ...withToken, gateway: { enabled: true }, kubernetes: { namespaces: ['shop', 'blog', 'shop'] } });
  const cluster = out.get('ClusterRole');
  t.deepEqual(
    rulesOf(cluster),
    [
      { apiGroups: ['networking.k8s.io'], resources: ['ingressclasses'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['gateway.networking.k8s.io'], resources: ['gatewayclasses'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['gateway.networking.k8s.io'], resources: ['gatewayclasses/status'], verbs: ['update'] },
      { apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list', 'watch'] },
    ],
    'only the cluster-scoped kinds',
  );
  const routing = out.objects.filter((o) => o.kind === 'Role' && o.metadata.name === 'warren');
  t.deepEqual(
    routing.map((o) => o.metadata.namespace),
    ['shop', 'blog'],
    'one Role per distinct namespace',
  );
  const reference = parseAllDocuments(readFileSync(join(REPO_ROOT, 'deploy', 'rbac.yaml'), 'utf8')).map((d) => d.toJS() as K8sObject);
  const clusterWide = rulesOf(reference.find((o) => o.kind === 'ClusterRole')!);
  // The namespaced Role holds the reference rules minus the cluster-scoped kinds.
  const clusterScoped = new Set(['ingressclasses', 'gatewayclasses', 'gatewayclasses/status', 'namespaces']);
  const expected = clusterWide.map((r) => ({ ...r, resources: r.resources.filter((x) => !clusterScoped.has(x)) })).filter((r) => r.resources.length > 0);
  for (const role of routing) t.deepEqual(rulesOf(role), expected);
  for (const ns of ['shop', 'blog']) {
    const binding = out.objects.find((o) => o.kind === 'RoleBinding' && o.metadata.name === 'warren' && o.metadata.namespace === ns) as unknown as {
      roleRef: { kind: string; name: string };
      subjects: Array<{ name: string; namespace: string }>;
    };
    t.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'warren' } as unknown as typeof binding.roleRef);
    t.deepEqual(
      binding.subjects.map((s) => [s.name, s.namespace]),
      [['warren', 'warren-system']],
    );
  }
});

test('Secrets are readable only while something can reference one: the tls plugin, custom plugins or Gateway listeners', async (t) => {
  const secretsAnywhere = (out: Awaited<ReturnType<typeof render>>) =>
    out.objects.filter((o) => (o.kind === 'ClusterRole' || o.kind === 'Role') && readsSecrets(rulesOf(o))).map((o) => `${o.kind}/${o.metadata.namespace ?? ''}`);
  t.deepEqual(secretsAnywhere(await render(withToken)), ['ClusterRole/'], 'default: tls on');
  const noGateway = { gateway: { enabled: false } };
  t.deepEqual(secretsAnywhere(await render({ ...withToken, plugins: { tls: { enabled: false } } })), [], 'tls off, Gateway API off by default: no Secret read at all');
  t.deepEqual(secretsAnywhere(await render({ ...withToken, ...noGateway, plugins: { tls: { enabled: false } }, kubernetes: { namespaces: ['shop'] } })), []);
  t.deepEqual(
    secretsAnywhere(await render({ ...withToken, gateway: { enabled: true }, plugins: { tls: { enabled: false } } })),
    ['ClusterRole/'],
    'Gateway listeners name certificate Secrets',
  );
  t.deepEqual(secretsAnywhere(await render({ ...withToken, kubernetes: { namespaces: ['shop'] } })), ['Role/shop'], 'namespaced, never cluster-wide');
  t.deepEqual(
    secretsAnywhere(await render({ ...withToken, ...noGateway, plugins: { tls: { enabled: false } }, extraPlugins: [{ package: '@acme/warren-plugin-x' }] })),
    ['ClusterRole/'],
    'custom plugins may reference Secrets',
  );
  // The controller makes the same decision: without a plugin whose annotation names a Secret it watches none.
  const plugins = await resolvePlugins(parseConfig({ plugins: { tls: { enabled: false } } }));
  t.false(plugins.some((p) => p.module.manifest.annotations?.some((a) => a.secretRef)));
  const withTls = await resolvePlugins(parseConfig({}));
  t.true(withTls.some((p) => p.module.manifest.annotations?.some((a) => a.secretRef)));
});

test('ConfigMaps are readable only with the Gateway API on (BackendTLSPolicy CA bundles), namespaced when namespaces are', async (t) => {
  const readsConfigMaps = (out: Awaited<ReturnType<typeof render>>) =>
    out.objects
      .filter((o) => (o.kind === 'ClusterRole' || o.kind === 'Role') && rulesOf(o).some((r) => r.resources.includes('configmaps')))
      .map(
        (o) =>
          `${o.kind}/${o.metadata.namespace ?? ''}:${rulesOf(o)
            .find((r) => r.resources.includes('configmaps'))!
            .verbs.join(',')}`,
      );
  t.deepEqual(readsConfigMaps(await render(withToken)), [], 'Gateway API off by default: no ConfigMap read');
  t.deepEqual(readsConfigMaps(await render({ ...withToken, gateway: { enabled: true } })), ['ClusterRole/:get,list,watch']);
  t.deepEqual(
    readsConfigMaps(await render({ ...withToken, gateway: { enabled: true }, kubernetes: { namespaces: ['shop'] } })),
    ['Role/shop:get,list,watch'],
    'never cluster-wide',
  );
});

test('helm refuses a plugin whose dependency is off (gRPC without HTTP/2), naming the dependency', async (t) => {
  const refused = await template({ ...withToken, plugins: { http2: { enabled: false } } });
  t.not(refused.code, 0);
  t.regex(refused.stderr, /plugins\/http2\/enabled/);
  const bothOff = await template({ ...withToken, plugins: { http2: { enabled: false }, grpc: { enabled: false } } });
  t.is(bothOff.code, 0, bothOff.stderr);
  // The controller refuses the same settings, so the schema only moves the error to install time.
  await t.throwsAsync(resolvePlugins(parseConfig({ plugins: { http2: { enabled: false } } })), { message: /upstream\.http2/ });
});

test('HPA, NetworkPolicy, extra containers, arguments, environment, objects, probes and minReadySeconds render as set', async (t) => {
  const plain = await render(withToken);
  for (const kind of ['HorizontalPodAutoscaler', 'NetworkPolicy', 'PrometheusRule']) t.is(plain.find(kind), undefined, `${kind} is off by default`);
  t.is(plain.find('ConfigMap', 'warren-dashboard'), undefined);
  const out = await render({
    ...withToken,
    autoscaling: { enabled: true, minReplicas: 3, maxReplicas: 9, targetCPUUtilizationPercentage: 60, targetMemoryUtilizationPercentage: 80 },
    networkPolicy: {
      enabled: true,
      metricsFrom: [{ namespaceSelector: { matchLabels: { name: 'monitoring' } } }],
      egress: { enabled: true, extra: [{ to: [{ namespaceSelector: {} }] }] },
    },
    extraArgs: ['--log-level', 'debug'],
    envFrom: [{ secretRef: { name: 'warren-env' } }],
    initContainers: [{ name: 'wait', image: 'busybox' }],
    extraContainers: [{ name: 'sidecar', image: 'busybox' }],
    extraObjects: [
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: '{{ .Release.Name }}-extra' }, data: { a: 'b' } },
      'apiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ .Release.Name }}-templated',
    ],
    livenessProbe: { enabled: false },
    readinessProbe: { periodSeconds: 7 },
    minReadySeconds: 12,
  });
  const d = out.deployment();
  const spec = d.spec as unknown as { replicas?: number; minReadySeconds?: number };
  t.is(spec.replicas, undefined, 'the HPA owns the replica count');
  t.is(spec.minReadySeconds, 12);
  const hpa = out.get('HorizontalPodAutoscaler') as unknown as {
    spec: {
      minReplicas: number;
      maxReplicas: number;
      scaleTargetRef: { name: string };
      metrics: Array<{ resource: { name: string; target: { averageUtilization: number } } }>;
    };
  };
  t.like(hpa.spec, { minReplicas: 3, maxReplicas: 9, scaleTargetRef: { name: d.metadata.name } });
  t.deepEqual(
    hpa.spec.metrics.map((m) => [m.resource.name, m.resource.target.averageUtilization]),
    [
      ['cpu', 60],
      ['memory', 80],
    ],
  );
  t.is((out.get('PodDisruptionBudget') as unknown as { spec: { maxUnavailable: number } }).spec.maxUnavailable, 1, 'a budget follows the HPA minimum');
  const np = out.get('NetworkPolicy') as unknown as {
    spec: { policyTypes: string[]; ingress: Array<{ ports: Array<{ port: string }>; from: unknown[] }>; egress: Array<{ ports?: Array<{ port: number }>; to?: unknown }> };
  };
  t.deepEqual(np.spec.policyTypes, ['Ingress', 'Egress']);
  t.deepEqual(
    np.spec.ingress.map((r) => r.ports.map((p) => p.port)),
    [['metrics']],
    'inbound: the metrics port only',
  );
  t.deepEqual(np.spec.ingress[0]!.from, [{ namespaceSelector: { matchLabels: { name: 'monitoring' } } }]);
  t.true(
    np.spec.egress.some((r) => r.ports?.some((p) => p.port === 7844)),
    'the edge is reachable',
  );
  t.true(
    np.spec.egress.some((r) => r.to !== undefined),
    'extra egress rules are added',
  );
  const pod = d.spec.template.spec as unknown as {
    initContainers: Array<{ name: string }>;
    containers: Array<{ name: string; args: string[]; envFrom: unknown[]; livenessProbe?: unknown; readinessProbe: { periodSeconds: number; enabled?: boolean } }>;
  };
  t.deepEqual(
    pod.initContainers.map((c) => c.name),
    ['wait'],
  );
  t.deepEqual(
    pod.containers.map((c) => c.name),
    ['controller', 'sidecar'],
  );
  const c = pod.containers[0]!;
  t.deepEqual(c.args, ['--config', '/etc/warren/config/config.yaml', '--log-level', 'debug']);
  t.deepEqual(c.envFrom, [{ secretRef: { name: 'warren-env' } }]);
  t.is(c.livenessProbe, undefined);
  t.is(c.readinessProbe.periodSeconds, 7);
  t.false('enabled' in c.readinessProbe, 'the toggle is not passed to Kubernetes');
  t.truthy(out.find('ConfigMap', 'warren-extra'));
  t.truthy(out.find('Secret', 'warren-templated'));
  const refused = await template({ ...withToken, autoscaling: { enabled: true, minReplicas: 5, maxReplicas: 2 } });
  t.regex(refused.stderr, /autoscaling\.minReplicas must not exceed autoscaling\.maxReplicas/);
});

test('the PrometheusRule and the Grafana dashboard render when enabled, with the shipped dashboard JSON', async (t) => {
  const out = await render({
    ...withToken,
    prometheusRule: { create: true, labels: { release: 'prom' }, errorRatio: 0.1 },
    grafanaDashboard: { create: true, namespace: 'monitoring' },
  });
  const rule = out.get('PrometheusRule') as unknown as {
    metadata: { labels: Record<string, string> };
    spec: { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> };
  };
  t.is(rule.metadata.labels.release, 'prom');
  const alerts = rule.spec.groups[0]!.rules;
  t.deepEqual(
    alerts.map((r) => r.alert),
    ['WarrenTunnelDown', 'WarrenHighErrorRatio', 'WarrenBackendWithoutReadyEndpoints', 'WarrenLeaderMissing', 'WarrenConfigRejected'],
  );
  for (const r of alerts) t.regex(r.expr, /job="warren"/, `${r.alert} selects this release's series`);
  t.regex(alerts[1]!.expr, /> 0\.1$/);
  const cm = out.get('ConfigMap', 'warren-dashboard') as unknown as { metadata: { namespace: string; labels: Record<string, string> }; data: Record<string, string> };
  t.is(cm.metadata.namespace, 'monitoring');
  t.is(cm.metadata.labels.grafana_dashboard, '1');
  t.deepEqual(JSON.parse(cm.data['warren.json']!), JSON.parse(readFileSync(join(CHART_DIR, 'dashboards', 'warren.json'), 'utf8')));
});

test('Chart.yaml carries chart-repository metadata and helm package builds the archive', async (t) => {
  const chart = parseYaml(readFileSync(join(CHART_DIR, 'Chart.yaml'), 'utf8')) as { annotations: Record<string, string>; version: string; maintainers: unknown[] };
  t.is(chart.annotations['artifacthub.io/license'], 'Apache-2.0');
  t.truthy(chart.annotations['artifacthub.io/changes']);
  t.true(chart.maintainers.length > 0);
  const dir = mkdtempSync(join(tmpdir(), 'warren-package-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const packaged = await helm(['package', CHART_DIR, '--destination', dir]);
  t.is(packaged.code, 0, packaged.stderr);
  t.true(existsSync(join(dir, `warren-${chart.version}.tgz`)));
});

test("V8's old-generation limit follows the container's memory limit, and a user's NODE_OPTIONS replaces it", async (t) => {
  const nodeOptions = async (values: object): Promise<Array<string | undefined>> =>
    controller((await render({ ...withToken, ...values })).deployment())
      .env!.filter((e) => e.name === 'NODE_OPTIONS')
      .map((e) => e.value);
  t.deepEqual(await nodeOptions({}), ['--max-old-space-size=256'], 'the default limit (512Mi) at the default 50 %');
  const limit = (memory: unknown, extra: object = {}) => nodeOptions({ resources: { limits: { memory } }, ...extra });
  t.deepEqual(await limit('1Gi'), ['--max-old-space-size=512']);
  t.deepEqual(await limit('1.5Gi'), ['--max-old-space-size=768']);
  t.deepEqual(await limit('1G'), ['--max-old-space-size=476'], 'decimal units: 10^9 bytes is 953 MiB');
  t.deepEqual(await limit(805306368), ['--max-old-space-size=384'], 'plain bytes');
  t.deepEqual(await limit('2Gi', { oldSpaceLimitPercent: 70 }), ['--max-old-space-size=1433']);
  t.deepEqual(await limit('1Gi', { oldSpaceLimitPercent: 0 }), [], 'off: Node picks its own limit');
  t.deepEqual(await limit(null), [], 'no memory limit: nothing to derive from');
  t.deepEqual(await limit('1Gi', { extraEnv: [{ name: 'NODE_OPTIONS', value: '--max-old-space-size=300' }] }), ['--max-old-space-size=300'], "the user's, alone");
  const unreadable = await template({ ...withToken, resources: { limits: { memory: '1Gb' } } });
  t.not(unreadable.code, 0);
  t.regex(unreadable.stderr, /resources\.limits\.memory "1Gb" is not a memory quantity/);
  const tooSmall = await template({ ...withToken, resources: { limits: { memory: '128Mi' } } });
  t.not(tooSmall.code, 0);
  t.regex(tooSmall.stderr, /old generation of 64 MiB; Warren needs at least 96/);
});
