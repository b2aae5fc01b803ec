/**
 * The ConfigMaps BackendTLSPolicies name as CA bundles, against the real kube-apiserver: only ConfigMaps a policy
 * names are kept (the watch drops every other one), one named after it was listed is fetched before listeners hear
 * of the policy, changes to its data arrive through the watch, and it is dropped once no policy names it.
 */
import test from 'ava';
import { pino } from 'pino';
import { ClusterInformers } from '../../src/k8s/informers.js';
import type { WatchedKind } from '../../src/k8s/kinds.js';
import { useApiServer, adminClients } from '../support/apiserver.js';
import { eventually } from '../support/controller.js';
import { installGatewayCrds } from '../gateway/crds.js';

const server = useApiServer(test);
const POLICIES = '/apis/gateway.networking.k8s.io/v1';

test('only ConfigMaps a BackendTLSPolicy names are cached; a newly named one is there before the policy change is told', async (t) => {
  await installGatewayCrds(server().adminClient());
  const admin = adminClients(server());
  const ns = await server().createNamespace('cm-refs');
  const cm = (name: string, value: string) => admin.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name, namespace: ns }, data: { 'ca.crt': value } } });
  await cm('named', 'one');
  await cm('unrelated', 'x');
  const policy = (name: string, configMap: string) =>
    server()
      .adminClient()
      .post(`${POLICIES}/namespaces/${ns}/backendtlspolicies`, {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'BackendTLSPolicy',
        metadata: { name, namespace: ns },
        spec: {
          targetRefs: [{ group: '', kind: 'Service', name: 'svc' }],
          validation: { hostname: 'a.internal', caCertificateRefs: [{ group: '', kind: 'ConfigMap', name: configMap }] },
        },
      });
  await policy('first', 'named');

  const informers = new ClusterInformers({
    client: server().adminClient(),
    namespaces: [ns],
    logger: pino({ level: 'silent' }),
    gatewayApi: true,
    backoffMs: { initial: 50, max: 500 },
  });
  const stop = new AbortController();
  const running = informers.start(stop.signal);
  t.teardown(async () => {
    stop.abort();
    await running;
  });
  await informers.waitForSync(AbortSignal.timeout(15_000));
  const cached = () => [...informers.objects('ConfigMap').keys()].sort();
  t.deepEqual(cached(), [`${ns}/named`], 'the named ConfigMap is there at the first sync, the other one is not');

  // A policy naming a ConfigMap that exists but was dropped by the watch: listeners hear of the policy only once
  // the ConfigMap is in the cache.
  await cm('later', 'two');
  const seenAtPolicyChange: string[][] = [];
  informers.onChange((kind: WatchedKind, changes) => {
    if (kind === 'BackendTLSPolicy' && changes.has(`${ns}/second`)) seenAtPolicyChange.push(cached());
  });
  await policy('second', 'later');
  await eventually('the second policy is told', () => seenAtPolicyChange.length > 0, 10_000);
  t.deepEqual(seenAtPolicyChange[0], [`${ns}/later`, `${ns}/named`]);

  // Data changes of a named ConfigMap arrive; an unrelated one stays out.
  await admin.core.replaceNamespacedConfigMap({ namespace: ns, name: 'later', body: { metadata: { name: 'later', namespace: ns }, data: { 'ca.crt': 'three' } } });
  await admin.core.replaceNamespacedConfigMap({ namespace: ns, name: 'unrelated', body: { metadata: { name: 'unrelated', namespace: ns }, data: { 'ca.crt': 'y' } } });
  await eventually(
    'the new data',
    () => (informers.objects('ConfigMap').get(`${ns}/later`) as { data?: Record<string, string> } | undefined)?.data?.['ca.crt'] === 'three',
    10_000,
  );
  t.deepEqual(cached(), [`${ns}/later`, `${ns}/named`]);

  // No policy names it any more: dropped.
  await server().adminClient().delete(`${POLICIES}/namespaces/${ns}/backendtlspolicies/second`);
  await eventually('the ConfigMap dropped', () => !informers.objects('ConfigMap').has(`${ns}/later`), 10_000);
  t.deepEqual(cached(), [`${ns}/named`]);
});
