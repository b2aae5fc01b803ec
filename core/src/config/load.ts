import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ErrorCode, WarrenError } from '../errors.js';
import { configSchema, type Config } from './schema.js';
import { deepFreeze } from './freeze.js';
import { PARSED_ONCE } from './parse-once.js';

/**
 * Where settings come from, lowest precedence first:
 *   1. defaults in `schema.ts`
 *   2. the config file (`--config FILE` or `WARREN_CONFIG`), YAML or JSON
 *   3. environment variables `WARREN_<SECTION>__<KEY>` (path segments separated by `__`, words by `_`),
 *      e.g. `WARREN_PROXY__CONNECT_TIMEOUT=5s` sets `proxy.connectTimeout`; values are read as YAML scalars
 *   4. flags: `--set proxy.connectTimeout=5s` (repeatable) and the named shortcuts of `main.ts`
 * Later sources override earlier ones key by key (objects merge, arrays and scalars replace).
 */
export interface ConfigSources {
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** `path=value` assignments from flags, applied last, in order. */
  sets?: readonly string[];
  /** An already-built object layered between the file and the environment (used by `--local`). */
  overlay?: Record<string, unknown>;
}

const ENV_PREFIX = 'WARREN_';
const NON_SETTING_ENV = new Set(['WARREN_CONFIG', 'WARREN_TOOLS_DIR', 'WARREN_TEST_BIN', 'WARREN_SKIP_TEST_BINARIES']);
/**
 * Variables Kubernetes injects for a Service named `warren` (service links: `WARREN_SERVICE_HOST`,
 * `WARREN_PORT_10254_TCP_ADDR`, …). They are not settings and must not stop the controller from starting.
 */
const SERVICE_LINK_ENV = /^WARREN_(SERVICE_(HOST|PORT)(_[A-Z0-9_]+)?|PORT(_\d+_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?)?)$/;

export function loadConfig(sources: ConfigSources = {}): Readonly<Config> {
  let raw: Record<string, unknown> = {};
  if (sources.file) raw = readConfigFile(sources.file);
  if (sources.overlay) raw = merge(raw, sources.overlay);
  for (const [path, value] of envAssignments(sources.env ?? {})) raw = setPath(raw, path, value, `env ${envName(path)}`);
  for (const assignment of sources.sets ?? []) {
    const eq = assignment.indexOf('=');
    if (eq <= 0) throw configError(`flag --set "${assignment}": expected key.path=value`);
    raw = setPath(raw, assignment.slice(0, eq).split('.'), parseScalar(assignment.slice(eq + 1)), `flag --set ${assignment}`);
  }
  return parseConfig(raw);
}

/** Validates a raw settings object against the schema and deep-freezes the result. */
export function parseConfig(raw: unknown): Readonly<Config> {
  const result = configSchema.safeParse(raw, PARSED_ONCE);
  if (!result.success) throw configError(formatIssues(result.error.issues, raw));
  return deepFreeze(result.data);
}

export function formatIssues(issues: readonly z.core.$ZodIssue[], raw: unknown): string {
  return issues
    .map((issue) => {
      const path = issue.path.map(String);
      if (issue.code === 'unrecognized_keys') {
        return issue.keys.map((k) => `unknown setting "${[...path, k].join('.')}"`).join('; ');
      }
      const key = path.join('.') || '(root)';
      const value = valueAt(raw, path);
      const shown = value === undefined ? 'nothing' : JSON.stringify(value);
      return `setting "${key}": got ${shown}, ${issue.message}`;
    })
    .join('; ');
}

function configError(message: string): WarrenError {
  return new WarrenError(ErrorCode.ConfigInvalid, `invalid configuration: ${message}`, { terminal: true });
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw configError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (err) {
    throw configError(`config file ${file} is not valid YAML: ${(err as Error).message}`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw configError(`config file ${file} must hold a mapping`);
  return parsed as Record<string, unknown>;
}

function* envAssignments(env: NodeJS.ProcessEnv): Generator<[string[], unknown]> {
  const names = Object.keys(env)
    .filter((n) => n.startsWith(ENV_PREFIX) && !NON_SETTING_ENV.has(n) && !SERVICE_LINK_ENV.test(n))
    .sort();
  for (const name of names) {
    const path = name
      .slice(ENV_PREFIX.length)
      .split('__')
      .map((segment) => segment.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()));
    yield [path, parseScalar(env[name] ?? '')];
  }
}

function envName(path: string[]): string {
  return ENV_PREFIX + path.map((p) => p.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()).join('__');
}

function parseScalar(text: string): unknown {
  try {
    return parseYaml(text);
  } catch {
    return text;
  }
}

function setPath(obj: Record<string, unknown>, path: string[], value: unknown, source: string): Record<string, unknown> {
  if (path.length === 0 || path.some((p) => p === '')) throw configError(`${source}: empty key`);
  const out: Record<string, unknown> = { ...obj };
  let cursor = out;
  for (let i = 0; i < path.length - 1; i++) {
    const key = path[i]!;
    const next = cursor[key];
    const copy = next && typeof next === 'object' && !Array.isArray(next) ? { ...(next as Record<string, unknown>) } : {};
    cursor[key] = copy;
    cursor = copy;
  }
  cursor[path[path.length - 1]!] = value;
  return out;
}

function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && b && typeof b === 'object' && !Array.isArray(b)
        ? merge(b as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

function valueAt(raw: unknown, path: string[]): unknown {
  let cursor: unknown = raw;
  for (const key of path) {
    if (cursor === null || typeof cursor !== 'object') return undefined;
    cursor = (cursor as Record<string, unknown>)[key];
  }
  return cursor;
}
