// Two functions of semver, not its entry, which loads the whole package (a few ms of every start-up).
import satisfies from 'semver/functions/satisfies.js';
import validRange from 'semver/ranges/valid.js';
import { ErrorCode, WarrenError } from '../errors.js';
import { PLUGIN_KINDS, type PluginManifest } from '../plugin-api/manifest.js';
import type { PluginClass, PluginModule } from '../plugin-api/module.js';
import type { UpstreamPlugin } from '../plugin-api/upstream.js';
import type { PluginLifecycle } from '../plugin-api/lifecycle.js';
import { CORE_VERSION } from '../version.js';

/** A plugin module to check, with where it came from (`builtin`, a package name, `test:…`). */
export interface PluginCandidate {
  readonly module: PluginModule;
  readonly source: string;
}

/** What the checks of one set have seen so far: owner of each id, annotation key and protocol. */
interface Claims {
  readonly ids: Map<string, string>;
  readonly annotations: Map<string, string>;
  readonly protocols: Map<string, string>;
}

/** One named check of a candidate; throws a terminal WarrenError naming the plugin and the field. */
type Check = (candidate: PluginCandidate, claims: Claims) => void;

const ID_PATTERN = /^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)+$/;

/** Annotation keys core itself owns (see `routes/core-annotations.ts`); plugins may not claim them. */
export const CORE_ANNOTATION_KEYS: ReadonlySet<string> = new Set([
  'backend-protocol',
  'upstream-host',
  'connect-timeout',
  'response-header-timeout',
  'idle-timeout',
  'request-body-timeout',
  'upstream-queue-timeout',
  'load-balancing',
]);

/**
 * The hooks of {@link UpstreamPlugin}; a class of an upstream kind must implement at least one. Typed as a record
 * so that a hook added to the interface must be added here too.
 */
const UPSTREAM_HOOKS: Readonly<Record<Exclude<keyof UpstreamPlugin, keyof PluginLifecycle>, true>> = {
  bind: true,
  configureTransport: true,
  createPool: true,
  interceptor: true,
  mapError: true,
  onUpgrade: true,
  upgradeProfile: true,
};

function checkId({ module: { manifest: m }, source }: PluginCandidate): void {
  if (!ID_PATTERN.test(m.id)) throw loadError(source, `manifest.id "${m.id}" must be namespaced and lower-case, like "upstream.websocket"`);
}

function checkKind({ module: { manifest: m }, source }: PluginCandidate): void {
  if (!PLUGIN_KINDS.includes(m.kind)) throw loadError(source, `manifest.kind "${m.kind}" must be one of ${PLUGIN_KINDS.join(', ')}`);
}

function checkOrder({ module: { manifest: m }, source }: PluginCandidate): void {
  if (!Number.isInteger(m.order)) throw loadError(source, `manifest.order must be an integer`);
}

function checkCoreRange({ module: { manifest: m }, source }: PluginCandidate): void {
  if (validRange(m.coreRange) === null) throw loadError(source, `manifest.coreRange "${m.coreRange}" is not a semver range`);
  if (!satisfies(CORE_VERSION, m.coreRange, { includePrerelease: true })) {
    throw new WarrenError(ErrorCode.PluginVersion, `plugin ${m.id} (${source}) supports @warren/core ${m.coreRange}, but this is ${CORE_VERSION}`, {
      terminal: true,
    });
  }
}

function checkUniqueId({ module: { manifest: m }, source }: PluginCandidate, claims: Claims): void {
  const other = claims.ids.get(m.id);
  if (other) throw new WarrenError(ErrorCode.PluginConflict, `plugin id ${m.id} is provided by both ${other} and ${source}`, { terminal: true });
  claims.ids.set(m.id, source);
}

function checkAnnotationClaims({ module: { manifest: m } }: PluginCandidate, claims: Claims): void {
  for (const a of m.annotations ?? []) {
    const owner = claims.annotations.get(a.key) ?? (CORE_ANNOTATION_KEYS.has(a.key) ? 'core' : undefined);
    if (owner) throw new WarrenError(ErrorCode.PluginConflict, `annotation warren.dev/${a.key} is claimed by ${owner} and ${m.id}`, { terminal: true });
    claims.annotations.set(a.key, m.id);
  }
}

function checkProtocolClaims({ module: { manifest: m } }: PluginCandidate, claims: Claims): void {
  for (const p of m.protocols ?? []) {
    const owner = claims.protocols.get(p) ?? (p === 'http' ? 'core' : undefined);
    if (owner) throw new WarrenError(ErrorCode.PluginConflict, `backend protocol "${p}" is claimed by ${owner} and ${m.id}`, { terminal: true });
    claims.protocols.set(p, m.id);
  }
}

/** The class implements what its kind calls for: `onRoutesChanged` for control, an upstream hook otherwise. */
function checkPluginClass({ module, source }: PluginCandidate): void {
  const m = module.manifest;
  if (module.kind !== m.kind) throw classError(m, source, `module.kind "${module.kind}" differs from manifest.kind "${m.kind}"; make the module with definePlugin`);
  if (module.kind === 'control') {
    if (!hasMethod(module.plugin, 'onRoutesChanged')) {
      throw classError(m, source, `kind "control" needs a ControlPlugin class with onRoutesChanged(table, ctx); ${className(module.plugin)} has none`);
    }
    if (module.upstream !== undefined) checkUpstreamClass(m, source, module.upstream, 'upstream');
  } else {
    checkUpstreamClass(m, source, module.plugin, 'plugin');
  }
}

function checkUpstreamClass(m: PluginManifest, source: string, cls: PluginClass<UpstreamPlugin>, field: string): void {
  const hooks = Object.keys(UPSTREAM_HOOKS);
  if (!hooks.some((hook) => hasMethod(cls, hook))) {
    throw classError(m, source, `${field} must be an UpstreamPlugin class with at least one of ${hooks.join(', ')}; ${className(cls)} has none`);
  }
}

/** Checks that run on each candidate in turn, in this order. */
const CHECKS: readonly Check[] = [checkId, checkKind, checkOrder, checkCoreRange, checkUniqueId, checkAnnotationClaims, checkProtocolClaims, checkPluginClass];

/**
 * Validates a set of plugin modules as if they were enabled together; throws the first problem found. Runs before
 * any plugin code: it reads manifests and class prototypes only.
 */
export function checkPlugins(candidates: readonly PluginCandidate[]): void {
  const claims: Claims = { ids: new Map(), annotations: new Map(), protocols: new Map() };
  for (const candidate of candidates) for (const check of CHECKS) check(candidate, claims);
  for (const {
    module: { manifest: m },
    source,
  } of candidates) {
    for (const dep of m.dependsOn ?? []) {
      if (!claims.ids.has(dep)) {
        throw new WarrenError(ErrorCode.PluginDependency, `plugin ${m.id} (${source}) needs plugin ${dep}, which is not enabled`, { terminal: true });
      }
    }
  }
}

function hasMethod(cls: unknown, name: string): boolean {
  const prototype: unknown = typeof cls === 'function' ? cls.prototype : undefined;
  return typeof prototype === 'object' && prototype !== null && typeof Reflect.get(prototype, name) === 'function';
}

function className(cls: unknown): string {
  return typeof cls === 'function' && cls.name ? `class ${cls.name}` : 'it';
}

function classError(m: PluginManifest, source: string, message: string): WarrenError {
  return new WarrenError(ErrorCode.PluginLoad, `plugin ${m.id} (${source}): ${message}`, { terminal: true });
}

export function loadError(source: string, message: string, cause?: unknown): WarrenError {
  return new WarrenError(ErrorCode.PluginLoad, `plugin ${source}: ${message}`, { terminal: true, cause });
}
