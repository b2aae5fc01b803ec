/**
 * BackendTLSPolicy through the real controller process on a real apiserver, to real HTTPS origins on loopback
 * (edge simulator → tunnel → Warren → origin):
 *  - a ConfigMap CA (`ca.crt`) verifies the origin's certificate for `validation.hostname`; a ConfigMap that is
 *    missing, lacks the key or holds no certificate answers 500 with a Warning on the HTTPRoute; changes to the
 *    ConfigMap's data reach new upstream connections without a restart;
 *  - the leader writes the policy's `status.ancestors` (the Gateway, controllerName, Accepted and ResolvedRefs with
 *    the spec's reasons, the policy's generation), including InvalidKind and the conflict rule.
 */
import test from 'ava';
import type { KubernetesObject } from '@kubernetes/client-node';
import { createTestCa, issueCert } from '../../src/edge-simulator/certs.js';
import type { EdgeSimulator } from '../../src/edge-simulator/index.js';
import type { Condition, PolicyAncestorStatus } from '../../src/gateway/types.js';
import { startOrigin, type TestOrigin } from '../../src/proxy/testing.js';
import { adminClients, useApiServer, type AdminClients } from '../support/apiserver.js';
import { endpointSlice, service, testHost } from '../support/k8s-objects.js';
import { installGatewayCrds } from '../gateway/crds.js';
import { waitUntil } from './support/children.js';
import { eventsFor } from './support/cluster.js';
import { sendUntil } from './support/http.js';
import { controllerKubeconfig, startEdge, startWarren, type WarrenProcess } from './support/warren.js';

const server = useApiServer(test);
const GROUP = '/apis/gateway.networking.k8s.io/v1';
let admin: AdminClients;
let edge: EdgeSimulator;
let warren: WarrenProcess;
let origin: TestOrigin;
let ns: string;
/** The origin's certificate comes from `ca`; `other` is a CA that did not sign it. */
const ca = createTestCa('Backend TLS Policy CA');
const other = createTestCa('Some Other CA');
const cert = issueCert(ca, { dns: ['secure.internal'] });

test.serial.before(async () => {
  admin = adminClients(server());
  await installGatewayCrds(server().adminClient());
  edge = await startEdge();
  origin = await startOrigin({ host: testHost(23), tls: { cert: cert.certPem, key: cert.keyPem } });
  warren = await startWarren({ podName: 'warren-backend-tls', kubeconfigFile: await controllerKubeconfig(server()), edge });
  ns = await server().createNamespace('backend-tls');
  await admin.core.createNamespacedService({ namespace: ns, body: service(ns, 'secure', [{ name: 'https', port: 443, targetPort: origin.port }]) });
  await admin.discovery.createNamespacedEndpointSlice({ namespace: ns, body: endpointSlice(ns, 'secure', [origin.host], origin.port, { portName: 'https' }) });
  await gatewayApi('gatewayclasses', { kind: 'GatewayClass', metadata: { name: `btls-${ns}` }, spec: { controllerName: 'warren.dev/gateway-controller' } }, false);
  await gatewayApi('gateways', {
    kind: 'Gateway',
    metadata: { name: 'gw', namespace: ns },
    spec: { gatewayClassName: `btls-${ns}`, listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] },
  });
  await gatewayApi('httproutes', {
    kind: 'HTTPRoute',
    metadata: { name: 'r', namespace: ns },
    spec: { parentRefs: [{ name: 'gw' }], hostnames: ['secure.btls.example'], rules: [{ backendRefs: [{ name: 'secure', port: 443 }] }] },
  });
});

test.afterEach.always((t) => {
  if (!t.passed) t.log(warren.child.tail(60));
});

test.after.always(async () => {
  await warren?.stop();
  await edge?.close();
  await origin?.close();
});

function gatewayApi(resource: string, body: Record<string, unknown>, namespaced = true): Promise<KubernetesObject> {
  return server()
    .adminClient()
    .post<KubernetesObject>(`${GROUP}${namespaced ? `/namespaces/${ns}` : ''}/${resource}`, { apiVersion: 'gateway.networking.k8s.io/v1', ...body });
}

async function putConfigMap(name: string, data: Record<string, string>): Promise<void> {
  const body = { metadata: { name, namespace: ns }, data };
  try {
    await admin.core.createNamespacedConfigMap({ namespace: ns, body });
  } catch (err) {
    if ((err as { code?: number }).code !== 409) throw err;
    await admin.core.replaceNamespacedConfigMap({ namespace: ns, name, body });
  }
}

interface Policy extends KubernetesObject {
  status?: { ancestors?: PolicyAncestorStatus[] };
}

const getPolicy = (name: string) => server().adminClient().get<Policy>(`${GROUP}/namespaces/${ns}/backendtlspolicies/${name}`);

/** Warren's conditions on the policy for Gateway `gw`, as `Type=Status/Reason`, once they are `expected`. */
async function policyConditions(name: string, expected: string[], what: string): Promise<{ policy: Policy; conditions: Condition[] }> {
  let last = '';
  let found: { policy: Policy; conditions: Condition[] } | undefined;
  await waitUntil(
    what,
    async () => {
      const policy = await getPolicy(name);
      const ours = (policy.status?.ancestors ?? []).filter((a) => a.controllerName === 'warren.dev/gateway-controller' && a.ancestorRef.name === 'gw');
      const shown = ours.flatMap((a) => a.conditions.map((c) => `${c.type}=${c.status}/${c.reason}`)).sort();
      last = shown.join(',');
      if (ours.length === 1 && JSON.stringify(shown) === JSON.stringify([...expected].sort())) found = { policy, conditions: ours[0]!.conditions };
      return found !== undefined;
    },
    20_000,
  ).catch((err: Error) => {
    throw new Error(`${err.message} (last seen: ${last || 'none'})`);
  });
  return found!;
}

const request = (accept: (status: number) => boolean, what: string) => sendUntil(edge.eyeballUrl, '/', { host: 'secure.btls.example' }, (a) => accept(a.status), 20_000, what);

test.serial('a ConfigMap CA verifies the origin, its data changes apply without a restart, and the policy status follows', async (t) => {
  await gatewayApi('backendtlspolicies', {
    kind: 'BackendTLSPolicy',
    metadata: { name: 'secure', namespace: ns },
    spec: {
      targetRefs: [{ group: '', kind: 'Service', name: 'secure' }],
      validation: { hostname: 'secure.internal', caCertificateRefs: [{ group: '', kind: 'ConfigMap', name: 'upstream-ca' }] },
    },
  });
  // The ConfigMap does not exist yet: 500, a Warning on the HTTPRoute, and the policy says why.
  t.is((await request((s) => s === 500, 'a 500 while the CA ConfigMap is missing')).status, 500);
  let warning: string | undefined;
  await waitUntil(
    'a Warning naming the missing ConfigMap',
    async () => !!(warning = (await eventsFor(admin, ns, 'r')).find((e) => e.type === 'Warning' && e.reason === 'InvalidCACertificateRef')?.message),
    15_000,
  );
  t.regex(warning!, new RegExp(`ConfigMap ${ns}/upstream-ca not found`));
  const missing = await policyConditions('secure', ['Accepted=False/NoValidCACertificate', 'ResolvedRefs=False/InvalidCACertificateRef'], 'status: no valid CA');
  t.true(missing.conditions.every((c) => c.observedGeneration === missing.policy.metadata?.generation));
  const ancestor = missing.policy.status!.ancestors!.find((a) => a.ancestorRef.name === 'gw')!;
  t.deepEqual(ancestor.ancestorRef, { group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: ns, name: 'gw' });

  // A CA that did not sign the origin's certificate: the policy is fine, the handshake is not.
  await putConfigMap('upstream-ca', { 'ca.crt': other.certPem });
  await policyConditions('secure', ['Accepted=True/Accepted', 'ResolvedRefs=True/ResolvedRefs'], 'status: accepted with a CA');
  const refused = await request((s) => s !== 500 && s !== 200, 'a failure of the TLS handshake (wrong CA)');
  t.is(refused.status, 502);

  // The right CA, by a change of the ConfigMap's data only: served, no restart.
  await putConfigMap('upstream-ca', { 'ca.crt': ca.certPem });
  const served = await request((s) => s === 200, 'a 200 once the ConfigMap holds the CA that signed the origin');
  t.regex(served.body, new RegExp(origin.key.replace(/[.[\]]/g, '\\$&')));

  // The key emptied: 500 again, and the status says so.
  await putConfigMap('upstream-ca', { 'ca.crt': '' });
  t.is((await request((s) => s === 500, 'a 500 once ca.crt is empty')).status, 500);
  await policyConditions('secure', ['Accepted=False/NoValidCACertificate', 'ResolvedRefs=False/InvalidCACertificateRef'], 'status: empty ca.crt');
  await putConfigMap('upstream-ca', { 'ca.crt': ca.certPem });
  await request((s) => s === 200, 'served again');

  // A new generation: the conditions observe it.
  const before = await getPolicy('secure');
  await server()
    .adminClient()
    .patch(`${GROUP}/namespaces/${ns}/backendtlspolicies/secure`, [{ op: 'replace', path: '/spec/validation/hostname', value: 'wrong.internal' }], 'json');
  await request((s) => s === 502, 'a 502 for a hostname the certificate does not carry');
  await waitUntil(
    'conditions observing the new generation',
    async () => {
      const p = await getPolicy('secure');
      const a = p.status?.ancestors?.find((x) => x.ancestorRef.name === 'gw');
      return !!a && p.metadata!.generation! > before.metadata!.generation! && a.conditions.every((c) => c.observedGeneration === p.metadata!.generation);
    },
    20_000,
  );
  t.pass();
});

test.serial('a CA reference of an unknown kind, and a policy that loses a conflict, say so in status', async (t) => {
  await admin.core.createNamespacedService({ namespace: ns, body: service(ns, 'odd', [{ name: 'https', port: 443, targetPort: origin.port }]) });
  await gatewayApi('httproutes', {
    kind: 'HTTPRoute',
    metadata: { name: 'odd', namespace: ns },
    spec: { parentRefs: [{ name: 'gw' }], hostnames: ['odd.btls.example'], rules: [{ backendRefs: [{ name: 'odd', port: 443 }] }] },
  });
  await gatewayApi('backendtlspolicies', {
    kind: 'BackendTLSPolicy',
    metadata: { name: 'odd', namespace: ns },
    spec: {
      targetRefs: [{ group: '', kind: 'Service', name: 'odd' }],
      validation: { hostname: 'secure.internal', caCertificateRefs: [{ group: 'invalid.io', kind: 'InvalidKind', name: 'x' }] },
    },
  });
  await policyConditions('odd', ['Accepted=False/NoValidCACertificate', 'ResolvedRefs=False/InvalidKind'], 'status: InvalidKind');
  const answer = await sendUntil(edge.eyeballUrl, '/', { host: 'odd.btls.example' }, (a) => a.status === 500, 20_000, 'a 500 for the unknown kind');
  t.is(answer.status, 500);

  // A second policy for the same Service (and no sectionName), created later: Conflicted; the first stays.
  await gatewayApi('backendtlspolicies', {
    kind: 'BackendTLSPolicy',
    metadata: { name: 'secure-later', namespace: ns },
    spec: {
      targetRefs: [{ group: '', kind: 'Service', name: 'secure' }],
      validation: { hostname: 'secure.internal', caCertificateRefs: [{ group: '', kind: 'ConfigMap', name: 'upstream-ca' }] },
    },
  });
  const conflicted = await policyConditions('secure-later', ['Accepted=False/Conflicted', 'ResolvedRefs=True/ResolvedRefs'], 'status: Conflicted');
  t.regex(conflicted.conditions.find((c) => c.type === 'Accepted')!.message, new RegExp(`BackendTLSPolicy ${ns}/secure also targets Service ${ns}/secure`));
  await policyConditions('secure', ['Accepted=True/Accepted', 'ResolvedRefs=True/ResolvedRefs'], 'the older policy stays accepted');
});
