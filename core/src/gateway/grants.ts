import type { ReferenceGrant } from './types.js';

/** One side of a cross-namespace reference, as ReferenceGrants name it. */
export interface GrantParty {
  readonly group: string;
  readonly kind: string;
  readonly namespace: string;
}

/**
 * True when a ReferenceGrant in the target's namespace lets objects of `from` refer to `to` (by name when the
 * grant names one, else every object of that kind). A reference inside one namespace needs no grant.
 */
export function referencePermitted(grants: ReadonlyMap<string, ReferenceGrant>, from: GrantParty, to: GrantParty & { readonly name: string }): boolean {
  if (from.namespace === to.namespace) return true;
  for (const grant of grants.values()) {
    if (grant?.metadata?.namespace !== to.namespace) continue;
    const spec = grant.spec;
    if (!Array.isArray(spec?.from) || !Array.isArray(spec.to)) continue;
    const fromOk = spec.from.some((f) => (f?.group ?? '') === from.group && f?.kind === from.kind && f?.namespace === from.namespace);
    if (!fromOk) continue;
    if (spec.to.some((t) => (t?.group ?? '') === to.group && t?.kind === to.kind && (t.name === undefined || t.name === '' || t.name === to.name))) return true;
  }
  return false;
}
