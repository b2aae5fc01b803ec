/**
 * The BackendTLSPolicy status writer against a real apiserver, with a cache frozen at one moment: Warren's
 * ancestor entries are written next to other controllers' ones, and a write that conflicts with a newer object is
 * decided again on the live object (its generation, its status) instead of waiting for the cache.
 */
import test from 'ava';
import type { KubernetesObject } from '@kubernetes/client-node';
import pino from 'pino';
import { createTestCa } from '../../src/edge-simulator/certs.js';
import type { PolicyAncestorStatus } from '../../src/gateway/types.js';
import { BackendTLSPolicyStatusWriter } from '../../src/reconcile/backend-tls-status.js';
import { useApiServer } from '../support/apiserver.js';
import { eventually } from '../support/controller.js';
import { installGatewayCrds } from '../gateway/crds.js';
import { gatewaySnapshot } from '../gateway/support.js';

const server = useApiServer(test);
const GROUP = 'gateway.networking.k8s.io';
const V1 = `/apis/${GROUP}/v1`;
const ca = createTestCa('Status Test CA');

interface Policy extends KubernetesObject {
  status?: { ancestors?: PolicyAncestorStatus[] };
}

test.before(async () => {
  await installGatewayCrds(server().adminClient());
});

test('status is written next to other controllers entries; a conflicting write is made against the live object', async (t) => {
  const api = server().adminClient();
  const ns = await server().createNamespace('policy-status');
  const post = <T extends KubernetesObject>(path: string, body: Record<string, unknown>) => api.post<T>(path, body);
  const created: KubernetesObject[] = [
    await post(`${V1}/gatewayclasses`, {
      apiVersion: `${GROUP}/v1`,
      kind: 'GatewayClass',
      metadata: { name: `c-${ns}` },
      spec: { controllerName: 'warren.dev/gateway-controller' },
    }),
    await post(`${V1}/namespaces/${ns}/gateways`, {
      apiVersion: `${GROUP}/v1`,
      kind: 'Gateway',
      metadata: { name: 'gw', namespace: ns },
      spec: { gatewayClassName: `c-${ns}`, listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] },
    }),
    await post(`${V1}/namespaces/${ns}/httproutes`, {
      apiVersion: `${GROUP}/v1`,
      kind: 'HTTPRoute',
      metadata: { name: 'r', namespace: ns },
      spec: { parentRefs: [{ name: 'gw' }], rules: [{ backendRefs: [{ name: 'secure', port: 443 }] }] },
    }),
    await post(`/api/v1/namespaces/${ns}/services`, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'secure', namespace: ns },
      spec: { ports: [{ name: 'https', port: 443 }] },
    }),
  ];
  const cm = await post<KubernetesObject>(`/api/v1/namespaces/${ns}/configmaps`, {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'ca', namespace: ns },
    data: { 'ca.crt': ca.certPem },
  });
  const policyPath = `${V1}/namespaces/${ns}/backendtlspolicies/p`;
  const policy = await post<Policy>(`${V1}/namespaces/${ns}/backendtlspolicies`, {
    apiVersion: `${GROUP}/v1`,
    kind: 'BackendTLSPolicy',
    metadata: { name: 'p', namespace: ns },
    spec: {
      targetRefs: [{ group: '', kind: 'Service', name: 'secure' }],
      validation: { hostname: 'secure.internal', caCertificateRefs: [{ group: '', kind: 'ConfigMap', name: 'ca' }] },
    },
  });
  // Another controller's entry, which Warren must keep.
  const theirs: PolicyAncestorStatus = {
    ancestorRef: { group: GROUP, kind: 'Gateway', namespace: ns, name: 'elsewhere' },
    controllerName: 'example.com/other-controller',
    conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: 'theirs', observedGeneration: 1, lastTransitionTime: '2026-01-01T00:00:00Z' }],
  };
  const withTheirs = await api.put<Policy>(`${policyPath}/status`, { ...policy, status: { ancestors: [theirs] } });
  // The cache saw the policy now; then someone changes its spec: the cached resourceVersion is stale.
  const cached = withTheirs;
  const changed = await api.patch<Policy>(policyPath, [{ op: 'replace', path: '/spec/validation/hostname', value: 'other.internal' }], 'json');
  t.true(changed.metadata!.generation! > cached.metadata!.generation!);

  const snapshot = gatewaySnapshot([...created, cached]);
  (snapshot.extra as Map<string, ReadonlyMap<string, KubernetesObject>>).set('ConfigMap', new Map([[`${ns}/ca`, cm]]));
  const writer = new BackendTLSPolicyStatusWriter({
    client: api,
    source: {
      snapshot: () => snapshot,
      served: () => ({ groupVersion: `${GROUP}/v1`, resource: 'backendtlspolicies' }),
      onChange: () => () => undefined,
      secrets: { setReferences: () => Promise.resolve() },
    },
    logger: pino({ level: 'silent' }),
  });
  const stop = new AbortController();
  const running = writer.start(stop.signal);
  t.teardown(async () => {
    stop.abort();
    await running.catch(() => undefined);
  });

  // Without the live read every retry would send the stale resourceVersion and conflict again, forever.
  const live = await eventually(
    'status written',
    async () => {
      const now = await api.get<Policy>(policyPath);
      return now.status?.ancestors?.some((a) => a.controllerName === 'warren.dev/gateway-controller') ? now : undefined;
    },
    10_000,
  );
  const ours = live.status!.ancestors!.filter((a) => a.controllerName === 'warren.dev/gateway-controller');
  t.deepEqual(
    ours.map((a) => a.ancestorRef),
    [{ group: GROUP, kind: 'Gateway', namespace: ns, name: 'gw' }],
  );
  t.deepEqual(ours[0]!.conditions.map((c) => `${c.type}=${c.status}/${c.reason}@${c.observedGeneration}`).sort(), [
    `Accepted=True/Accepted@${changed.metadata!.generation}`,
    `ResolvedRefs=True/ResolvedRefs@${changed.metadata!.generation}`,
  ]);
  t.deepEqual(
    live.status!.ancestors!.filter((a) => a.controllerName !== 'warren.dev/gateway-controller'),
    [theirs],
    'the other controller entry is kept',
  );
});
