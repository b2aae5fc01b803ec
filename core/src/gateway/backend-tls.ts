import { ANNOTATION_PREFIX } from '../plugin-api/manifest.js';
import type { Problem } from './listeners.js';
import { creationTimeOf, identityOf, isCoreGroup } from './objects.js';
import type { BackendTLSPolicy } from './types.js';

/**
 * BackendTLSPolicy as the tls plugin's settings: a policy targeting a Service (or one of its named ports) makes
 * routes to it speak HTTPS, verify the upstream certificate for `validation.hostname` (also sent as SNI), against
 * the CA bundle of a Secret (`ca.crt`) or the well-known system CAs. Expressed as the `warren.dev/` annotations
 * the tls plugin owns, so they are checked by the plugin's own schemas and the plugin serves them unchanged.
 */

/** The annotations a policy stands for, or why it cannot be applied (its routes then answer 500). */
export type PolicyAnnotations =
  | { readonly ok: true; readonly policy: string; readonly annotations: Readonly<Record<string, string>> }
  | ({ readonly ok: false; readonly policy: string } & Problem);

/** Policies by target Service key (`namespace/name`), oldest first (the oldest wins a conflict). */
export function policiesByService(policies: ReadonlyMap<string, BackendTLSPolicy>): Map<string, Array<{ key: string; policy: BackendTLSPolicy }>> {
  const out = new Map<string, Array<{ key: string; policy: BackendTLSPolicy }>>();
  for (const [key, policy] of policies) {
    const { namespace } = identityOf(key, policy);
    for (const ref of Array.isArray(policy?.spec?.targetRefs) ? policy.spec.targetRefs : []) {
      if (!isCoreGroup(ref?.group) || ref?.kind !== 'Service' || !ref.name) continue;
      const service = `${namespace}/${ref.name}`;
      let list = out.get(service);
      if (!list) out.set(service, (list = []));
      if (!list.some((p) => p.key === key)) list.push({ key, policy });
    }
  }
  for (const list of out.values()) list.sort((a, b) => creationTimeOf(a.policy) - creationTimeOf(b.policy) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return out;
}

/** The policy that applies to `namespace/service` on port `portName` (a sectionName-specific one first), if any. */
export function policyFor(
  index: ReadonlyMap<string, Array<{ key: string; policy: BackendTLSPolicy }>>,
  service: string,
  portName: string | undefined,
): PolicyAnnotations | undefined {
  const list = index.get(service);
  if (!list) return undefined;
  const name = service.slice(service.indexOf('/') + 1);
  const targets = (p: BackendTLSPolicy, section: string | undefined) =>
    (p.spec?.targetRefs ?? []).some((r) => r?.kind === 'Service' && r.name === name && (section === undefined ? !r.sectionName : r.sectionName === section));
  const chosen = (portName ? list.find((p) => targets(p.policy, portName)) : undefined) ?? list.find((p) => targets(p.policy, undefined));
  return chosen ? annotationsOf(chosen.key, chosen.policy) : undefined;
}

function annotationsOf(key: string, policy: BackendTLSPolicy): PolicyAnnotations {
  const { namespace, name } = identityOf(key, policy);
  const shown = `BackendTLSPolicy ${namespace}/${name}`;
  const v = policy.spec?.validation;
  if (!v?.hostname) return { ok: false, policy: shown, reason: 'InvalidBackendTLSPolicy', message: `${shown}: spec.validation.hostname is required` };
  const annotations: Record<string, string> = {
    [`${ANNOTATION_PREFIX}backend-protocol`]: 'https',
    [`${ANNOTATION_PREFIX}proxy-ssl-name`]: v.hostname,
    [`${ANNOTATION_PREFIX}proxy-ssl-verify`]: 'on',
  };
  const refs = Array.isArray(v.caCertificateRefs) ? v.caCertificateRefs : [];
  if (refs.length > 0) {
    const ref = refs[0]!;
    if (!isCoreGroup(ref?.group) || ref?.kind !== 'Secret' || !ref.name) {
      return {
        ok: false,
        policy: shown,
        reason: 'InvalidCACertificateRef',
        message: `${shown}: spec.validation.caCertificateRefs[0] names ${ref?.group || 'core'}/${ref?.kind} ${ref?.name ?? ''}; Warren reads CA bundles from Secrets (key ca.crt)`,
      };
    }
    if (refs.length > 1) return { ok: false, policy: shown, reason: 'InvalidCACertificateRef', message: `${shown}: only one caCertificateRef is supported` };
    annotations[`${ANNOTATION_PREFIX}proxy-ssl-secret`] = `${namespace}/${ref.name}`;
  } else if (v.wellKnownCACertificates !== 'System') {
    return { ok: false, policy: shown, reason: 'InvalidCACertificateRef', message: `${shown}: spec.validation needs caCertificateRefs or wellKnownCACertificates: System` };
  }
  return { ok: true, policy: shown, annotations };
}
