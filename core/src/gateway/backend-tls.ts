import { X509Certificate } from 'node:crypto';
import type { KubernetesObject } from '@kubernetes/client-node';
import { ANNOTATION_PREFIX } from '../plugin-api/manifest.js';
import type { Problem } from './listeners.js';
import { creationTimeOf, identityOf, isCoreGroup } from './objects.js';
import type { BackendTLSPolicy } from './types.js';

/**
 * BackendTLSPolicy as the tls plugin's settings: a policy targeting a Service (or one of its named ports) makes
 * routes to it speak HTTPS, verify the upstream certificate for `validation.hostname` (also sent as SNI), against
 * the CA bundle of its `caCertificateRefs` or the well-known system CAs. Expressed as the `warren.dev/` annotations
 * the tls plugin owns, so they are checked by the plugin's own schemas and the plugin serves them unchanged:
 *
 * - ConfigMaps (the spec's core support, key `ca.crt`): their bundles are read here, from the snapshot, and
 *   handed over inline (`proxy-ssl-ca`), so a changed ConfigMap reaches new upstream connections with the next
 *   route build. Several ConfigMaps give one bundle.
 * - a Secret (key `ca.crt`, Warren's own extension): named to the plugin (`proxy-ssl-secret`), which reads it.
 *
 * `validation.subjectAltNames` become the names the certificate must carry one of (`proxy-ssl-subject-alt-names`),
 * `hostname` then only the SNI. A reference of another kind is `InvalidKind`; one that does not resolve (missing object, no `ca.crt`, not PEM
 * certificates) is `InvalidCACertificateRef`. Any invalid reference makes the policy's backends answer 500.
 */

/** Most certificate blocks read from one `ca.crt` (Mozilla's whole root store has about 150). */
const MAX_CERTIFICATES = 1_000;

/** Reads a ConfigMap of the snapshot (only those a policy names are cached). */
export type ConfigMapLookup = (namespace: string, name: string) => ConfigMapLike | undefined;
export interface ConfigMapLike extends KubernetesObject {
  data?: Record<string, string> | undefined;
}
/** Reads a Secret's `ca.crt` presence, for status only (the data plane leaves Secrets to the tls plugin). */
export type SecretCaLookup = (namespace: string, name: string) => { readonly data?: Record<string, string> | undefined } | undefined;

/** One `caCertificateRefs` entry that does not resolve, with the ResolvedRefs reason. */
export interface RefProblem extends Problem {
  readonly reason: 'InvalidKind' | 'InvalidCACertificateRef';
}

/** What Warren makes of one policy, independent of which Service port it applies to. */
export interface PolicyEvaluation {
  readonly key: string;
  /** `BackendTLSPolicy namespace/name`, for messages. */
  readonly shown: string;
  /** The policy as a whole cannot be applied (Accepted False, reason `Invalid`). */
  readonly invalid?: Problem | undefined;
  /** References that do not resolve (ResolvedRefs False); all of them: Accepted False `NoValidCACertificate`. */
  readonly refProblems: readonly RefProblem[];
  readonly refCount: number;
  /** The tls plugin's annotations, when nothing is wrong. */
  readonly annotations?: Readonly<Record<string, string>> | undefined;
}

/** The annotations a policy stands for, or why it cannot be applied (its routes then answer 500). */
export type PolicyAnnotations =
  | { readonly ok: true; readonly policy: string; readonly annotations: Readonly<Record<string, string>> }
  | ({ readonly ok: false; readonly policy: string } & Problem);

export interface PolicyEntry {
  readonly key: string;
  readonly policy: BackendTLSPolicy;
}

/** Policies by target Service key (`namespace/name`), in precedence order (oldest first, then by `namespace/name`). */
export function policiesByService(policies: ReadonlyMap<string, BackendTLSPolicy>): Map<string, PolicyEntry[]> {
  const out = new Map<string, PolicyEntry[]>();
  for (const [key, policy] of policies) {
    const { namespace } = identityOf(key, policy);
    for (const ref of targetRefsOf(policy)) {
      const service = `${namespace}/${ref.name}`;
      let list = out.get(service);
      if (!list) out.set(service, (list = []));
      if (!list.some((p) => p.key === key)) list.push({ key, policy });
    }
  }
  for (const list of out.values()) list.sort(byPrecedence);
  return out;
}

/** The policy that applies to `namespace/service` on port `portName` (a sectionName-specific one first), if any. */
export function chosenPolicy(index: ReadonlyMap<string, readonly PolicyEntry[]>, service: string, portName: string | undefined): PolicyEntry | undefined {
  const list = index.get(service);
  if (!list) return undefined;
  const name = service.slice(service.indexOf('/') + 1);
  return (portName ? list.find((p) => targets(p.policy, name, portName)) : undefined) ?? list.find((p) => targets(p.policy, name, undefined));
}

/** The settings (or the problem) of the policy that applies to a Service port, if any. */
export function policyFor(
  index: ReadonlyMap<string, readonly PolicyEntry[]>,
  service: string,
  portName: string | undefined,
  configMap: ConfigMapLookup,
): PolicyAnnotations | undefined {
  const chosen = chosenPolicy(index, service, portName);
  if (!chosen) return undefined;
  const e = evaluatePolicy(chosen.key, chosen.policy, configMap);
  if (e.annotations) return { ok: true, policy: e.shown, annotations: e.annotations };
  // Events name an unusable policy as such; its status says `Invalid`.
  const problem = e.invalid ? { reason: 'InvalidBackendTLSPolicy', message: e.invalid.message } : e.refProblems[0]!;
  return { ok: false, policy: e.shown, reason: problem.reason, message: `${e.shown}: ${problem.message}` };
}

/**
 * Whether a policy loses to another for one of its targets (same Service and sectionName): the other one was
 * created earlier, or at the same time and comes first by `namespace/name`.
 */
export function conflictOf(index: ReadonlyMap<string, readonly PolicyEntry[]>, key: string, policy: BackendTLSPolicy): Problem | undefined {
  const { namespace } = identityOf(key, policy);
  for (const ref of targetRefsOf(policy)) {
    const list = index.get(`${namespace}/${ref.name}`) ?? [];
    const winner = list.find((p) => targets(p.policy, ref.name, ref.sectionName));
    if (winner && winner.key !== key) {
      const other = identityOf(winner.key, winner.policy);
      const target = `Service ${namespace}/${ref.name}${ref.sectionName ? ` port ${ref.sectionName}` : ''}`;
      return { reason: 'Conflicted', message: `BackendTLSPolicy ${other.namespace}/${other.name} also targets ${target} and takes precedence (older, or first by name)` };
    }
  }
  return undefined;
}

/** `namespace/name` of every ConfigMap that a policy names as CA: what the ConfigMap cache keeps. */
export function caConfigMapRefs(policies: ReadonlyMap<string, KubernetesObject>): string[] {
  const refs = new Set<string>();
  for (const [key, object] of policies) {
    const policy = object as BackendTLSPolicy;
    const { namespace } = identityOf(key, policy);
    for (const ref of caRefsOf(policy)) if (isCoreGroup(ref?.group) && ref?.kind === 'ConfigMap' && ref.name) refs.add(`${namespace}/${ref.name}`);
  }
  return [...refs];
}

/** Evaluates a policy's validation settings against the cached ConfigMaps (and, for status, Secrets). */
export function evaluatePolicy(key: string, policy: BackendTLSPolicy, configMap: ConfigMapLookup, secret?: SecretCaLookup): PolicyEvaluation {
  const { namespace, name } = identityOf(key, policy);
  const shown = `BackendTLSPolicy ${namespace}/${name}`;
  const v = policy.spec?.validation;
  const refs = caRefsOf(policy);
  const base = { key, shown, refCount: refs.length };
  const invalid = (message: string): PolicyEvaluation => ({ ...base, refProblems: [], invalid: { reason: 'Invalid', message } });
  if (!v?.hostname) return invalid('spec.validation.hostname is required');
  const wellKnown = v.wellKnownCACertificates;
  if (refs.length > 0 && wellKnown) return invalid('spec.validation sets both caCertificateRefs and wellKnownCACertificates');
  if (refs.length === 0 && wellKnown !== 'System') {
    return invalid(
      wellKnown
        ? `spec.validation.wellKnownCACertificates ${JSON.stringify(wellKnown)} is not supported (only "System")`
        : 'spec.validation needs caCertificateRefs or wellKnownCACertificates: System',
    );
  }
  const annotations: Record<string, string> = {
    [`${ANNOTATION_PREFIX}backend-protocol`]: 'https',
    [`${ANNOTATION_PREFIX}proxy-ssl-name`]: v.hostname,
    [`${ANNOTATION_PREFIX}proxy-ssl-verify`]: 'on',
  };
  const sans: string[] = [];
  for (const [i, san] of (Array.isArray(v.subjectAltNames) ? v.subjectAltNames : []).entries()) {
    if (san?.type === 'Hostname' && san.hostname) sans.push(`DNS:${san.hostname}`);
    else if (san?.type === 'URI' && san.uri) sans.push(`URI:${san.uri}`);
    else return invalid(`spec.validation.subjectAltNames[${i}] needs type Hostname with hostname, or type URI with uri`);
  }
  // With subjectAltNames the certificate is checked against them; hostname stays the SNI.
  if (sans.length > 0) annotations[`${ANNOTATION_PREFIX}proxy-ssl-subject-alt-names`] = sans.join(',');
  const problems: RefProblem[] = [];
  const bundles: string[] = [];
  const secrets: string[] = [];
  for (const [i, ref] of refs.entries()) {
    const field = `spec.validation.caCertificateRefs[${i}]`;
    const kind = `${ref?.group ? `${ref.group}/` : ''}${ref?.kind ?? ''}`;
    if (!isCoreGroup(ref?.group) || (ref?.kind !== 'ConfigMap' && ref?.kind !== 'Secret')) {
      problems.push({
        reason: 'InvalidKind',
        message: `${field} names a ${kind || 'reference without kind'}; Warren reads CA bundles from ConfigMaps (or Secrets), key ca.crt`,
      });
      continue;
    }
    const object = `${ref.kind} ${namespace}/${ref.name ?? ''}`;
    if (!ref.name) {
      problems.push({ reason: 'InvalidCACertificateRef', message: `${field} names no ${ref.kind}` });
      continue;
    }
    if (ref.kind === 'Secret') {
      secrets.push(ref.name);
      // The data plane leaves the Secret to the tls plugin (which reports it); status looks when it can.
      const data = secret?.(namespace, ref.name);
      if (secret && !data) problems.push({ reason: 'InvalidCACertificateRef', message: `${field}: ${object} not found` });
      else if (data) {
        const problem = bundleProblem(data.data?.['ca.crt'] === undefined ? undefined : Buffer.from(data.data['ca.crt'], 'base64').toString('utf8'));
        if (problem) problems.push({ reason: 'InvalidCACertificateRef', message: `${field}: ${object} key ca.crt ${problem}` });
      }
      continue;
    }
    const cm = configMap(namespace, ref.name);
    if (!cm) {
      problems.push({ reason: 'InvalidCACertificateRef', message: `${field}: ${object} not found` });
      continue;
    }
    const pem = cm.data?.['ca.crt'];
    const problem = checkedBundle(cm, pem);
    if (problem) problems.push({ reason: 'InvalidCACertificateRef', message: `${field}: ${object} key ca.crt ${problem}` });
    else bundles.push(pem!.trim());
  }
  if (secrets.length > 0 && refs.length > 1) {
    return invalid('a Secret in spec.validation.caCertificateRefs must be the only reference (several CA bundles are read from ConfigMaps)');
  }
  if (problems.length > 0) return { ...base, refProblems: problems };
  if (secrets.length === 1) annotations[`${ANNOTATION_PREFIX}proxy-ssl-secret`] = `${namespace}/${secrets[0]}`;
  if (bundles.length > 0) annotations[`${ANNOTATION_PREFIX}proxy-ssl-ca`] = `${bundles.join('\n')}\n`;
  return { ...base, refProblems: [], annotations };
}

/** Checked bundles per ConfigMap version (the store hands out one object per version). */
const CHECKED = new WeakMap<object, string | null>();

function checkedBundle(cm: ConfigMapLike, pem: string | undefined): string | undefined {
  const known = CHECKED.get(cm);
  if (known !== undefined) return known ?? undefined;
  const problem = bundleProblem(pem);
  CHECKED.set(cm, problem ?? null);
  return problem;
}

const BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** Why a `ca.crt` value is no CA bundle: missing, empty, or certificates that do not parse. Never quotes it. */
export function bundleProblem(pem: string | undefined): string | undefined {
  if (pem === undefined) return 'is missing';
  if (pem.trim() === '') return 'is empty';
  const blocks = pem.match(BLOCK) ?? [];
  if (blocks.length === 0) return 'holds no PEM certificate';
  if (blocks.length > MAX_CERTIFICATES) return `holds more than ${MAX_CERTIFICATES} certificates`;
  for (const [i, block] of blocks.entries()) {
    try {
      new X509Certificate(block);
    } catch {
      return `certificate ${i + 1} of ${blocks.length} does not parse`;
    }
  }
  return undefined;
}

function byPrecedence(a: PolicyEntry, b: PolicyEntry): number {
  const ka = identityOf(a.key, a.policy);
  const kb = identityOf(b.key, b.policy);
  const na = `${ka.namespace}/${ka.name}`;
  const nb = `${kb.namespace}/${kb.name}`;
  return creationTimeOf(a.policy) - creationTimeOf(b.policy) || (na < nb ? -1 : na > nb ? 1 : 0);
}

/** The policy's Service targets (other kinds are not Warren's to apply). */
function targetRefsOf(policy: BackendTLSPolicy): Array<{ name: string; sectionName?: string | undefined }> {
  const refs = Array.isArray(policy?.spec?.targetRefs) ? policy.spec.targetRefs : [];
  return refs.filter((r) => isCoreGroup(r?.group) && r?.kind === 'Service' && typeof r.name === 'string' && r.name !== '') as Array<{ name: string; sectionName?: string }>;
}

/** True when the policy targets Service `service` on the port named `portName` (by section, or the whole Service). */
export function targetsPort(policy: BackendTLSPolicy, service: string, portName: string | undefined): boolean {
  return targetRefsOf(policy).some((r) => r.name === service && (!r.sectionName || r.sectionName === portName));
}

function targets(policy: BackendTLSPolicy, service: string, section: string | undefined): boolean {
  return targetRefsOf(policy).some((r) => r.name === service && (section === undefined ? !r.sectionName : r.sectionName === section));
}

function caRefsOf(policy: BackendTLSPolicy): Array<{ group?: string; kind?: string; name?: string }> {
  const refs = policy?.spec?.validation?.caCertificateRefs;
  return Array.isArray(refs) ? refs : [];
}
