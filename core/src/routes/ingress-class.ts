import type { V1Ingress, V1IngressClass } from '@kubernetes/client-node';

/** Legacy class annotation; when present it takes precedence over `spec.ingressClassName`. */
export const LEGACY_CLASS_ANNOTATION = 'kubernetes.io/ingress.class';
/** IngressClass annotation marking the cluster's default class. */
export const DEFAULT_CLASS_ANNOTATION = 'ingressclass.kubernetes.io/is-default-class';

/** The `ingressClass` settings the class decision needs. */
export interface IngressClassConfig {
  /** Warren's IngressClass name; the legacy annotation may name it directly. */
  readonly name: string;
  /** IngressClass `spec.controller` value Warren owns. */
  readonly controller: string;
  /** Take classless Ingresses when the cluster has no default IngressClass. */
  readonly watchWithoutClass: boolean;
}

/**
 * Whether an Ingress is Warren's, and a warning when its class fields disagree:
 *  1. the legacy annotation `kubernetes.io/ingress.class`, when set, decides: it is ours when it equals our
 *     class name or names an IngressClass whose `spec.controller` is ours;
 *  2. else `spec.ingressClassName` is ours when it names an IngressClass whose `spec.controller` is ours (a
 *     class name alone never suffices);
 *  3. else (no class at all) it is ours when a default IngressClass (`is-default-class: "true"`) with our
 *     controller exists, or, when there is no default class at all, when `watchWithoutClass` is on.
 */
export function classifyIngress(
  ingress: V1Ingress,
  classes: ReadonlyMap<string, V1IngressClass>,
  settings: IngressClassConfig,
  defaultClasses: readonly V1IngressClass[],
): { owned: boolean; conflict?: string | undefined } {
  const annotation = ingress.metadata?.annotations?.[LEGACY_CLASS_ANNOTATION];
  const field = ingress.spec?.ingressClassName;
  if (typeof annotation === 'string' && annotation !== '') {
    const owned = annotation === settings.name || isOurs(classes.get(annotation), settings);
    const conflict =
      owned && typeof field === 'string' && field !== '' && field !== annotation
        ? `annotation ${LEGACY_CLASS_ANNOTATION}="${annotation}" and spec.ingressClassName="${field}" disagree; the annotation wins`
        : undefined;
    return { owned, conflict };
  }
  if (typeof field === 'string' && field !== '') return { owned: isOurs(classes.get(field), settings) };
  if (defaultClasses.length > 0) return { owned: defaultClasses.some((c) => isOurs(c, settings)) };
  return { owned: settings.watchWithoutClass };
}

/** IngressClasses marked as the cluster default, in name order. */
export function defaultIngressClasses(classes: ReadonlyMap<string, V1IngressClass>): V1IngressClass[] {
  const found: V1IngressClass[] = [];
  for (const c of classes.values()) {
    if (c?.metadata?.annotations?.[DEFAULT_CLASS_ANNOTATION] === 'true') found.push(c);
  }
  return found.sort((a, b) => ((a.metadata?.name ?? '') < (b.metadata?.name ?? '') ? -1 : 1));
}

function isOurs(ingressClass: V1IngressClass | undefined, settings: IngressClassConfig): boolean {
  return ingressClass?.spec?.controller === settings.controller;
}
