import type { V1Service } from '@kubernetes/client-node';
import { analyzeAttachments } from './attach.js';
import { checkBackendRef } from './backend-refs.js';
import { conflictOf, evaluatePolicy, policiesByService, targetsPort, type SecretCaLookup } from './backend-tls.js';
import { generationOf, identityOf, type GatewayObjects } from './objects.js';
import { condition, type DesiredCondition } from './status.js';
import { CONTROLLER_NAME, GATEWAY_GROUP, type ParentReference } from './types.js';

/**
 * The status Warren's BackendTLSPolicies should carry (pure; the leader's writer compares and writes): one
 * `status.ancestors` entry per Gateway of Warren's through which a policy's target Service is reached (a route
 * attached to that Gateway has a backendRef to the Service, on a port the policy targets), each with
 *
 * - `Accepted`: False with `Conflicted` when an older policy (or, created at the same time, one first by
 *   `namespace/name`) targets the same Service and sectionName; False with `Invalid` when the validation settings
 *   cannot be applied; False with `NoValidCACertificate` when every CA reference is invalid; else True.
 * - `ResolvedRefs`: False with `InvalidKind` or `InvalidCACertificateRef` for the first reference that does not
 *   resolve; else True.
 *
 * Both carry the policy's `metadata.generation`. Policies reached through no Gateway get no entry of Warren's.
 */

/** The CRD's bound on `status.ancestors`. */
export const MAX_ANCESTORS = 16;

export interface PolicyAncestorDesired {
  readonly ancestorRef: ParentReference;
  readonly controllerName: string;
  readonly conditions: readonly DesiredCondition[];
}

export interface PolicyDesired {
  readonly key: string;
  readonly ancestors: readonly PolicyAncestorDesired[];
}

export interface PolicyStatusInput {
  readonly objects: GatewayObjects;
  readonly services: ReadonlyMap<string, V1Service>;
  /** Secrets named as CA (Warren's extension), so status can say whether they resolve. */
  readonly secret: SecretCaLookup;
}

export function desiredPolicyStatus(input: PolicyStatusInput): PolicyDesired[] {
  const { objects } = input;
  if (objects.tlsPolicies.size === 0) return [];
  const index = policiesByService(objects.tlsPolicies);
  const reached = reachingGateways(input, index);
  const configMap = (ns: string, name: string) => objects.configMaps.get(`${ns}/${name}`);
  const out: PolicyDesired[] = [];
  for (const [key, policy] of objects.tlsPolicies) {
    const gateways = [...(reached.get(key) ?? [])].sort().slice(0, MAX_ANCESTORS);
    if (gateways.length === 0) {
      out.push({ key, ancestors: [] });
      continue;
    }
    const g = generationOf(policy);
    const e = evaluatePolicy(key, policy, configMap, input.secret);
    const conflict = conflictOf(index, key, policy);
    const allInvalid = e.refCount > 0 && e.refProblems.length === e.refCount;
    const accepted = conflict
      ? condition('Accepted', false, 'Conflicted', conflict.message, g)
      : e.invalid
        ? condition('Accepted', false, 'Invalid', `${e.shown}: ${e.invalid.message}`, g)
        : allInvalid
          ? condition('Accepted', false, 'NoValidCACertificate', `no caCertificateRef resolves: ${e.refProblems.map((p) => p.message).join('; ')}`, g)
          : condition('Accepted', true, 'Accepted', 'policy accepted', g);
    const first = e.refProblems[0];
    const resolved = first
      ? condition('ResolvedRefs', false, first.reason, e.refProblems.map((p) => p.message).join('; '), g)
      : condition('ResolvedRefs', true, 'ResolvedRefs', 'all caCertificateRefs resolved', g);
    out.push({
      key,
      ancestors: gateways.map((gw) => {
        const slash = gw.indexOf('/');
        return {
          ancestorRef: { group: GATEWAY_GROUP, kind: 'Gateway', namespace: gw.slice(0, slash), name: gw.slice(slash + 1) },
          controllerName: CONTROLLER_NAME,
          conditions: [accepted, resolved],
        };
      }),
    });
  }
  return out;
}

/** Policy key → `namespace/name` of the Gateways through which one of its target Service ports is reached. */
function reachingGateways(input: PolicyStatusInput, index: ReturnType<typeof policiesByService>): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const r of analyzeAttachments(input.objects).routes) {
    const gateways = r.parents.filter((p) => !p.problem).map((p) => p.gateway.key);
    if (gateways.length === 0) continue;
    const rules = Array.isArray(r.route.spec?.rules) ? r.route.spec.rules : [];
    for (const [i, rule] of rules.entries()) {
      const refs = Array.isArray(rule?.backendRefs) ? rule.backendRefs : [];
      for (const [b, ref] of refs.entries()) {
        const checked = checkBackendRef(ref, `spec.rules[${i}].backendRefs[${b}]`, r.kind, r.namespace, input.services, input.objects.grants);
        if (!checked.ok) continue;
        const service = `${checked.namespace}/${checked.name}`;
        const candidates = index.get(service);
        if (!candidates) continue;
        const ports = input.services.get(service)?.spec?.ports ?? [];
        const portName = ports.find((p) => p?.port === checked.port)?.name;
        for (const { key, policy } of candidates) {
          if (!targetsPort(policy, checked.name, portName)) continue;
          let set = out.get(key);
          if (!set) out.set(key, (set = new Set()));
          for (const gw of gateways) set.add(gw);
        }
      }
    }
  }
  return out;
}

/** `namespace/name` of every Secret a policy names as CA (for the writer to have them cached). */
export function caSecretRefs(objects: GatewayObjects): string[] {
  const refs = new Set<string>();
  for (const [key, policy] of objects.tlsPolicies) {
    const { namespace } = identityOf(key, policy);
    for (const ref of policy?.spec?.validation?.caCertificateRefs ?? [])
      if ((ref?.group ?? '') === '' && ref?.kind === 'Secret' && ref.name) refs.add(`${namespace}/${ref.name}`);
  }
  return [...refs];
}
