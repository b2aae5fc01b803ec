/**
 * Table-driven tests of the Gateway API translation and status: every fixtures/*.yaml holds Kubernetes objects
 * and one `kind: GatewayTest` document with
 *
 *   candidates:   the exact candidate routes, one line each (see `showCandidate` in support.ts)
 *   diagnostics:  the exact multiset of `Reason Kind ns/name`
 *   gateways:     per Gateway key: its conditions, addresses, and per listener attachedRoutes, conditions and
 *                 supportedKinds
 *   routes:       per `Kind ns/name`: per parent (by name[/sectionName]) its conditions (`Type=Status/Reason`)
 *   classes:      per GatewayClass: its conditions
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { parseAllDocuments } from 'yaml';
import type { V1Secret } from '@kubernetes/client-node';
import { GatewayRouteSource } from '../../src/gateway/source.js';
import { desiredGatewayStatus } from '../../src/gateway/status.js';
import { gatewayObjects } from '../../src/gateway/objects.js';
import { loadBuiltinManifests } from '../../src/plugins/builtin.js';
import { BackendResolver } from '../../src/routes/backends.js';
import { RoutingPlugins } from '../../src/routes/plugins.js';
import { testRoutingConfig } from '../routes/support.js';
import { gatewaySnapshot, showCandidate, showConditions } from './support.js';

interface GatewayTest {
  description: string;
  candidates: string[];
  diagnostics?: string[];
  classes?: Record<string, string[]>;
  gateways?: Record<
    string,
    { conditions?: string[]; addresses?: string[]; listeners?: Record<string, { attachedRoutes: number; conditions?: string[]; supportedKinds?: string[] }> }
  >;
  routes?: Record<string, Record<string, string[]>>;
  /** `builtin: true` uses the built-in plugins' real manifests (all enabled) instead of the routing tests' ones. */
  plugins?: { disable?: string[]; builtin?: boolean };
}

const DIR = fileURLToPath(new URL('../../../test/gateway/fixtures/', import.meta.url));

for (const file of readdirSync(DIR)
  .filter((f) => f.endsWith('.yaml'))
  .sort()) {
  const docs = parseAllDocuments(readFileSync(DIR + file, 'utf8')).map((d) => d.toJS() as { kind?: string });
  const spec = docs.find((d) => d?.kind === 'GatewayTest') as unknown as GatewayTest;
  const objects = docs.filter((d) => d?.kind !== 'GatewayTest');

  test(`${file}: ${spec.description}`, async (t) => {
    const snapshot = gatewaySnapshot(objects);
    const resolver = new BackendResolver();
    for (const [key, slice] of snapshot.endpointSlices) resolver.setSlice(key, slice);
    const plugins = spec.plugins?.builtin ? new RoutingPlugins(await loadBuiltinManifests()) : testRoutingConfig({}, { disable: spec.plugins?.disable ?? [] }).plugins;
    const result = new GatewayRouteSource().translate(snapshot, { services: snapshot.services, resolver, plugins });

    t.deepEqual(result.candidates.map(showCandidate).sort(), [...spec.candidates].sort(), 'candidates');
    const shownDiagnostics = result.diagnostics.map((d) => `${d.reason} ${d.object.kind} ${d.object.namespace}/${d.object.name}`).sort();
    t.deepEqual(shownDiagnostics, [...(spec.diagnostics ?? [])].sort(), 'diagnostics');

    const secrets = snapshot.secrets as ReadonlyMap<string, V1Secret>;
    const status = desiredGatewayStatus({
      objects: gatewayObjects(snapshot.extra),
      services: snapshot.services,
      secret: (ns, name) => secrets.get(`${ns}/${name}`),
      address: { type: 'Hostname', value: 'tunnel-id.cfargotunnel.com' },
    });
    for (const [name, expected] of Object.entries(spec.classes ?? {})) {
      const found = status.classes.find((c) => c.name === name);
      t.deepEqual(found && showConditions(found.conditions), [...expected].sort(), `GatewayClass ${name}`);
    }
    for (const [key, expected] of Object.entries(spec.gateways ?? {})) {
      const found = status.gateways.find((g) => g.key === key);
      if (!found) {
        t.fail(`no status for Gateway ${key}`);
        continue;
      }
      if (expected.conditions) t.deepEqual(showConditions(found.conditions), [...expected.conditions].sort(), `Gateway ${key}`);
      if (expected.addresses)
        t.deepEqual(
          found.addresses.map((a) => `${a.type}:${a.value}`),
          expected.addresses,
          `Gateway ${key} addresses`,
        );
      for (const [listener, want] of Object.entries(expected.listeners ?? {})) {
        const l = found.listeners.find((x) => x.name === listener);
        t.is(l?.attachedRoutes, want.attachedRoutes, `Gateway ${key} listener ${listener} attachedRoutes`);
        if (want.conditions) t.deepEqual(l && showConditions(l.conditions), [...want.conditions].sort(), `Gateway ${key} listener ${listener}`);
        if (want.supportedKinds)
          t.deepEqual(
            l?.supportedKinds.map((k) => k.kind),
            want.supportedKinds,
            `Gateway ${key} listener ${listener} supportedKinds`,
          );
      }
    }
    for (const [route, parents] of Object.entries(spec.routes ?? {})) {
      const [kind, key] = route.split(' ');
      const found = status.routes.find((r) => r.kind === kind && r.key === key);
      const shown = Object.fromEntries(
        (found?.parents ?? []).map((p) => [`${p.parentRef.name}${p.parentRef.sectionName ? `/${p.parentRef.sectionName}` : ''}`, showConditions(p.conditions)]),
      );
      t.deepEqual(shown, Object.fromEntries(Object.entries(parents).map(([k, v]) => [k, [...v].sort()])), route);
    }
    // Generations: every condition observes its object's generation.
    for (const g of status.gateways) for (const c of g.conditions) t.true(c.observedGeneration > 0, `Gateway ${g.key} ${c.type} observedGeneration`);
  });
}
