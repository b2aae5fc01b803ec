/**
 * The Gateway API status writer against a real apiserver, with a cache frozen at one moment: when another
 * controller wrote its own entry into an HTTPRoute's status after the cache saw the route, Warren's write conflicts
 * (stale resourceVersion) and must be decided again on the live route, keeping the other controller's entry,
 * instead of retrying the stale object forever.
 */
import test from 'ava';
import type { KubernetesObject } from '@kubernetes/client-node';
import pino from 'pino';
import type { HTTPRoute, RouteParentStatus } from '../../src/gateway/types.js';
import { GatewayStatusWriter } from '../../src/reconcile/gateway-status.js';
import { TunnelStateStore } from '../../src/state/tunnel.js';
import { useApiServer } from '../support/apiserver.js';
import { eventually } from '../support/controller.js';
import { installGatewayCrds } from '../gateway/crds.js';
import { gatewaySnapshot } from '../gateway/support.js';

const server = useApiServer(test);
const GROUP = 'gateway.networking.k8s.io';
const V1 = `/apis/${GROUP}/v1`;
const RESOURCES: Record<string, string> = { GatewayClass: 'gatewayclasses', Gateway: 'gateways', HTTPRoute: 'httproutes', GRPCRoute: 'grpcroutes' };

test.before(async () => {
  await installGatewayCrds(server().adminClient());
});

test('a status write that conflicts with a newer route is made against the live route, keeping the other controller entry', async (t) => {
  const api = server().adminClient();
  const ns = await server().createNamespace('gw-status-conflict');
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
    await post(`/api/v1/namespaces/${ns}/services`, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web', namespace: ns },
      spec: { ports: [{ name: 'http', port: 80 }] },
    }),
  ];
  const routePath = `${V1}/namespaces/${ns}/httproutes/r`;
  const cached = await post<HTTPRoute>(`${V1}/namespaces/${ns}/httproutes`, {
    apiVersion: `${GROUP}/v1`,
    kind: 'HTTPRoute',
    metadata: { name: 'r', namespace: ns },
    spec: { parentRefs: [{ name: 'gw' }, { name: 'elsewhere' }], rules: [{ backendRefs: [{ name: 'web', port: 80 }] }] },
  });
  // After the cache saw the route, another controller reports on its own Gateway: the cached resourceVersion is stale.
  const theirs: RouteParentStatus = {
    parentRef: { group: GROUP, kind: 'Gateway', namespace: ns, name: 'elsewhere' },
    controllerName: 'example.com/other-controller',
    conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: 'theirs', observedGeneration: 1, lastTransitionTime: '2026-01-01T00:00:00Z' }],
  };
  const changed = await api.put<HTTPRoute>(`${routePath}/status`, { ...cached, status: { parents: [theirs] } });
  t.not(changed.metadata!.resourceVersion, cached.metadata!.resourceVersion);

  const snapshot = gatewaySnapshot([...created, cached]);
  const writer = new GatewayStatusWriter({
    client: api,
    source: {
      snapshot: () => snapshot,
      served: (kind) => (RESOURCES[kind] ? { groupVersion: `${GROUP}/v1`, resource: RESOURCES[kind] } : undefined),
      onChange: () => () => undefined,
      secrets: { setReferences: () => Promise.resolve() },
    },
    publishAddress: '198.18.0.40',
    tunnel: new TunnelStateStore(),
    logger: pino({ level: 'silent' }),
  });
  const stop = new AbortController();
  const running = writer.start(stop.signal);
  t.teardown(async () => {
    stop.abort();
    await running.catch(() => undefined);
  });

  // Without the live read every retry would send the stale resourceVersion and conflict again.
  const live = await eventually(
    'route status written',
    async () => {
      const now = await api.get<HTTPRoute>(routePath);
      return now.status?.parents?.some((p) => p.controllerName === 'warren.dev/gateway-controller') ? now : undefined;
    },
    10_000,
  );
  const ours = live.status!.parents!.filter((p) => p.controllerName === 'warren.dev/gateway-controller');
  t.deepEqual(
    ours.map((p) => p.parentRef.name),
    ['gw'],
  );
  t.true(ours[0]!.conditions.some((c) => c.type === 'Accepted' && c.status === 'True'));
  t.deepEqual(
    live.status!.parents!.filter((p) => p.controllerName !== 'warren.dev/gateway-controller'),
    [theirs],
    'the other controller entry is kept',
  );
});
