/**
 * Gateway API status against the real kube-apiserver with the standard CRDs installed: the controller (with only
 * the rights of deploy/rbac.yaml) discovers the Gateway API kinds, and its leader writes GatewayClass, Gateway and
 * HTTPRoute status with the conditions, reasons and observedGeneration values the conformance suite waits for.
 */
import test from 'ava';
import type { KubernetesObject } from '@kubernetes/client-node';
import { SUPPORTED_FEATURES, type Condition, type Gateway, type GatewayClass, type HTTPRoute } from '../../src/gateway/types.js';
import { adminClients, useApiServer } from '../support/apiserver.js';
import { eventually, startController, type TestController } from '../support/controller.js';
import { createBackend, testHost } from '../support/k8s-objects.js';
import { installGatewayCrds } from './crds.js';

const server = useApiServer(test);
let controller: TestController;
const GROUP = '/apis/gateway.networking.k8s.io/v1';

test.before(async () => {
  await installGatewayCrds(server().adminClient());
  controller = await startController(server(), { tunnelId: 'tunnel-gw' });
});
test.after.always(async () => {
  await controller?.stop();
});

const shown = (conditions: readonly Condition[] | undefined, generation: number | undefined) =>
  (conditions ?? []).map((c) => `${c.type}=${c.status}/${c.reason}${c.observedGeneration === generation ? '' : ` (generation ${c.observedGeneration})`}`).sort();

test('the leader writes GatewayClass, Gateway and HTTPRoute status; unchanged status is not rewritten', async (t) => {
  const api = server().adminClient();
  const admin = adminClients(server());
  const ns = await server().createNamespace('gateway');
  await createBackend(admin, ns, 'web', [testHost(2)]);
  const create = <T extends KubernetesObject>(resource: string, body: T, namespaced = true) =>
    api.post<T>(`${GROUP}${namespaced ? `/namespaces/${ns}` : ''}/${resource}`, body);
  const className = `warren-${ns}`;
  await create<GatewayClass>(
    'gatewayclasses',
    { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: className }, spec: { controllerName: 'warren.dev/gateway-controller' } },
    false,
  );
  await create<Gateway>('gateways', {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name: 'edge', namespace: ns },
    spec: {
      gatewayClassName: className,
      listeners: [
        { name: 'http', port: 80, protocol: 'HTTP' },
        { name: 'udp', port: 53, protocol: 'UDP' },
      ],
    },
  });
  const route = (name: string, parentRef: Record<string, unknown>, backend: string): HTTPRoute => ({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name, namespace: ns },
    spec: { parentRefs: [{ name: 'edge', ...parentRef }], hostnames: [`${name}.example.com`], rules: [{ backendRefs: [{ name: backend, port: 80 }] }] },
  });
  await create('httproutes', route('good', { sectionName: 'http' }, 'web'));
  await create('httproutes', route('missing', {}, 'nowhere'));
  await create('httproutes', route('stray', { sectionName: 'nope' }, 'web'));

  const cls = await eventually('GatewayClass status', async () => {
    const c = await api.get<GatewayClass>(`${GROUP}/gatewayclasses/${className}`);
    return c.status?.conditions?.length ? c : undefined;
  });
  t.deepEqual(shown(cls.status?.conditions, cls.metadata?.generation), ['Accepted=True/Accepted', 'SupportedVersion=True/SupportedVersion']);
  t.deepEqual(
    cls.status?.supportedFeatures?.map((f) => f.name),
    [...SUPPORTED_FEATURES].sort(),
  );
  t.true(
    ['GRPCRoute', 'Gateway', 'HTTPRoute', 'ReferenceGrant', 'HTTPRouteMethodMatching', 'GatewayPort8080'].every((f) =>
      cls.status?.supportedFeatures?.some((s) => s.name === f),
    ),
    'the core features and the declared extended ones',
  );

  const gw = await eventually('Gateway status with two attached routes', async () => {
    const g = await api.get<Gateway>(`${GROUP}/namespaces/${ns}/gateways/edge`);
    return g.status?.listeners?.find((l) => l.name === 'http')?.attachedRoutes === 2 ? g : undefined;
  });
  t.deepEqual(shown(gw.status?.conditions, gw.metadata?.generation), ['Accepted=True/ListenersNotValid', 'Programmed=True/Programmed']);
  t.deepEqual(gw.status?.addresses, [{ type: 'Hostname', value: 'tunnel-gw.cfargotunnel.com' }]);
  const http = gw.status?.listeners?.find((l) => l.name === 'http');
  t.deepEqual(shown(http?.conditions, gw.metadata?.generation), [
    'Accepted=True/Accepted',
    'Conflicted=False/NoConflicts',
    'Programmed=True/Programmed',
    'ResolvedRefs=True/ResolvedRefs',
  ]);
  t.deepEqual(
    http?.supportedKinds.map((k) => k.kind),
    ['HTTPRoute', 'GRPCRoute'],
  );
  const udp = gw.status?.listeners?.find((l) => l.name === 'udp');
  t.deepEqual(shown(udp?.conditions, gw.metadata?.generation), [
    'Accepted=False/UnsupportedProtocol',
    'Conflicted=False/NoConflicts',
    'Programmed=False/Invalid',
    'ResolvedRefs=True/ResolvedRefs',
  ]);

  const parents = async (name: string) => {
    const r = await api.get<HTTPRoute>(`${GROUP}/namespaces/${ns}/httproutes/${name}`);
    return { generation: r.metadata?.generation, resourceVersion: r.metadata?.resourceVersion, parents: r.status?.parents ?? [] };
  };
  const expectParent = async (name: string, want: string[]) => {
    const got = await eventually(`status of HTTPRoute ${name}`, async () => {
      const p = await parents(name);
      return p.parents.length === 1 && shown(p.parents[0]!.conditions, p.generation).join() === [...want].sort().join() ? p : undefined;
    });
    t.is(got.parents[0]!.controllerName, 'warren.dev/gateway-controller');
    t.is(got.parents[0]!.parentRef.name, 'edge');
    return got;
  };
  const good = await expectParent('good', ['Accepted=True/Accepted', 'ResolvedRefs=True/ResolvedRefs']);
  await expectParent('missing', ['Accepted=True/Accepted', 'ResolvedRefs=False/BackendNotFound']);
  await expectParent('stray', ['Accepted=False/NoMatchingParent', 'ResolvedRefs=True/ResolvedRefs']);

  // Steady state costs no writes.
  await controller.cp.gatewayStatus!.idle();
  const again = await parents('good');
  t.is(again.resourceVersion, good.resourceVersion, 'no status write without a difference');

  // Another controller's entry in status.parents is left alone.
  const withOther = await api.get<HTTPRoute>(`${GROUP}/namespaces/${ns}/httproutes/good`);
  const ours = withOther.status!.parents!;
  const other = {
    parentRef: { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'elsewhere' },
    controllerName: 'example.com/other',
    conditions: [{ type: 'Accepted', status: 'True' as const, reason: 'Accepted', message: 'theirs', observedGeneration: 1, lastTransitionTime: '2026-01-01T00:00:00Z' }],
  };
  withOther.status!.parents = [other, ...ours];
  await api.put(`${GROUP}/namespaces/${ns}/httproutes/good/status`, withOther);

  // A spec change bumps the generation; every condition follows it, and keeps its lastTransitionTime.
  const current = await api.get<HTTPRoute>(`${GROUP}/namespaces/${ns}/httproutes/good`);
  current.spec!.hostnames = ['good.example.com', 'also.example.com'];
  await api.put(`${GROUP}/namespaces/${ns}/httproutes/good`, current);
  const bumped = await eventually('conditions at generation 2', async () => {
    const r = await api.get<HTTPRoute>(`${GROUP}/namespaces/${ns}/httproutes/good`);
    const mine = r.status?.parents?.find((p) => p.controllerName === 'warren.dev/gateway-controller');
    return mine?.conditions.every((c) => c.observedGeneration === 2) ? r : undefined;
  });
  t.deepEqual(
    bumped.status?.parents?.map((p) => p.controllerName),
    ['example.com/other', 'warren.dev/gateway-controller'],
  );
  t.is(bumped.status?.parents?.[0]?.conditions[0]?.message, 'theirs');
  const before = Object.fromEntries(ours[0]!.conditions.map((c) => [c.type, c.lastTransitionTime]));
  for (const c of bumped.status!.parents![1]!.conditions) t.is(c.lastTransitionTime, before[c.type], `${c.type} did not transition`);
  t.true(controller.cp.informers.extraKinds.includes('HTTPRoute'));
  t.true(controller.logs.text.includes('watching the Gateway API kinds the API server serves'));
});
