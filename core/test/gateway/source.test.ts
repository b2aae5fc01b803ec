import test from 'ava';
import { parseConfig } from '../../src/config/load.js';
import { GatewayRouteSource, gatewayRouteSources } from '../../src/gateway/source.js';
import { BackendResolver } from '../../src/routes/backends.js';
import { testRoutingConfig } from '../routes/support.js';
import { gatewaySnapshot } from './support.js';

test('the Gateway API source is handed to the builder unless gateway.enabled is false', (t) => {
  const on = gatewayRouteSources(parseConfig({}));
  t.is(on.length, 1);
  t.true(on[0] instanceof GatewayRouteSource);
  t.true(['GatewayClass', 'Gateway', 'HTTPRoute', 'GRPCRoute', 'ReferenceGrant', 'BackendTLSPolicy', 'Namespace'].every((k) => on[0]!.kinds.includes(k)));
  t.deepEqual(gatewayRouteSources(parseConfig({ gateway: { enabled: false } })), []);
});

test('routes of Gateways of another controller give nothing', (t) => {
  const snapshot = gatewaySnapshot([
    { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: 'other' }, spec: { controllerName: 'example.com/other' } },
    {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: { name: 'gw', namespace: 'a' },
      spec: { gatewayClassName: 'other', listeners: [{ name: 'h', port: 80, protocol: 'HTTP' }] },
    },
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 's', namespace: 'a' }, spec: { ports: [{ port: 80 }] } },
    {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: 'r', namespace: 'a' },
      spec: { parentRefs: [{ name: 'gw' }], rules: [{ backendRefs: [{ name: 's', port: 80 }] }] },
    },
  ]);
  const result = new GatewayRouteSource().translate(snapshot, { services: snapshot.services, resolver: new BackendResolver(), plugins: testRoutingConfig().plugins });
  t.deepEqual(result, { candidates: [], diagnostics: [], services: [] });
});
