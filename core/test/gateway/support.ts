import type { KubernetesObject } from '@kubernetes/client-node';
import { snapshotFromObjects, type ClusterSnapshot } from '../../src/routes/snapshot.js';
import type { SourcedCandidate } from '../../src/routes/sources.js';
import type { DesiredCondition } from '../../src/gateway/status.js';

/** Kinds that go into `ClusterSnapshot.extra`, keyed by name when cluster-scoped. */
const EXTRA_KINDS: Readonly<Record<string, boolean>> = {
  GatewayClass: false,
  Namespace: false,
  Gateway: true,
  HTTPRoute: true,
  GRPCRoute: true,
  ReferenceGrant: true,
  BackendTLSPolicy: true,
};

/** A snapshot of plain objects (YAML documents), the Gateway API kinds and Namespaces in `extra`. */
export function gatewaySnapshot(objects: readonly unknown[]): ClusterSnapshot {
  const { snapshot } = snapshotFromObjects(objects);
  const extra = new Map<string, Map<string, KubernetesObject>>();
  for (const o of objects as KubernetesObject[]) {
    const namespaced = o?.kind ? EXTRA_KINDS[o.kind] : undefined;
    if (namespaced === undefined) continue;
    const name = o.metadata?.name ?? '';
    const key = namespaced ? `${o.metadata?.namespace ?? 'default'}/${name}` : name;
    let map = extra.get(o.kind!);
    if (!map) extra.set(o.kind!, (map = new Map()));
    map.set(key, o);
  }
  return { ...snapshot, extra };
}

/** One candidate on one line: id, host, path, conditions, then backend or failure, weight and filters. */
export function showCandidate(c: SourcedCandidate): string {
  const r = c.route;
  let line = `${r.id} ${r.host ?? '*'} ${r.pathType} ${r.path}`;
  const cond = r.conditions;
  if (cond) {
    const parts = [
      cond.method ? `method=${cond.method}` : '',
      ...(cond.headers ?? []).map((h) => `h:${h.name}${h.type === 'Exact' ? '=' : '~'}${h.value}`),
      ...(cond.query ?? []).map((q) => `q:${q.name}${q.type === 'Exact' ? '=' : '~'}${q.value}`),
    ].filter(Boolean);
    line += ` if ${parts.join(',')}`;
  }
  line += r.unresolved
    ? ` -> ${r.unresolved.status} ${r.unresolved.reason}`
    : ` -> ${r.backend.namespace}/${r.backend.service}:${r.backend.port} ${r.protocol} eps=${r.backend.endpoints.length}`;
  if (r.weight) line += ` w=${r.weight.weight}`;
  if (r.filters) line += ` f=${JSON.stringify(r.filters)}`;
  if (r.timeouts) line += ` t=${JSON.stringify(r.timeouts)}`;
  if (Object.keys(r.annotations).length > 0) line += ` a=${JSON.stringify(r.annotations)}`;
  return line;
}

/** Conditions as `Type=Status/Reason`, sorted. */
export function showConditions(conditions: readonly DesiredCondition[]): string[] {
  return conditions.map((c) => `${c.type}=${c.status}/${c.reason}`).sort();
}
