import { z } from 'zod';
import { ANNOTATION_PREFIX, type AnnotationSpec } from '../plugin-api/manifest.js';
import type { PluginModule } from '../plugin-api/module.js';
import { CORE_PROTOCOL_VALUES } from '../routes/core-annotations.js';

/** Core's annotation naming the backend protocol; its values are the enabled plugins' protocols. */
const PROTOCOL_ANNOTATION = 'backend-protocol';

/**
 * Renders `chart/templates/validating-admission-policy.yaml`: a ValidatingAdmissionPolicy (CEL evaluated by the API
 * server; no webhook) and its binding, refusing Ingresses of Warren's class whose `warren.dev/` annotations are
 * unknown or hold values their owner's schema would reject.
 *
 * The checks are derived from the same annotation specs as docs/annotations.md. A schema is walked as far as its
 * steps can be expressed in CEL — string length limits, regular expressions RE2 reads the same way, trim and
 * ASCII case folding, enums and literals — and stops at the first step that cannot (a transform, a union): what
 * comes after is left to the controller, which still rejects the value with a Warning. So the policy never refuses
 * a value the controller would accept; it refuses at apply time what it can prove invalid.
 */

/** The CEL conditions a value must meet, over the CEL variable `value` of type string; empty when none is known. */
function celConditions(schema: z.ZodType, value = 'value'): string[] {
  return walk(schema, value).conditions;
}

interface Walked {
  readonly conditions: string[];
  /** The CEL expression of the value after this step, or undefined once it can no longer be followed. */
  readonly expr: string | undefined;
}

interface ZodDef {
  readonly type: string;
  readonly in?: z.ZodType;
  readonly out?: z.ZodType;
  readonly entries?: Record<string, unknown>;
  readonly values?: readonly unknown[];
  readonly checks?: ReadonlyArray<{ readonly _zod: { readonly def: CheckDef } }>;
}

interface CheckDef {
  readonly check: string;
  readonly format?: string;
  readonly pattern?: RegExp;
  readonly maximum?: number;
  readonly minimum?: number;
  readonly tx?: (value: string) => unknown;
}

function walk(schema: z.ZodType, expr: string): Walked {
  const def = (schema as unknown as { _zod: { def: ZodDef } })._zod.def;
  switch (def.type) {
    case 'string':
      return walkString(def, expr);
    case 'pipe': {
      const first = walk(def.in!, expr);
      if (first.expr === undefined) return first;
      const second = walk(def.out!, first.expr);
      return { conditions: [...first.conditions, ...second.conditions], expr: second.expr };
    }
    case 'enum': {
      const values = Object.values(def.entries ?? {});
      if (!values.every((v) => typeof v === 'string' && celStringSafe(v))) return { conditions: [], expr: undefined };
      return { conditions: [`${expr} in [${values.map((v) => `'${v as string}'`).join(', ')}]`], expr };
    }
    case 'literal': {
      const values = def.values ?? [];
      if (!values.every((v) => typeof v === 'string' && celStringSafe(v))) return { conditions: [], expr: undefined };
      return { conditions: [`${expr} in [${values.map((v) => `'${v as string}'`).join(', ')}]`], expr };
    }
    default:
      // A transform, a union, a number…: the value can no longer be followed in CEL.
      return { conditions: [], expr: undefined };
  }
}

function walkString(def: ZodDef, start: string): Walked {
  const conditions: string[] = [];
  let expr = start;
  for (const check of def.checks ?? []) {
    const c = check._zod.def;
    switch (c.check) {
      case 'overwrite': {
        const step = overwriteStep(c.tx);
        if (step === undefined) return { conditions, expr: undefined };
        expr = `${expr}.${step}()`;
        break;
      }
      case 'max_length':
        // zod counts UTF-16 units, CEL code points: a value within zod's limit is within CEL's.
        if (typeof c.maximum === 'number') conditions.push(`size(${expr}) <= ${c.maximum}`);
        break;
      case 'min_length':
        if (typeof c.minimum === 'number' && c.minimum >= 1) conditions.push(`size(${expr}) >= 1`);
        break;
      case 'string_format': {
        const regex = c.format === 'regex' ? re2Pattern(c.pattern) : undefined;
        if (regex !== undefined) conditions.push(`${expr}.matches(r'${regex}')`);
        break;
      }
      default:
        // Refinements and formats CEL cannot check leave the value as it is: keep following it.
        break;
    }
  }
  return { conditions, expr };
}

/** The CEL string function an overwrite step performs (trim or ASCII case folding), found by trying it. */
function overwriteStep(tx: ((value: string) => unknown) | undefined): string | undefined {
  if (typeof tx !== 'function') return undefined;
  const probe = ' aB\t';
  let out: unknown;
  try {
    out = tx(probe);
  } catch {
    return undefined;
  }
  if (out === 'aB') return 'trim';
  if (out === ' ab\t') return 'lowerAscii';
  if (out === ' AB\t') return 'upperAscii';
  return undefined;
}

/**
 * The pattern as an RE2 expression, or undefined when RE2 (CEL's `matches`) might read it differently from
 * JavaScript: lookaround, back references, named groups, `\s` (Unicode in JavaScript, ASCII in RE2), flags
 * other than `i`, or a quote that would end CEL's raw string.
 */
function re2Pattern(pattern: RegExp | undefined): string | undefined {
  if (!(pattern instanceof RegExp)) return undefined;
  if (pattern.flags.replace('i', '') !== '') return undefined;
  const source = pattern.source;
  if (/\(\?<?[=!]|\(\?<[A-Za-z]|\\[1-9]|\\k<|\\[sSpPuc]|\[\^?\]|'|\n/.test(source)) return undefined;
  return pattern.flags.includes('i') ? `(?i)${source}` : source;
}

/** Whether a string can sit between single quotes in CEL unchanged. */
function celStringSafe(value: string): boolean {
  return /^[\x20-\x7e]*$/.test(value) && !value.includes("'") && !value.includes('\\');
}

/** One annotation with its derived checks. */
interface AnnotationRule {
  /** Full key, with the prefix. */
  readonly key: string;
  /** Plugin id, or `core`. */
  readonly owner: string;
  /** `plugins.<name>.enabled`, for plugin annotations. */
  readonly toggle?: string | undefined;
  /** CEL conditions over `variables.annotations['<key>']`. */
  readonly conditions: readonly string[];
  readonly message: string;
}

/** Every known annotation (core's, then each built-in plugin's in the order given) with its CEL checks. */
function annotationRules(coreAnnotations: readonly AnnotationSpec[], plugins: readonly PluginModule[]): AnnotationRule[] {
  const rules: AnnotationRule[] = [];
  const add = (spec: AnnotationSpec, owner: string, toggle?: string) => {
    const key = ANNOTATION_PREFIX + spec.key;
    rules.push({
      key,
      owner,
      toggle,
      conditions: celConditions(spec.schema as z.ZodType, `variables.annotations['${key}']`),
      message: `annotation ${key} has an invalid value; expected a value like ${JSON.stringify(spec.example)}: ${spec.description} (docs/annotations.md)`,
    });
  };
  for (const spec of coreAnnotations) add(spec, 'core');
  for (const module of plugins) for (const spec of module.manifest.annotations ?? []) add(spec, module.manifest.id, module.manifest.name);
  return rules;
}

/** Values of the chart's `admissionPolicy` block (the values schema and the template read them). */
export const ADMISSION_POLICY_VALUES = z
  .object({
    enabled: z
      .boolean()
      .describe("Refuse Ingresses of Warren's class with unknown or invalid warren.dev/ annotations at apply time (ValidatingAdmissionPolicy, Kubernetes 1.30+)"),
    extraAnnotationKeys: z
      .array(z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'an annotation key without the warren.dev/ prefix'))
      .describe('More warren.dev/ keys (without prefix) to let through unchecked, e.g. those of extraPlugins'),
    extraBackendProtocols: z
      .array(z.string().regex(/^[a-z0-9][a-z0-9_.+-]{0,62}$/, 'a lower-case backend protocol'))
      .describe('More warren.dev/backend-protocol values (lower case) to let through, e.g. those extraPlugins serve'),
  })
  .strict();

/** The template text: the policy and its binding, rendered only with `admissionPolicy.enabled`. */
export function renderAdmissionPolicy(coreAnnotations: readonly AnnotationSpec[], plugins: readonly PluginModule[]): string {
  const rules = annotationRules(coreAnnotations, plugins);
  const q = (text: string) => JSON.stringify(text);
  const annotationsOf = (obj: string) => `(has(${obj}.metadata.annotations) ? ${obj}.metadata.annotations : {})`;
  const warrenPairs = (obj: string) => `${annotationsOf(obj)}.filter(k, k.startsWith('${ANNOTATION_PREFIX}')).map(k, k + '=' + ${annotationsOf(obj)}[k])`;
  // Known keys: core's always, a plugin's only while the plugin is enabled (the controller treats the others as
  // unknown too), plus admissionPolicy.extraAnnotationKeys.
  const keyList = [...rules.filter((r) => r.toggle === undefined).map((r) => `'${r.key}'`)].join(', ');
  const pluginKeys = new Map<string, string[]>();
  for (const r of rules) if (r.toggle !== undefined) pluginKeys.set(r.toggle, [...(pluginKeys.get(r.toggle) ?? []), `'${r.key}'`]);
  const knownKeys =
    `[${keyList}]` +
    [...pluginKeys].map(([name, keys]) => `{{ if (index .Values.plugins \`${name}\`).enabled }} + [${keys.join(', ')}]{{ end }}`).join('') +
    `{{ range .Values.admissionPolicy.extraAnnotationKeys }} + ['${ANNOTATION_PREFIX}{{ . }}']{{ end }}`;
  // Backend protocols: core's always, a plugin's only while the plugin is enabled (the controller refuses the
  // others too), plus admissionPolicy.extraBackendProtocols.
  const protocolKey = `${ANNOTATION_PREFIX}${PROTOCOL_ANNOTATION}`;
  const knownProtocols =
    `[${CORE_PROTOCOL_VALUES.map((v) => `'${v.toLowerCase()}'`).join(', ')}]` +
    plugins
      .filter((m) => (m.manifest.protocols ?? []).length > 0)
      .map((m) => `{{ if (index .Values.plugins \`${m.manifest.name}\`).enabled }} + [${m.manifest.protocols!.map((p) => `'${p}'`).join(', ')}]{{ end }}`)
      .join('') +
    `{{ range .Values.admissionPolicy.extraBackendProtocols }} + ['{{ . }}']{{ end }}`;

  const out: string[] = [
    '{{- /* Generated by `npm run generate` from core/src/routes/core-annotations.ts and the plugin manifests (core/src/docgen/admission-policy.ts). Do not edit. */}}',
    '{{- if .Values.admissionPolicy.enabled }}',
    '{{- $class := .Values.ingressClass.name }}',
    'apiVersion: admissionregistration.k8s.io/v1',
    'kind: ValidatingAdmissionPolicy',
    'metadata:',
    '  name: {{ include "warren.fullname" . }}-annotations',
    '  labels:',
    '    {{- include "warren.labels" . | nindent 4 }}',
    'spec:',
    '  failurePolicy: Fail',
    '  matchConstraints:',
    '    resourceRules:',
    '      - apiGroups: ["networking.k8s.io"]',
    '        apiVersions: ["v1"]',
    '        operations: ["CREATE", "UPDATE"]',
    '        resources: ["ingresses"]',
    '  matchConditions:',
    "    # Ingresses of Warren's class, as the controller decides it from the Ingress alone: the legacy annotation wins,",
    '    # then spec.ingressClassName; class-less ones when Warren takes those (default class or watchIngressWithoutClass).',
    '    - name: warren-class',
    `      expression: ${q(
      `has(object.metadata.annotations) && 'kubernetes.io/ingress.class' in object.metadata.annotations && object.metadata.annotations['kubernetes.io/ingress.class'] != '' ? object.metadata.annotations['kubernetes.io/ingress.class'] == '{{ $class }}' : has(object.spec.ingressClassName) && object.spec.ingressClassName != '' ? object.spec.ingressClassName == '{{ $class }}' : {{ or .Values.ingressClass.isDefaultClass .Values.watchIngressWithoutClass }}`,
    )}`,
    '    # Only when warren.dev/ annotations are added or changed, so that updates of an Ingress admitted before the',
    '    # policy existed (finalizers, other annotations, deletion) are never blocked by what it already carries.',
    '    - name: warren-annotations-changed',
    `      expression: ${q(
      `request.operation == 'CREATE' || !(${warrenPairs('object')}.all(p, p in ${warrenPairs('oldObject')}) && ${warrenPairs('oldObject')}.all(p, p in ${warrenPairs('object')}))`,
    )}`,
    '  variables:',
    '    - name: annotations',
    `      expression: ${q(annotationsOf('object'))}`,
    '    - name: known',
    `      expression: ${q(knownKeys)}`,
    '    - name: protocols',
    `      expression: ${q(knownProtocols)}`,
    '  validations:',
    `    - expression: ${q(`variables.annotations.all(k, !k.startsWith('${ANNOTATION_PREFIX}') || k in variables.known)`)}`,
    '      messageExpression: ' +
      q(
        `'annotation ' + variables.annotations.filter(k, k.startsWith('${ANNOTATION_PREFIX}') && !(k in variables.known))[0] + ' is unknown to Warren (or owned by a disabled plugin); see docs/annotations.md'`,
      ),
    '      reason: Invalid',
    `    - expression: ${q(`!('${protocolKey}' in variables.annotations) || variables.annotations['${protocolKey}'].trim().lowerAscii() in variables.protocols`)}`,
    `      message: ${q(`annotation ${protocolKey} names a backend protocol that neither core nor an enabled plugin serves (docs/annotations.md)`)}`,
    '      reason: Invalid',
  ];
  for (const r of rules) {
    if (r.conditions.length === 0) continue;
    const check = r.conditions.join(' && ');
    out.push(`    - expression: ${q(`!('${r.key}' in variables.annotations) || (${check})`)}`);
    out.push(`      message: ${q(r.message)}`);
    out.push('      reason: Invalid');
  }
  out.push(
    '---',
    'apiVersion: admissionregistration.k8s.io/v1',
    'kind: ValidatingAdmissionPolicyBinding',
    'metadata:',
    '  name: {{ include "warren.fullname" . }}-annotations',
    '  labels:',
    '    {{- include "warren.labels" . | nindent 4 }}',
    'spec:',
    '  policyName: {{ include "warren.fullname" . }}-annotations',
    '  validationActions: ["Deny"]',
    '{{- end }}',
  );
  return `${out.join('\n')}\n`;
}
