import { z } from 'zod';
import { DURATION_PATTERN } from '../config/duration.js';

/** The subset of JSON Schema (draft-07) that zod's `toJSONSchema` emits and the generators read. */
export interface JsonSchema {
  type?: string | string[];
  description?: string;
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  pattern?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  [key: string]: unknown;
}

/**
 * JSON Schema of a zod type as a user writes it (`io: 'input'`: before defaults and transforms), draft-07 as
 * Helm understands it. Types JSON Schema cannot express (custom checks) become unconstrained instead of failing.
 */
export function toInputJsonSchema(schema: z.ZodType): JsonSchema {
  return z.toJSONSchema(schema, { target: 'draft-7', io: 'input', unrepresentable: 'any' }) as JsonSchema;
}

/** The pattern `config/duration.ts` emits; a schema with it is a duration. */
const DURATION_JSON_PATTERN = toInputJsonSchema(z.string().regex(DURATION_PATTERN)).pattern;

/** True for the JSON Schema of `duration()`: a duration string or a number of milliseconds. */
export function isDurationSchema(schema: JsonSchema): boolean {
  return Array.isArray(schema.anyOf) && schema.anyOf.some((s) => s.type === 'string' && s.pattern === DURATION_JSON_PATTERN);
}

/** Writes milliseconds the way users write durations: `90s`, `2m`, `1h`, `250ms`. */
export function formatDuration(ms: number): string {
  if (ms !== 0 && ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms !== 0 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms !== 0 && ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

const HOST_PORT_PATTERN = '^(\\[[0-9a-fA-F:.]+\\]|[^\\s:/]+):\\d{1,5}$';

/** A short human description of a schema's type, for reference tables (plain text, no Markdown). */
export function describeType(schema: JsonSchema): string {
  if (isDurationSchema(schema)) return 'duration';
  if (schema.enum) return `one of ${schema.enum.map((v) => JSON.stringify(v)).join(', ')}`;
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  const variants = schema.anyOf ?? schema.oneOf;
  if (variants) return variants.map(describeType).join(' or ');
  const type = Array.isArray(schema.type) ? schema.type.join(' or ') : schema.type;
  switch (type) {
    case 'string':
      if (schema.pattern === HOST_PORT_PATTERN) return 'host:port';
      if (schema.format === 'uri') return 'URL';
      return 'string';
    case 'integer':
    case 'number':
      return `${type}${range(schema)}`;
    case 'array':
      return `list of ${schema.items ? describeType(schema.items) : 'anything'}`;
    case 'object':
      if (schema.properties) return 'object';
      if (schema.additionalProperties && typeof schema.additionalProperties === 'object') {
        return `map of ${describeType(schema.additionalProperties)}`;
      }
      return 'object';
    case undefined:
      return 'any';
    default:
      return type;
  }
}

function range(schema: JsonSchema): string {
  const low = schema.minimum ?? (schema.exclusiveMinimum !== undefined ? schema.exclusiveMinimum + (schema.type === 'integer' ? 1 : 0) : undefined);
  const high = schema.maximum !== undefined && schema.maximum < Number.MAX_SAFE_INTEGER ? schema.maximum : undefined;
  if (low !== undefined && high !== undefined) return ` ${low}–${high}`;
  if (low !== undefined) return ` ≥ ${low}`;
  if (high !== undefined) return ` ≤ ${high}`;
  return '';
}

/** One documented setting: a leaf of a schema, or an object that has no documented leaves. */
export interface SchemaRow {
  /** Dotted path; list items appear as `name[]`. */
  readonly path: string;
  readonly schema: JsonSchema;
  /** True when the key may be left out (it has a default or is optional). */
  readonly optional: boolean;
}

/**
 * Flattens an object schema into rows, depth first in declaration order. Objects with declared properties
 * are expanded (and get no row of their own unless `keepObjects`), lists of objects expand as `path[]`.
 */
export function flattenSchema(schema: JsonSchema, prefix = '', keepObjects = false): SchemaRow[] {
  const rows: SchemaRow[] = [];
  const required = new Set(schema.required ?? []);
  for (const [key, child] of Object.entries(schema.properties ?? {})) {
    const path = prefix ? `${prefix}.${key}` : key;
    const optional = !required.has(key) || child.default !== undefined;
    if (child.type === 'object' && child.properties) {
      // An optional object with required keys gets its own row, so that "required" on its keys reads right.
      if (keepObjects || (child.required?.length && optional)) rows.push({ path, schema: child, optional });
      rows.push(...flattenSchema(child, path, keepObjects));
    } else if (child.type === 'array' && child.items?.type === 'object' && child.items.properties) {
      rows.push({ path, schema: child, optional });
      rows.push(...flattenSchema(child.items, `${path}[]`, keepObjects));
    } else {
      rows.push({ path, schema: child, optional });
    }
  }
  return rows;
}

/** Reads a dotted path (no list segments) from a plain value. */
export function valueAtPath(value: unknown, path: string): unknown {
  let cursor = value;
  for (const key of path.split('.')) {
    if (cursor === null || typeof cursor !== 'object' || key.endsWith('[]')) return undefined;
    cursor = (cursor as Record<string, unknown>)[key];
  }
  return cursor;
}

/** Escapes text for a Markdown table cell. */
export function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n+/g, ' ');
}
