/**
 * Watching the Gateway API kinds only while they are served: against the real kube-apiserver, informers started
 * before the CRDs exist sync without them (and say so), then pick the kinds up once the CRDs are installed, with
 * the objects in `snapshot().extra` and their keys in `takeChanges().extra`.
 */
import test from 'ava';
import { pino } from 'pino';
import { GATEWAY_KINDS } from '../../src/gateway/types.js';
import { ClusterInformers } from '../../src/k8s/informers.js';
import { LogCapture } from '../support/controller.js';
import { eventually } from '../support/controller.js';
import { useApiServer } from '../support/apiserver.js';
import { installGatewayCrds } from './crds.js';

const server = useApiServer(test);

test('Gateway API kinds are watched once their CRDs are served, found again without a restart', async (t) => {
  const logs = new LogCapture();
  const informers = new ClusterInformers({
    client: server().adminClient(),
    namespaces: [],
    logger: pino({ level: 'info' }, logs),
    gatewayApi: true,
    gatewayRediscoveryMs: 200,
    backoffMs: { initial: 50, max: 500 },
  });
  const stop = new AbortController();
  const running = informers.start(stop.signal);
  t.teardown(async () => {
    stop.abort();
    await running;
  });

  await informers.waitForSync(AbortSignal.timeout(15_000));
  t.true(informers.synced);
  t.deepEqual(informers.extraKinds, [], 'nothing served yet');
  t.is(informers.snapshot().extra, undefined);
  t.true(logs.text.includes('the Gateway API is not served'));

  await installGatewayCrds(server().adminClient());
  // CRDs become served one by one, so a discovery pass may find only some; later passes must find the rest.
  await eventually('every Gateway API kind is watched', () => GATEWAY_KINDS.every((k) => informers.extraKinds.includes(k)), 10_000);
  t.true(informers.extraKinds.includes('Namespace'), 'Namespaces come with them');
  // ReferenceGrant is served as v1 and v1beta1; which one depends on what discovery listed while the CRDs arrived.
  t.regex(informers.served('ReferenceGrant')?.groupVersion ?? '', /^gateway\.networking\.k8s\.io\/v1(beta1)?$/);
  t.is(informers.served('HTTPRoute')?.resource, 'httproutes');
  informers.takeChanges();

  const ns = await server().createNamespace('disc');
  await server()
    .adminClient()
    .post(`/apis/gateway.networking.k8s.io/v1/namespaces/${ns}/httproutes`, {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: 'late', namespace: ns },
      spec: { parentRefs: [{ name: 'gw' }] },
    });
  await eventually('the route in the snapshot', () => informers.snapshot().extra?.get('HTTPRoute')?.has(`${ns}/late`), 10_000);
  t.deepEqual([...(informers.takeChanges().extra?.get('HTTPRoute') ?? [])], [`${ns}/late`]);
  t.true(logs.text.includes('watching the Gateway API kinds the API server serves'));
});
