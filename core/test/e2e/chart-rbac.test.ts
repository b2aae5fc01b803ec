/**
 * The Helm chart's RBAC, end to end. `helm template` renders the chart (management mode, the DNS plugin on, the
 * uninstall hook on); its ServiceAccount, ClusterRole, Roles, bindings and IngressClass are created for real in
 * a real kube-apiserver; a token minted for that ServiceAccount (TokenRequest) is all the controller process
 * gets. The process runs with the config file from the rendered ConfigMap and must then do everything a
 * production replica does: lead, adopt the tunnel by name and store its credentials Secret, sync, route a
 * request (eyeball → edge simulator → tunnel → pipeline → echo backend on a test host), write Ingress status,
 * record Events, hold the DNS finalizer and release it. When the tunnel is deleted in Cloudflare meanwhile, the
 * leader replaces it and the Secret, and the same process moves its connections, status and DNS record to the
 * replacement. Then the hook Job's command runs with the same token and deletes the tunnel and the Secret. A permission missing from the chart fails one of these steps.
 *
 * The static half checks the other direction: the chart grants nothing beyond deploy/rbac.yaml plus the
 * management-mode Role for the tunnel credentials Secret.
 */
import test from 'ava';
import type { KubernetesObject } from '@kubernetes/client-node';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { startEdgeSimulator, type EdgeSimulator } from '../../src/edge-simulator/index.js';
import { bytesToUuid } from '../../src/tunnel/credentials.js';
import { startFakeCloudflare, type FakeCloudflare, type FakeTunnel } from '../../src/testing/index.js';
import { render, type Container, type Rendered } from '../chart/helm.js';
import { adminClients, loadRbacObjects, useApiServer, type AdminClients } from '../support/apiserver.js';
import { ingress, testHost } from '../support/k8s-objects.js';
import { refusedRequests, startChartController } from './support/chart-controller.js';
import { cleanUpAfter, tempDir, waitUntil } from './support/children.js';
import { createEchoBackend, eventsFor, statusAddresses } from './support/cluster.js';
import { startEchoService, type EchoService } from './support/echo.js';
import { sendUntil } from './support/http.js';
import { baseEnv, MAIN_JS, NODE_BIN, REPO_ROOT } from './support/paths.js';

const server = useApiServer(test);
const RELEASE = 'edge';
const ACCOUNT = 'ab'.repeat(16);
const API_TOKEN = 'chart-rbac-api-token-SECRET-0123456789';
const TUNNEL_NAME = 'chart-e2e';
const ZONE = 'example.test';
const CREDENTIALS_SECRET = 'warren-tunnel-credentials';
const RBAC_KINDS = new Set(['ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding']);

let admin: AdminClients;
let fake: FakeCloudflare;
let tunnel: FakeTunnel;
let edge: EdgeSimulator;
let namespace: string;
let rendered: Rendered;
const echoes: EchoService[] = [];

/** Chart values for this file: management mode against the fake API, the test edge, quick leader election. */
function values(): Record<string, unknown> {
  return {
    replicaCount: 1,
    logLevel: 'info',
    shutdownGracePeriod: '5s',
    leaderElection: { enabled: true, leaseDuration: '4s', renewDeadline: '3s', retryPeriod: '500ms' },
    kubernetes: { resyncBurstWindow: '20ms' },
    tunnel: { edgeAddresses: [...edge.edgeAddresses], edgeCaFile: edge.caFile, haConnections: 2, rpcTimeout: '5s' },
    cloudflare: { apiToken: API_TOKEN, accountId: ACCOUNT, tunnelName: TUNNEL_NAME, apiBaseUrl: fake.baseUrl, deleteTunnelOnUninstall: true, tunnelCheckInterval: '1s' },
    plugins: { dns: { enabled: true } },
    // Every right deploy/rbac.yaml lists, the Gateway API's included.
    gateway: { enabled: true },
  };
}

test.serial.before(async () => {
  admin = adminClients(server());
  fake = await startFakeCloudflare({ tokens: [{ value: API_TOKEN }] });
  fake.addZone(ZONE, { accountId: ACCOUNT });
  // The tunnel exists already (made in the dashboard, say); the controller adopts it by name, and the edge
  // simulator accepts exactly the credentials of the account's tunnels that are not deleted.
  const secret = randomBytes(32);
  tunnel = fake.addTunnel(ACCOUNT, TUNNEL_NAME, { secret });
  edge = await startEdgeSimulator({
    authorize: (c) => c.accountTag === ACCOUNT && fake.tunnels(ACCOUNT).some((x) => !x.deletedAt && x.id === c.tunnelId && x.secret.equals(c.tunnelSecret)),
    edgeListeners: 2,
    eyeball: { host: '127.0.0.1', port: 0 },
  });
  namespace = `warren-chart-${process.pid}`;
  // Pods below the "restricted" Pod Security Standard draw a warning in the release namespace.
  await admin.core.createNamespace({
    body: { metadata: { name: namespace, labels: { 'pod-security.kubernetes.io/warn': 'restricted', 'pod-security.kubernetes.io/audit': 'restricted' } } },
  });
  rendered = await render(values(), { release: RELEASE, namespace });
});

test.after.always(async () => {
  await edge?.close();
  await fake?.close();
  await Promise.all(echoes.map((e) => e.close()));
});

/** Every (scope, apiGroup/resource, verb, resourceName) a set of Roles and ClusterRoles grants, sorted. */
function grants(objects: readonly KubernetesObject[]): string[] {
  const out = new Set<string>();
  for (const object of objects) {
    if (object.kind !== 'ClusterRole' && object.kind !== 'Role') continue;
    const scope = object.kind === 'ClusterRole' ? 'cluster' : 'namespace';
    const rules = (object as { rules?: Array<{ apiGroups?: string[]; resources?: string[]; verbs: string[]; resourceNames?: string[] }> }).rules ?? [];
    for (const rule of rules) {
      for (const group of rule.apiGroups ?? ['']) {
        for (const resource of rule.resources ?? []) {
          for (const verb of rule.verbs) {
            for (const name of rule.resourceNames ?? ['(any)']) out.add(`${scope} ${group || 'core'}/${resource} ${verb} ${name}`);
          }
        }
      }
    }
  }
  return [...out].sort();
}

/**
 * deploy/rbac.yaml plus the management-mode Role: create Secrets, and get/update/delete the credentials Secret; with
 * the Gateway API also get/list/update/delete of the release namespace's Secrets (the Gateways' tunnel credentials).
 */
function allowedGrants(): string[] {
  const gatewayTunnels = ['get', 'list', 'update', 'delete'].map((v) => `${v} (any)`);
  const secretRole = ['create (any)', ...['get', 'update', 'delete'].map((v) => `${v} ${CREDENTIALS_SECRET}`), ...gatewayTunnels].map((g) => `namespace core/secrets ${g}`);
  return [...new Set([...grants(loadRbacObjects()), ...secretRole])].sort();
}

test.serial('the chart grants exactly deploy/rbac.yaml plus the tunnel credentials Secret Role, to its own ServiceAccount only', async (t) => {
  const everything = await render(
    {
      ...values(),
      replicaCount: 3,
      plugins: Object.fromEntries(['tls', 'http2', 'keepalive', 'websocket', 'grpc', 'sse', 'dns', 'firewall'].map((n) => [n, { enabled: true }])),
      serviceMonitor: { create: true },
    },
    { release: RELEASE, namespace },
  );
  for (const out of [rendered, everything]) {
    const rbac = out.objects.filter((o) => RBAC_KINDS.has(o.kind));
    t.deepEqual(grants(rbac), allowedGrants());
    t.deepEqual(rbac.map((o) => o.kind).sort(), ['ClusterRole', 'ClusterRoleBinding', 'Role', 'Role', 'RoleBinding', 'RoleBinding']);
    const sa = out.get('ServiceAccount').metadata;
    for (const object of rbac) {
      if (object.kind === 'Role' || object.kind === 'RoleBinding') t.is(object.metadata.namespace, namespace, `${object.kind} ${object.metadata.name}`);
      if (!object.kind.endsWith('Binding')) continue;
      const binding = object as unknown as { roleRef: { kind: string; name: string }; subjects: Array<{ kind: string; name: string; namespace: string }> };
      t.truthy(out.find(binding.roleRef.kind, binding.roleRef.name), `${object.metadata.name} binds a Role the chart renders`);
      t.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: sa.name, namespace: sa.namespace! }]);
    }
  }
});

test.serial("the uninstall hook Job passes the API server's strict validation and the restricted Pod Security profile", async (t) => {
  const job = rendered.get('Job');
  const token = server().adminConfig().getCurrentUser()?.token;
  const agent = new Agent({ connect: { ca: server().caPem } });
  t.teardown(() => agent.close());
  const res = await request(
    `${server().url}/apis/batch/v1/namespaces/${namespace}/jobs/${job.metadata.name}?dryRun=All&fieldManager=warren-chart-test&fieldValidation=Strict&force=true`,
    {
      method: 'PATCH',
      dispatcher: agent,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/apply-patch+yaml', accept: 'application/json' },
      body: JSON.stringify(job),
    },
  );
  const body = await res.body.text();
  t.true(res.statusCode === 200 || res.statusCode === 201, `${res.statusCode} ${body}`);
  t.is(res.headers.warning, undefined, 'no Pod Security or validation warning');
});

/** Files the pod would get from its mounts: the rendered config file and the API token from the rendered Secret. */
function podFiles(dir: string): { configFile: string; apiTokenFile: string } {
  const configFile = join(dir, 'config.yaml');
  writeFileSync(configFile, rendered.configText());
  const secret = rendered.get('Secret') as unknown as { data: Record<string, string> };
  const apiTokenFile = join(dir, 'api-token');
  writeFileSync(apiTokenFile, Buffer.from(secret.data['api-token']!, 'base64'), { mode: 0o600 });
  return { configFile, apiTokenFile };
}

/** Arguments of a rendered container with its config file path pointed at the local copy, plus what differs off-cluster. */
function argsOf(container: Container, files: { configFile: string; apiTokenFile: string }, kubeconfig: string): string[] {
  const configMount = container.volumeMounts!.find((m) => m.name === 'config')!.mountPath;
  return [
    ...container.args!.map((a) => (a.startsWith(`${configMount}/`) ? files.configFile : a)),
    // Off-cluster: the kubeconfig holding the ServiceAccount token replaces the in-cluster one, the token file
    // lives elsewhere, and the health server takes a free loopback port.
    '--set',
    `kubernetes.kubeconfig=${kubeconfig}`,
    '--set',
    `cloudflare.apiTokenFile=${files.apiTokenFile}`,
  ];
}

function run(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      NODE_BIN,
      [MAIN_JS, ...args],
      { cwd: REPO_ROOT, env: baseEnv({ POD_NAME: 'edge-warren-uninstall', POD_NAMESPACE: namespace }), timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}

async function secretExists(name: string): Promise<boolean> {
  try {
    await admin.core.readNamespacedSecret({ namespace, name });
    return true;
  } catch (err) {
    if ((err as { code?: number }).code === 404) return false;
    throw err;
  }
}

test.serial("with only the chart's RBAC the controller syncs, routes, writes status and Events, and the hook deletes the tunnel", async (t) => {
  // Create what the chart grants, for real, and nothing else.
  const applied = rendered.objects.filter((o) => o.kind === 'ServiceAccount' || o.kind === 'IngressClass' || RBAC_KINDS.has(o.kind));
  for (const object of applied) await admin.objects.create(object as KubernetesObject);
  const sa = rendered.get('ServiceAccount').metadata.name;
  const minted = await admin.core.createNamespacedServiceAccountToken({
    namespace,
    name: sa,
    body: { spec: { audiences: [server().url], expirationSeconds: 3600 } },
  });
  const dir = tempDir('chart-rbac');
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, server().configForToken(minted.status!.token!).exportConfig(), { mode: 0o600 });
  const files = podFiles(dir);

  const deploymentContainer = rendered.deployment().spec.template.spec.containers[0]!;
  const controller = await startChartController(argsOf(deploymentContainer, files, kubeconfig), { name: 'edge-warren-0', namespace });
  cleanUpAfter(t, controller.child);

  // The leader adopted the existing tunnel and stored its credentials in the Secret its Role names.
  await waitUntil('the credentials Secret', () => secretExists(CREDENTIALS_SECRET), 10_000);
  const stored = await admin.core.readNamespacedSecret({ namespace, name: CREDENTIALS_SECRET });
  t.is(stored.metadata?.annotations?.['warren.dev/tunnel-id'], tunnel.id);
  t.is(fake.count('POST /accounts/:account/cfd_tunnel'), 0, 'adopted, not created');

  // Route one Ingress to echo backends on test hosts.
  const appNamespace = await server().createNamespace('app');
  const echo = await startEchoService('web', [testHost(2), testHost(3)]);
  echoes.push(echo);
  await createEchoBackend(admin, appNamespace, echo);
  const host = `app.${ZONE}`;
  await admin.networking.createNamespacedIngress({
    namespace: appNamespace,
    body: ingress(appNamespace, 'web', {
      rules: [{ host, paths: [{ path: '/', pathType: 'Prefix', service: 'web', port: 80 }] }],
      tls: [{ hosts: [host], secretName: 'web-tls' }],
    }),
  });
  const answer = await sendUntil(edge.eyeballUrl, '/hello', { host }, (a) => a.status === 200 && a.echo?.service === 'web', 30_000, `${host} served by web`);
  t.is(answer.echo?.host, host);
  t.is(answer.echo?.path, '/hello');
  t.true(echo.addresses.some((a) => answer.echo?.backend === `${a}:${echo.port}`));

  const hostname = `${tunnel.id}.cfargotunnel.com`;
  await waitUntil('the Ingress status', async () => (await statusAddresses(admin, appNamespace, 'web')).join() === hostname, 20_000);
  await waitUntil(
    'a Synced and a TLSIgnored Event',
    async () => {
      const reasons = (await eventsFor(admin, appNamespace, 'web')).map((e) => `${e.type}/${e.reason}`);
      return reasons.includes('Normal/Synced') && reasons.includes('Warning/TLSIgnored');
    },
    20_000,
  );
  await waitUntil(
    'the proxied CNAME and the cleanup finalizer',
    async () => {
      const cname = fake.records(ZONE).find((r) => r.type === 'CNAME' && r.name === host);
      const ing = await admin.networking.readNamespacedIngress({ namespace: appNamespace, name: 'web' });
      return cname?.content === hostname && (ing.metadata?.finalizers ?? []).includes('warren.dev/cleanup');
    },
    20_000,
  );

  // The tunnel is deleted in Cloudflare while the controller runs, and the edge drops its connections. The leader
  // notices (cloudflare.tunnelCheckInterval), creates a replacement and rewrites the Secret; the same process
  // reconnects with it, and status and DNS follow — no restart.
  await fake.clients(API_TOKEN)().zeroTrust.tunnels.cloudflared.delete(tunnel.id, { account_id: ACCOUNT });
  edge.faults.dropConnection();
  let replacement = '';
  await waitUntil(
    'a replacement tunnel in the credentials Secret',
    async () => {
      replacement = (await admin.core.readNamespacedSecret({ namespace, name: CREDENTIALS_SECRET })).metadata?.annotations?.['warren.dev/tunnel-id'] ?? '';
      return replacement !== '' && replacement !== tunnel.id;
    },
    30_000,
  );
  t.is(fake.count('POST /accounts/:account/cfd_tunnel'), 1, 'exactly one replacement was created');
  t.truthy(fake.tunnels(ACCOUNT).find((x) => x.id === replacement && !x.deletedAt));
  const again = await sendUntil(edge.eyeballUrl, '/again', { host }, (a) => a.status === 200 && a.echo?.service === 'web', 30_000, `${host} served through the replacement`);
  t.is(again.echo?.path, '/again');
  t.true(
    edge.connections.some((c) => !c.closed && c.registeredAt !== undefined && c.registration !== undefined && bytesToUuid(c.registration.tunnelId) === replacement),
    'a live edge connection is registered for the replacement tunnel',
  );
  const replaced = `${replacement}.cfargotunnel.com`;
  await waitUntil('the Ingress status names the replacement', async () => (await statusAddresses(admin, appNamespace, 'web')).join() === replaced, 20_000);
  await waitUntil('the CNAME points at the replacement', async () => fake.records(ZONE).find((r) => r.type === 'CNAME' && r.name === host)?.content === replaced, 20_000);

  // Deleting the Ingress: the leader removes the record, then its finalizer, so the Ingress goes.
  await admin.networking.deleteNamespacedIngress({ namespace: appNamespace, name: 'web' });
  await waitUntil(
    'the Ingress to be gone',
    async () => {
      try {
        await admin.networking.readNamespacedIngress({ namespace: appNamespace, name: 'web' });
        return false;
      } catch (err) {
        return (err as { code?: number }).code === 404;
      }
    },
    20_000,
  );
  t.false(
    fake.records(ZONE).some((r) => r.name === host),
    'the DNS record went with the Ingress',
  );

  // helm uninstall: the pre-delete hook runs while the controller still runs, with the same ServiceAccount.
  const hook = (rendered.get('Job') as unknown as { spec: { template: { spec: { serviceAccountName: string; containers: Container[] } } } }).spec.template.spec;
  t.is(hook.serviceAccountName, sa);
  const uninstall = await run(argsOf(hook.containers[0]!, files, kubeconfig));
  t.is(uninstall.code, 0, uninstall.stderr);
  t.regex(uninstall.stdout, new RegExp(`Deleted the tunnel "${TUNNEL_NAME}" \\(${replacement}\\)`));
  t.false(uninstall.stdout.includes(API_TOKEN) || uninstall.stderr.includes(API_TOKEN), 'the API token is never printed');
  t.truthy(fake.tunnels(ACCOUNT).find((x) => x.id === replacement)?.deletedAt, 'the tunnel is deleted');
  t.false(await secretExists(CREDENTIALS_SECRET), 'the credentials Secret is deleted');

  const exit = await controller.child.stop(15_000);
  t.deepEqual(exit, { code: 0, signal: null });
  t.deepEqual(refusedRequests(controller.child), [], 'the API server refused nothing the controller asked');
});
