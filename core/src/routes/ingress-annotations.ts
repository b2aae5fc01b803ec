import { ANNOTATION_PREFIX } from '../plugin-api/manifest.js';
import { RoutingPlugins } from './plugins.js';

/** Values longer than this are cut in messages (annotations can be large and hostile). */
const SHOWN_VALUE_LENGTH = 120;
const DNS_LABEL = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?)*$/;

/** One rejected `warren.dev/*` annotation. */
export interface AnnotationProblem {
  /** Full key, e.g. `warren.dev/connect-timeout`. */
  readonly key: string;
  readonly message: string;
}

export interface ParsedAnnotations {
  /** Parsed values keyed without the prefix; frozen. */
  readonly values: Readonly<Record<string, unknown>>;
  /** Referenced Secrets as `namespace/name`, sorted, unique; frozen. */
  readonly secretRefs: readonly string[];
  readonly problems: readonly AnnotationProblem[];
}

const EMPTY: ParsedAnnotations = Object.freeze({ values: Object.freeze({}), secretRefs: Object.freeze([]), problems: Object.freeze([]) });

/**
 * Validates every `warren.dev/*` annotation of an Ingress against the registry: unknown keys and values the
 * owner's schema rejects become problems naming the key, the value and what was expected. Other annotations
 * are not Warren's business and are ignored. Never throws.
 */
export function parseIngressAnnotations(annotations: unknown, namespace: string, plugins: RoutingPlugins): ParsedAnnotations {
  if (annotations === undefined || annotations === null) return EMPTY;
  if (typeof annotations !== 'object' || Array.isArray(annotations)) {
    return { ...EMPTY, problems: [{ key: 'metadata.annotations', message: 'metadata.annotations must be a map of strings' }] };
  }
  let keys: string[] | undefined;
  for (const key of Object.keys(annotations)) {
    if (key.startsWith(ANNOTATION_PREFIX)) (keys ??= []).push(key);
  }
  if (!keys) return EMPTY;
  keys.sort();
  const values: Record<string, unknown> = {};
  const secretRefs = new Set<string>();
  const problems: AnnotationProblem[] = [];
  for (const key of keys) {
    const short = key.slice(ANNOTATION_PREFIX.length);
    const raw = (annotations as Record<string, unknown>)[key];
    const entry = plugins.annotation(short);
    if (!entry) {
      const disabled = plugins.disabledAnnotationOwner(short);
      problems.push({
        key,
        message: disabled
          ? `annotation ${key} is owned by plugin ${disabled}, which is disabled; enable it or remove the annotation`
          : `annotation ${key}${typeof raw === 'string' ? ` (value ${show(raw)})` : ''} is unknown; known warren.dev/ annotations: ${plugins.annotationKeys().join(', ')}`,
      });
      continue;
    }
    if (typeof raw !== 'string') {
      problems.push({ key, message: `annotation ${key} must be a string, got ${raw === null ? 'null' : typeof raw}` });
      continue;
    }
    const parsed = RoutingPlugins.parse(entry.spec, raw);
    if (!parsed.ok) {
      problems.push({ key, message: `annotation ${key} has value ${show(raw)}; expected ${parsed.expected}` });
      continue;
    }
    if (entry.spec.secretRef) {
      const ref = secretRef(raw.trim(), namespace);
      if (!ref) {
        problems.push({
          key,
          message: `annotation ${key} has value ${show(raw)}; expected a Secret as "name" or "namespace/name" (DNS names)`,
        });
        continue;
      }
      secretRefs.add(ref);
    }
    values[short] = parsed.value;
  }
  return {
    values: Object.freeze(values),
    secretRefs: Object.freeze([...secretRefs].sort()),
    problems,
  };
}

function secretRef(value: string, namespace: string): string | undefined {
  const slash = value.indexOf('/');
  const ns = slash === -1 ? namespace : value.slice(0, slash);
  const name = slash === -1 ? value : value.slice(slash + 1);
  return DNS_LABEL.test(ns) && DNS_SUBDOMAIN.test(name) ? `${ns}/${name}` : undefined;
}

/** JSON-quotes a value for a message, cut to a readable length. */
export function show(value: string): string {
  return JSON.stringify(value.length > SHOWN_VALUE_LENGTH ? `${value.slice(0, SHOWN_VALUE_LENGTH)}…` : value);
}
