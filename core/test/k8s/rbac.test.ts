import { AuthorizationV1Api, NetworkingV1Api, CoreV1Api } from '@kubernetes/client-node';
import test from 'ava';
import { adminClients, CONTROLLER_NAMESPACE, loadRbacObjects, useApiServer } from '../support/apiserver.js';

// Every other control-plane test runs the controller with the token minted here, so a missing rule fails those
// tests; this file checks the other direction: nothing beyond what the controller needs is granted.
const server = useApiServer(test);

interface Rule {
  apiGroups?: string[];
  resources?: string[];
  verbs?: string[];
  resourceNames?: string[];
}

test('deploy/rbac.yaml grants exactly the documented rules, without wildcards', (t) => {
  const objects = loadRbacObjects() as Array<{ kind: string; metadata: { name: string; namespace?: string }; rules?: Rule[] }>;
  t.deepEqual(objects.map((o) => o.kind).sort(), ['ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'ServiceAccount']);
  const grants = new Set<string>();
  for (const o of objects) {
    for (const r of o.rules ?? []) {
      for (const g of r.apiGroups ?? [])
        for (const res of r.resources ?? [])
          for (const v of r.verbs ?? []) {
            t.not(g, '*');
            t.not(res, '*');
            t.not(v, '*');
            grants.add(`${o.kind}:${g || 'core'}/${res}:${v}${r.resourceNames ? `[${r.resourceNames.join(',')}]` : ''}`);
          }
    }
  }
  const expected = [
    'ClusterRole:core/configmaps:get',
    'ClusterRole:core/configmaps:list',
    'ClusterRole:core/configmaps:watch',
    'ClusterRole:core/events:create',
    'ClusterRole:core/events:patch',
    'ClusterRole:core/namespaces:get',
    'ClusterRole:core/namespaces:list',
    'ClusterRole:core/namespaces:watch',
    'ClusterRole:core/secrets:get',
    'ClusterRole:core/secrets:list',
    'ClusterRole:core/secrets:watch',
    'ClusterRole:core/services:get',
    'ClusterRole:core/services:list',
    'ClusterRole:core/services:watch',
    'ClusterRole:discovery.k8s.io/endpointslices:get',
    'ClusterRole:discovery.k8s.io/endpointslices:list',
    'ClusterRole:discovery.k8s.io/endpointslices:watch',
    ...['backendtlspolicies', 'gatewayclasses', 'gateways', 'grpcroutes', 'httproutes', 'referencegrants'].flatMap((r) =>
      ['get', 'list', 'watch'].map((v) => `ClusterRole:gateway.networking.k8s.io/${r}:${v}`),
    ),
    ...['backendtlspolicies', 'gatewayclasses', 'gateways', 'grpcroutes', 'httproutes'].map((r) => `ClusterRole:gateway.networking.k8s.io/${r}/status:update`),
    'ClusterRole:networking.k8s.io/ingressclasses:get',
    'ClusterRole:networking.k8s.io/ingressclasses:list',
    'ClusterRole:networking.k8s.io/ingressclasses:watch',
    'ClusterRole:networking.k8s.io/ingresses/status:update',
    'ClusterRole:networking.k8s.io/ingresses:get',
    'ClusterRole:networking.k8s.io/ingresses:list',
    'ClusterRole:networking.k8s.io/ingresses:patch',
    'ClusterRole:networking.k8s.io/ingresses:update',
    'ClusterRole:networking.k8s.io/ingresses:watch',
    'Role:coordination.k8s.io/leases:create',
    'Role:coordination.k8s.io/leases:get[warren-leader]',
    'Role:coordination.k8s.io/leases:update[warren-leader]',
    'Role:coordination.k8s.io/leases:watch[warren-leader]',
  ];
  t.deepEqual([...grants].sort(), expected.sort());
});

test('the controller ServiceAccount may do what Warren needs and nothing else', async (t) => {
  const token = await server().controllerToken();
  const kc = server().configForToken(token);
  const authz = kc.makeApiClient(AuthorizationV1Api);
  const ns = await server().createNamespace('rbac');
  const can = async (verb: string, group: string, resource: string, opts: { namespace?: string; name?: string; subresource?: string } = {}) => {
    const review = await authz.createSelfSubjectAccessReview({
      body: { spec: { resourceAttributes: { verb, group, resource, namespace: opts.namespace, name: opts.name, subresource: opts.subresource } } },
    });
    return review.status?.allowed === true;
  };
  const allowed: Array<[string, string, string, { namespace?: string; name?: string; subresource?: string }?]> = [
    ['list', 'networking.k8s.io', 'ingresses'],
    ['watch', 'networking.k8s.io', 'ingresses'],
    ['patch', 'networking.k8s.io', 'ingresses', { namespace: ns, name: 'x' }],
    ['update', 'networking.k8s.io', 'ingresses', { namespace: ns, name: 'x', subresource: 'status' }],
    ['watch', 'networking.k8s.io', 'ingressclasses'],
    ['watch', '', 'services'],
    ['watch', 'discovery.k8s.io', 'endpointslices'],
    ['get', '', 'secrets', { namespace: ns, name: 'ca' }],
    ['watch', '', 'secrets'],
    ['create', '', 'events', { namespace: ns }],
    ['patch', '', 'events', { namespace: ns, name: 'e' }],
    ['create', 'coordination.k8s.io', 'leases', { namespace: CONTROLLER_NAMESPACE }],
    ['update', 'coordination.k8s.io', 'leases', { namespace: CONTROLLER_NAMESPACE, name: 'warren-leader' }],
    ['watch', 'coordination.k8s.io', 'leases', { namespace: CONTROLLER_NAMESPACE, name: 'warren-leader' }],
    ['watch', 'gateway.networking.k8s.io', 'httproutes'],
    ['update', 'gateway.networking.k8s.io', 'httproutes', { namespace: ns, name: 'r', subresource: 'status' }],
    ['update', 'gateway.networking.k8s.io', 'gatewayclasses', { name: 'c', subresource: 'status' }],
    ['watch', '', 'namespaces'],
    ['get', '', 'configmaps', { namespace: ns, name: 'ca' }],
    ['watch', '', 'configmaps'],
    ['update', 'gateway.networking.k8s.io', 'backendtlspolicies', { namespace: ns, name: 'p', subresource: 'status' }],
  ];
  const denied: Array<[string, string, string, { namespace?: string; name?: string; subresource?: string }?]> = [
    ['list', '', 'pods'],
    ['create', '', 'configmaps', { namespace: ns }],
    ['update', '', 'configmaps', { namespace: ns, name: 'ca' }],
    ['update', 'gateway.networking.k8s.io', 'backendtlspolicies', { namespace: ns, name: 'p' }],
    ['create', '', 'secrets', { namespace: ns }],
    ['update', '', 'secrets', { namespace: ns, name: 'ca' }],
    ['delete', 'networking.k8s.io', 'ingresses', { namespace: ns, name: 'x' }],
    ['create', 'networking.k8s.io', 'ingresses', { namespace: ns }],
    ['patch', 'networking.k8s.io', 'ingresses', { namespace: ns, name: 'x', subresource: 'status' }],
    ['update', '', 'services', { namespace: ns, name: 's' }],
    ['update', 'discovery.k8s.io', 'endpointslices', { namespace: ns, name: 's' }],
    ['create', 'networking.k8s.io', 'ingressclasses'],
    ['get', '', 'events', { namespace: ns, name: 'e' }],
    ['delete', '', 'events', { namespace: ns, name: 'e' }],
    ['update', 'coordination.k8s.io', 'leases', { namespace: CONTROLLER_NAMESPACE, name: 'someone-elses-lease' }],
    ['delete', 'coordination.k8s.io', 'leases', { namespace: CONTROLLER_NAMESPACE, name: 'warren-leader' }],
    ['create', 'coordination.k8s.io', 'leases', { namespace: ns }],
    ['list', 'coordination.k8s.io', 'leases', { namespace: CONTROLLER_NAMESPACE }],
    ['list', '', 'nodes'],
    ['create', 'rbac.authorization.k8s.io', 'clusterrolebindings'],
    ['update', 'gateway.networking.k8s.io', 'httproutes', { namespace: ns, name: 'r' }],
    ['update', 'gateway.networking.k8s.io', 'gateways', { namespace: ns, name: 'g' }],
    ['patch', 'gateway.networking.k8s.io', 'gateways', { namespace: ns, name: 'g', subresource: 'status' }],
    ['create', 'gateway.networking.k8s.io', 'gatewayclasses'],
    ['update', '', 'namespaces', { name: 'n' }],
  ];
  for (const [verb, group, resource, opts] of allowed) t.true(await can(verb, group, resource, opts), `may ${verb} ${group}/${resource} ${JSON.stringify(opts ?? {})}`);
  for (const [verb, group, resource, opts] of denied) t.false(await can(verb, group, resource, opts), `must not ${verb} ${group}/${resource} ${JSON.stringify(opts ?? {})}`);

  // And real requests agree with the reviews.
  const networking = kc.makeApiClient(NetworkingV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  t.true(Array.isArray((await networking.listIngressForAllNamespaces()).items));
  const forbidden = await t.throwsAsync(core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'nope' } } }));
  t.is((forbidden as unknown as { code: number }).code, 403);
  const stillThere = await adminClients(server()).core.listNamespacedSecret({ namespace: ns });
  t.false(stillThere.items.some((s) => s.metadata?.name === 'nope'));
});
