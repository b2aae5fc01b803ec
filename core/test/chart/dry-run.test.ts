/**
 * `helm install` needs a cluster; this is the closest thing without one: every object `helm template` renders is
 * sent to a real kube-apiserver (the test harness) as a server-side apply with `dryRun=All` and
 * `fieldValidation=Strict`. The API server runs its full validation and admission (including Pod Security
 * admission in `warn: restricted` mode on the release namespace) without persisting anything, so an unknown
 * field, a wrong type, a bad reference format or a pod spec below the restricted profile fails here.
 */
import test from 'ava';
import { Agent, request } from 'undici';
import { useApiServer, type TestApiServer } from '../support/apiserver.js';
import { render, type K8sObject } from './helm.js';

const server = useApiServer(test);
const NAMESPACE = 'warren-system';

interface ApiResponse {
  readonly status: number;
  readonly warnings: string[];
  readonly body: string;
}

let client: { agent: Agent; token: string; url: string } | undefined;
function api(s: TestApiServer) {
  if (!client) {
    const token = s.adminConfig().getCurrentUser()?.token;
    if (!token) throw new Error('the test apiserver gave no admin token');
    client = { agent: new Agent({ connect: { ca: s.caPem } }), token, url: s.url };
  }
  return client;
}

async function call(method: 'POST' | 'PATCH' | 'GET', path: string, body?: unknown, contentType = 'application/json'): Promise<ApiResponse> {
  const { agent, token, url } = api(server());
  const res = await request(`${url}${path}`, {
    method,
    dispatcher: agent,
    headers: { authorization: `Bearer ${token}`, 'content-type': contentType, accept: 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const warning = res.headers.warning;
  const warnings = warning === undefined ? [] : Array.isArray(warning) ? warning : [warning];
  return { status: res.statusCode, warnings, body: await res.body.text() };
}

/** URL path of an object (or of its collection when `collection` is set). */
function pathOf(object: K8sObject, plural: string, collection = false): string {
  const base = object.apiVersion === 'v1' ? '/api/v1' : `/apis/${object.apiVersion}`;
  const namespace = object.metadata.namespace ? `/namespaces/${object.metadata.namespace}` : '';
  return `${base}${namespace}/${plural}${collection ? '' : `/${object.metadata.name}`}`;
}

const PLURALS: Readonly<Record<string, string>> = {
  ServiceAccount: 'serviceaccounts',
  Secret: 'secrets',
  ConfigMap: 'configmaps',
  Service: 'services',
  Deployment: 'deployments',
  PodDisruptionBudget: 'poddisruptionbudgets',
  ClusterRole: 'clusterroles',
  ClusterRoleBinding: 'clusterrolebindings',
  Role: 'roles',
  RoleBinding: 'rolebindings',
  IngressClass: 'ingressclasses',
  ServiceMonitor: 'servicemonitors',
  PrometheusRule: 'prometheusrules',
  HorizontalPodAutoscaler: 'horizontalpodautoscalers',
  NetworkPolicy: 'networkpolicies',
  ValidatingAdmissionPolicy: 'validatingadmissionpolicies',
  ValidatingAdmissionPolicyBinding: 'validatingadmissionpolicybindings',
};

/** Server-side apply, dry run, strict field validation. */
function dryRunApply(object: K8sObject): Promise<ApiResponse> {
  const plural = PLURALS[object.kind];
  if (!plural) throw new Error(`the test does not know the resource of kind ${object.kind}; add it to PLURALS`);
  return call('PATCH', `${pathOf(object, plural)}?dryRun=All&fieldManager=warren-chart-test&fieldValidation=Strict&force=true`, object, 'application/apply-patch+yaml');
}

async function ensureCreated(object: K8sObject, plural: string): Promise<void> {
  const res = await call('POST', pathOf(object, plural, true), object);
  if (res.status !== 201 && res.status !== 409) throw new Error(`creating ${object.kind} ${object.metadata.name}: ${res.status} ${res.body}`);
}

test.before(async () => {
  // The release namespace warns on any pod template below the "restricted" Pod Security Standard.
  await ensureCreated(
    {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: NAMESPACE, labels: { 'pod-security.kubernetes.io/warn': 'restricted', 'pod-security.kubernetes.io/audit': 'restricted' } },
    },
    'namespaces',
  );
  // Minimal Prometheus Operator CRDs (the real ones are far larger; the apiVersion and kind are what matter).
  for (const [kind, plural] of [
    ['ServiceMonitor', 'servicemonitors'],
    ['PrometheusRule', 'prometheusrules'],
  ] as const) {
    await ensureCreated(
      {
        apiVersion: 'apiextensions.k8s.io/v1',
        kind: 'CustomResourceDefinition',
        metadata: { name: `${plural}.monitoring.coreos.com` },
        spec: {
          group: 'monitoring.coreos.com',
          scope: 'Namespaced',
          names: { plural, singular: kind.toLowerCase(), kind, listKind: `${kind}List` },
          versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
        },
      },
      'customresourcedefinitions',
    );
    const deadline = Date.now() + 30_000;
    for (;;) {
      const res = await call('GET', `/apis/monitoring.coreos.com/v1/namespaces/default/${plural}`);
      if (res.status === 200) break;
      if (Date.now() > deadline) throw new Error(`the ${kind} CRD was not served within 30 s: ${res.status} ${res.body}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
});

const matrix: Array<[string, object]> = [
  ['defaults', { cloudflare: { tunnelToken: 'dGVzdA' } }],
  [
    'every option on',
    {
      replicaCount: 3,
      cloudflare: { tunnelToken: 'dGVzdA', apiToken: 'api', tunnelCredentials: '{"AccountTag":"a"}', accountId: 'acct', tunnelName: 'prod' },
      plugins: Object.fromEntries(['tls', 'http2', 'keepalive', 'websocket', 'grpc', 'sse', 'dns', 'firewall'].map((n) => [n, { enabled: true }])),
      serviceMonitor: { create: true, labels: { release: 'prometheus' }, relabelings: [{ action: 'labeldrop', regex: 'pod' }] },
      podDisruptionBudget: { enabled: true, minAvailable: '50%' },
      ingressClass: { isDefaultClass: true },
      image: { digest: `sha256:${'a'.repeat(64)}` },
      imagePullSecrets: [{ name: 'regcred' }],
      priorityClassName: 'system-cluster-critical',
      nodeSelector: { 'kubernetes.io/os': 'linux' },
      tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'edge', effect: 'NoSchedule' }],
      affinity: {
        podAntiAffinity: {
          preferredDuringSchedulingIgnoredDuringExecution: [
            { weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: { 'app.kubernetes.io/name': 'warren' } } } },
          ],
        },
      },
      topologySpreadConstraints: [
        {
          maxSkew: 1,
          topologyKey: 'topology.kubernetes.io/zone',
          whenUnsatisfiable: 'ScheduleAnyway',
          labelSelector: { matchLabels: { 'app.kubernetes.io/name': 'warren' } },
        },
      ],
      extraEnv: [{ name: 'WARREN_PROXY__RETRIES', value: '1' }],
      extraVolumes: [{ name: 'edge-ca', configMap: { name: 'edge-ca' } }],
      extraVolumeMounts: [{ name: 'edge-ca', mountPath: '/etc/warren/edge-ca', readOnly: true }],
      podAnnotations: { 'example.com/team': 'edge' },
      commonLabels: { 'example.com/owner': 'platform' },
      serviceAccount: { annotations: { 'example.com/role': 'edge' } },
      service: { annotations: { 'example.com/scrape': 'true' } },
    },
  ],
  [
    'autoscaling, a network policy, namespaced RBAC, extensions and monitoring',
    {
      cloudflare: { tunnelToken: 'dGVzdA' },
      kubernetes: { namespaces: [NAMESPACE] },
      plugins: { tls: { enabled: false } },
      autoscaling: { enabled: true, minReplicas: 2, maxReplicas: 5, targetCPUUtilizationPercentage: 70, behavior: { scaleDown: { stabilizationWindowSeconds: 300 } } },
      networkPolicy: {
        enabled: true,
        metricsFrom: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }],
        egress: { enabled: true, extra: [{ to: [{ namespaceSelector: {} }] }] },
      },
      extraArgs: ['--log-level', 'debug'],
      envFrom: [{ configMapRef: { name: 'warren-env' } }],
      initContainers: [
        {
          name: 'wait',
          image: 'busybox',
          command: ['true'],
          securityContext: { allowPrivilegeEscalation: false, runAsNonRoot: true, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } },
        },
      ],
      extraContainers: [
        {
          name: 'sidecar',
          image: 'busybox',
          command: ['sleep', '3600'],
          securityContext: { allowPrivilegeEscalation: false, runAsNonRoot: true, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } },
        },
      ],
      extraObjects: [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: '{{ .Release.Name }}-extra', namespace: '{{ .Release.Namespace }}' }, data: { a: 'b' } }],
      livenessProbe: { enabled: false },
      startupProbe: { periodSeconds: 3 },
      minReadySeconds: 10,
      prometheusRule: { create: true, labels: { release: 'prometheus' } },
      grafanaDashboard: { create: true },
    },
  ],
  ['existing Secret, no IngressClass, one replica', { replicaCount: 1, ingressClass: { enabled: false }, cloudflare: { secretRef: { name: 'cf', tunnelTokenKey: 'token' } } }],
];

for (const [name, values] of matrix) {
  test(`every object rendered with ${name} passes the API server's validation and admission`, async (t) => {
    const out = await render(values);
    t.true(out.objects.length >= 8);
    for (const object of out.objects) {
      const res = await dryRunApply(object);
      t.true(res.status === 200 || res.status === 201, `${object.kind} ${object.metadata.name}: ${res.status} ${res.body}`);
      t.deepEqual(res.warnings, [], `${object.kind} ${object.metadata.name} drew warnings`);
    }
    // Nothing was persisted.
    const deployments = await call('GET', `/apis/apps/v1/namespaces/${NAMESPACE}/deployments`);
    t.deepEqual((JSON.parse(deployments.body) as { items: unknown[] }).items, []);
  });
}

test('the dry run is strict: an unknown field and a pod below the restricted profile are caught', async (t) => {
  const out = await render({ cloudflare: { tunnelToken: 'dGVzdA' }, securityContext: { privileged: true, allowPrivilegeEscalation: true } });
  const deployment = out.get('Deployment');
  const weak = await dryRunApply(deployment);
  t.is(weak.status, 201);
  t.true(
    weak.warnings.some((w) => /restricted/.test(w)),
    `warnings: ${weak.warnings.join(' | ')}`,
  );
  const typo = await dryRunApply({ ...deployment, spec: { ...(deployment.spec as object), replica: 2 } } as K8sObject);
  // Server-side apply refuses a field its schema does not declare, naming it.
  t.true(typo.status >= 400, typo.body);
  t.regex(typo.body, /\.spec\.replica: field not declared in schema/);
});
