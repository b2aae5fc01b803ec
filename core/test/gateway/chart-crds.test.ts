/**
 * The chart's opt-in Gateway API CRDs: rendered only with gateway.installCRDs, kept on uninstall, and the same
 * definitions as the Gateway API module the tests install from (so the chart ships what Warren is tested against).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { parse } from 'yaml';
import { render } from '../chart/helm.js';
import { gatewayCrdDir } from './crds.js';

const withToken = { cloudflare: { tunnelToken: 'eyJhIjoiYSIsInQiOiIwMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDAiLCJzIjoiYzJWamNtVjAifQ==' } };
const CRDS = ['backendtlspolicies', 'gatewayclasses', 'gateways', 'grpcroutes', 'httproutes', 'referencegrants'];

test('the Gateway API CRDs render only with gateway.installCRDs, kept on uninstall, identical to the module', async (t) => {
  const plain = await render(withToken);
  t.is(plain.objects.filter((o) => o.kind === 'CustomResourceDefinition').length, 0, 'off by default');

  const out = await render({ ...withToken, gateway: { installCRDs: true } });
  const crds = out.objects.filter((o) => o.kind === 'CustomResourceDefinition');
  t.deepEqual(
    crds.map((o) => o.metadata.name).sort(),
    CRDS.map((r) => `${r}.gateway.networking.k8s.io`),
  );
  for (const crd of crds) {
    const annotations = crd.metadata.annotations ?? {};
    t.is(annotations['helm.sh/resource-policy'], 'keep', `${crd.metadata.name} survives an uninstall`);
    t.is(annotations['gateway.networking.k8s.io/bundle-version'], 'v1.6.3');
    const upstream = parse(readFileSync(join(gatewayCrdDir(), `gateway.networking.k8s.io_${crd.metadata.name.split('.')[0]}.yaml`), 'utf8')) as { spec: unknown };
    t.deepEqual((crd as unknown as { spec: unknown }).spec, upstream.spec, `${crd.metadata.name} spec as published`);
  }
  // installCRDs is the chart's own value: the controller's settings never see it.
  t.false(out.configText().includes('installCRDs'));
});
