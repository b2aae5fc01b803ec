import { GATEWAY_GROUP, type GatewayKind } from '../gateway/types.js';
import { apiFailure } from './api-errors.js';
import type { KubeClient } from './api/client.js';

/** Where a kind is served: `groupVersion` and plural `resource`, as API discovery lists them. */
export interface ServedKind {
  readonly kind: GatewayKind;
  readonly groupVersion: string;
  readonly resource: string;
  readonly namespaced: boolean;
}

/** The versions Warren reads, most preferred first (ReferenceGrant is v1beta1 before Gateway API v1.5). */
const VERSIONS = ['v1', 'v1beta1'] as const;

interface ApiGroup {
  versions?: Array<{ groupVersion?: string; version?: string }>;
}
interface ApiResourceList {
  resources?: Array<{ name?: string; kind?: string; namespaced?: boolean }>;
}

/**
 * Asks API discovery which of `kinds` the `gateway.networking.k8s.io` group serves, and at which version (v1
 * preferred). Returns none when the group is not served (the CRDs are not installed); throws on other failures
 * (the caller retries: a cluster whose apiserver is briefly away must not be taken for one without the CRDs).
 */
export async function discoverGatewayKinds(client: KubeClient, kinds: readonly GatewayKind[], signal?: AbortSignal): Promise<ServedKind[]> {
  let group: ApiGroup;
  try {
    group = await client.get<ApiGroup>(`/apis/${GATEWAY_GROUP}`, { signal });
  } catch (err) {
    if (apiFailure(err).status === 404) return [];
    throw err;
  }
  const served = new Set((group.versions ?? []).map((v) => v.version));
  const found = new Map<GatewayKind, ServedKind>();
  for (const version of VERSIONS) {
    if (!served.has(version)) continue;
    const groupVersion = `${GATEWAY_GROUP}/${version}`;
    const list = await client.get<ApiResourceList>(`/apis/${groupVersion}`, { signal });
    for (const r of list.resources ?? []) {
      const kind = r.kind as GatewayKind;
      if (!r.name || r.name.includes('/') || !kinds.includes(kind) || found.has(kind)) continue;
      found.set(kind, { kind, groupVersion, resource: r.name, namespaced: r.namespaced === true });
    }
  }
  return kinds.flatMap((k) => found.get(k) ?? []);
}
