/**
 * The chart with namespaced RBAC and its monitoring objects, end to end. `helm template` renders the chart in
 * token mode with `kubernetes.namespaces` set, the tls plugin off, and the PrometheusRule and Grafana dashboard
 * on. Its ServiceAccount, IngressClass, ClusterRole, Roles and bindings are created in a real kube-apiserver; a
 * token of that ServiceAccount is all the controller process gets. The controller must sync, lead and route
 * with no permission to read any Secret, and every metric a dashboard panel or an alert queries must exist in
 * its /metrics output.
 */
import test from 'ava';
import type { KubernetesObject } from '@kubernetes/client-node';
import { CoreV1Api } from '@kubernetes/client-node';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startEdgeSimulator, type EdgeSimulator } from '../../src/edge-simulator/index.js';
import { render, type Rendered } from '../chart/helm.js';
import { adminClients, useApiServer, type AdminClients } from '../support/apiserver.js';
import { ingress, testHost } from '../support/k8s-objects.js';
import { refusedRequests, startChartController } from './support/chart-controller.js';
import { cleanUpAfter, tempDir, waitUntil } from './support/children.js';
import { createEchoBackend } from './support/cluster.js';
import { startEchoService, type EchoService } from './support/echo.js';
import { send, sendUntil } from './support/http.js';

const server = useApiServer(test);
const RELEASE = 'mon';
const RBAC_KINDS = new Set(['ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding']);

let admin: AdminClients;
let edge: EdgeSimulator;
let namespace: string;
let appNamespace: string;
let rendered: Rendered;
const echoes: EchoService[] = [];

test.serial.before(async () => {
  admin = adminClients(server());
  edge = await startEdgeSimulator({ edgeListeners: 2, eyeball: { host: '127.0.0.1', port: 0 } });
  namespace = `warren-mon-${process.pid}`;
  await admin.core.createNamespace({ body: { metadata: { name: namespace } } });
  appNamespace = await server().createNamespace('shop');
  rendered = await render(
    {
      replicaCount: 1,
      shutdownGracePeriod: '5s',
      leaderElection: { enabled: true, leaseDuration: '4s', renewDeadline: '3s', retryPeriod: '500ms' },
      kubernetes: { namespaces: [appNamespace], resyncBurstWindow: '20ms' },
      tunnel: { edgeAddresses: [...edge.edgeAddresses], edgeCaFile: edge.caFile, haConnections: 2, rpcTimeout: '5s' },
      cloudflare: { tunnelToken: edge.token },
      plugins: { tls: { enabled: false } },
      prometheusRule: { create: true },
      grafanaDashboard: { create: true },
    },
    { release: RELEASE, namespace },
  );
});

test.after.always(async () => {
  await edge?.close();
  await Promise.all(echoes.map((e) => e.close()));
});

/** Metric names in PromQL expressions: every `name{` selector and every `label_values(name, …)`. */
function queriedMetrics(exprs: readonly string[]): Set<string> {
  const names = new Set<string>();
  for (const expr of exprs) {
    for (const m of expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{/g)) names.add(m[1]!);
    for (const m of expr.matchAll(/label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)/g)) names.add(m[1]!);
  }
  return names;
}

/** Sample names the exposition declares (`# TYPE`), histograms and summaries with their series suffixes. */
function exposedMetrics(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m as unknown as [string, string, string];
    names.add(name);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
    if (type === 'summary') for (const s of ['_sum', '_count']) names.add(name + s);
  }
  return names;
}

test.serial('namespaced RBAC without Secret access is enough to lead, sync and route; every dashboard and alert metric exists', async (t) => {
  // Nothing the chart renders lets the ServiceAccount read a Secret, and nothing namespaced is granted cluster-wide.
  const rbac = rendered.objects.filter((o) => RBAC_KINDS.has(o.kind));
  const rules = (o: unknown) => (o as { rules: Array<{ resources: string[] }> }).rules;
  t.false(rbac.some((o) => (o.kind === 'ClusterRole' || o.kind === 'Role') && rules(o).some((r) => r.resources.includes('secrets'))));
  t.deepEqual(
    rules(rendered.get('ClusterRole')).flatMap((r) => r.resources),
    ['ingressclasses'],
  );

  for (const object of rendered.objects.filter((o) => o.kind === 'ServiceAccount' || o.kind === 'IngressClass' || RBAC_KINDS.has(o.kind))) {
    await admin.objects.create(object as KubernetesObject);
  }
  const sa = rendered.get('ServiceAccount').metadata.name;
  const minted = await admin.core.createNamespacedServiceAccountToken({ namespace, name: sa, body: { spec: { audiences: [server().url], expirationSeconds: 3600 } } });
  const asController = server().configForToken(minted.status!.token!);
  const forbidden = async (list: () => Promise<unknown>) =>
    list().then(
      () => 200,
      (err: { code?: number }) => err.code,
    );
  const core = asController.makeApiClient(CoreV1Api);
  t.is(await forbidden(() => core.listNamespacedSecret({ namespace: appNamespace })), 403, 'no Secret read in the watched namespace');
  t.is(await forbidden(() => core.listSecretForAllNamespaces()), 403, 'no Secret read cluster-wide');
  t.is(await forbidden(() => core.listServiceForAllNamespaces()), 403, 'Services only in the watched namespace');

  const dir = tempDir('chart-monitoring');
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, asController.exportConfig(), { mode: 0o600 });
  const configFile = join(dir, 'config.yaml');
  writeFileSync(configFile, rendered.configText());
  const tokenFile = join(dir, 'tunnel-token');
  const secret = rendered.get('Secret') as unknown as { data: Record<string, string> };
  writeFileSync(tokenFile, Buffer.from(secret.data['tunnel-token']!, 'base64'), { mode: 0o600 });
  const container = rendered.deployment().spec.template.spec.containers[0]!;
  const configMount = container.volumeMounts!.find((m) => m.name === 'config')!.mountPath;
  const args = [
    ...container.args!.map((a) => (a.startsWith(`${configMount}/`) ? configFile : a)),
    '--set',
    `kubernetes.kubeconfig=${kubeconfig}`,
    '--set',
    `tunnel.tokenFile=${tokenFile}`,
  ];
  const controller = await startChartController(args, { name: 'mon-warren-0', namespace });
  cleanUpAfter(t, controller.child);

  const echo = await startEchoService('web', [testHost(4)]);
  echoes.push(echo);
  await createEchoBackend(admin, appNamespace, echo);
  const host = 'shop.example.test';
  await admin.networking.createNamespacedIngress({
    namespace: appNamespace,
    body: ingress(appNamespace, 'web', { rules: [{ host, paths: [{ path: '/', pathType: 'Prefix', service: 'web', port: 80 }] }] }),
  });
  const answer = await sendUntil(edge.eyeballUrl, '/hello', { host }, (a) => a.status === 200 && a.echo?.service === 'web', 30_000, `${host} served by web`);
  t.is(answer.echo?.path, '/hello');

  // Both edge connections registered (the second follows the first).
  await waitUntil('two edge connections', async () => /^cloudflared_tunnel_ha_connections 2$/m.test((await send(controller.healthUrl, '/metrics')).body), 20_000);
  const metrics = await send(controller.healthUrl, '/metrics');
  t.is(metrics.status, 200);
  const exposed = exposedMetrics(metrics.body);
  const rule = rendered.get('PrometheusRule') as unknown as { spec: { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> } };
  const alertExprs = rule.spec.groups.flatMap((g) => g.rules.map((r) => r.expr));
  const dashboard = JSON.parse((rendered.get('ConfigMap', `${RELEASE}-warren-dashboard`) as unknown as { data: Record<string, string> }).data['warren.json']!) as {
    panels: Array<{ targets?: Array<{ expr: string }> }>;
    templating: { list: Array<{ query?: unknown }> };
  };
  const panelExprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((x) => x.expr));
  const templating = dashboard.templating.list.map((v) => JSON.stringify(v.query ?? ''));
  const queried = queriedMetrics([...alertExprs, ...panelExprs, ...templating]);
  t.true(queried.size >= 20, `found ${queried.size} queried metrics`);
  for (const name of [
    'cloudflared_tunnel_ha_connections',
    'warren_requests_total',
    'warren_backend_ready_endpoints',
    'warren_leader',
    'warren_route_warnings',
    'process_resident_memory_bytes',
  ]) {
    t.true(queried.has(name), `${name} is queried`);
  }
  const missing = [...queried].filter((name) => !exposed.has(name)).sort();
  t.deepEqual(missing, [], 'metrics a panel or an alert queries that /metrics does not expose');
  t.regex(metrics.body, /^cloudflared_tunnel_tunnel_register_success\{rpcName="registerConnection"\} 2$/m);
  t.regex(metrics.body, /^warren_leader 1$/m);
  t.regex(metrics.body, new RegExp(`^warren_backend_ready_endpoints\\{namespace="${appNamespace}",service="web"\\} 1$`, 'm'));

  const exit = await controller.child.stop(15_000);
  t.deepEqual(exit, { code: 0, signal: null });
  t.deepEqual(refusedRequests(controller.child), [], 'the API server refused nothing the controller asked');
});
