import { defineAnnotation, defineManifest, type PluginConfig } from '@warren/core/plugin';
import { z } from 'zod';

/** Who the fastcgi plugin is: its manifest, settings and annotations, with their bounds and defaults (defined here only). */

const absolutePath = z
  .string()
  .trim()
  .max(1024)
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this check refuses
  .regex(/^\/[^\0-\x1f\x7f]*$/, 'an absolute path such as "/var/www/html"')
  .refine((p) => !p.split('/').some((e) => e === '.' || e === '..'), 'a path without "." or ".." elements')
  .transform((p) => p.replace(/\/+$/, ''));

const fileName = z
  .string()
  .trim()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/, 'a file name such as "index.php" (letters, digits, ".", "_", "-"; no "/")');

/** CGI variable names: upper-case by convention, but PHP applications also read mixed-case ones. */
const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this check refuses
const PARAM_VALUE = /^[^\0-\x08\x0a-\x1f\x7f]{0,4096}$/;
const MAX_PARAMS = 64;
const PARAMS_HINT = 'lines of NAME=value (NAME: letters, digits, "_"; value: up to 4096 characters, no control characters)';

/** Parses `NAME=value` lines (blank lines and lines starting with `#` skipped). */
const paramLines = z.string().transform((text, ctx) => {
  const out: Array<readonly [string, string]> = [];
  const seen = new Set<string>();
  for (const [i, line] of text.split(/\r?\n/).entries()) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const eq = trimmed.indexOf('=');
    const name = eq > 0 ? trimmed.slice(0, eq).trim() : '';
    const value = eq > 0 ? trimmed.slice(eq + 1).trim() : '';
    const problem = !PARAM_NAME.test(name)
      ? `line ${i + 1} does not start with a NAME= (${PARAMS_HINT})`
      : !PARAM_VALUE.test(value)
        ? `line ${i + 1} (${name}) has a value that is too long or contains control characters`
        : seen.has(name)
          ? `line ${i + 1} repeats ${name}`
          : undefined;
    if (problem) {
      ctx.addIssue({ code: 'custom', message: problem });
      return z.NEVER;
    }
    seen.add(name);
    out.push([name, value]);
  }
  if (out.length > MAX_PARAMS) {
    ctx.addIssue({ code: 'custom', message: `${out.length} params; at most ${MAX_PARAMS}` });
    return z.NEVER;
  }
  return Object.freeze(out);
});

const byteBound = (min: number, max: number, fallback: number, what: string) => z.number().int().min(min).max(max).default(fallback).describe(what);

/** Settings under `extraPlugins[].config` (strict: an unknown key is an error naming it). */
export const fastcgiConfigSchema = z
  .object({
    documentRoot: absolutePath
      .default('/var/www/html')
      .describe("Where the scripts are in the application's file system: DOCUMENT_ROOT, and SCRIPT_FILENAME = documentRoot + SCRIPT_NAME"),
    index: fileName.default('index.php').describe('File appended to request paths ending in "/"'),
    scriptExtension: z
      .string()
      .regex(/^\.[A-Za-z0-9]{1,16}$/, 'an extension such as ".php"')
      .default('.php')
      .describe('A path element ending in this ends SCRIPT_NAME; the rest of the path is PATH_INFO'),
    params: z
      .record(z.string().regex(PARAM_NAME, 'a CGI variable name (letters, digits, "_")'), z.string().regex(PARAM_VALUE, 'up to 4096 characters, no control characters'))
      .refine((r) => Object.keys(r).length <= MAX_PARAMS, `at most ${MAX_PARAMS} params`)
      .default({})
      .describe('Extra params sent with every request; they replace computed ones of the same name'),
    maxResponseHeaderBytes: byteBound(1024, 1 << 20, 64 * 1024, 'Largest CGI response head accepted from the application'),
    maxParamsBytes: byteBound(1024, 1 << 20, 64 * 1024, 'Largest encoded PARAMS of one request (431 beyond)'),
    maxStderrBytes: byteBound(0, 1 << 20, 8 * 1024, 'STDERR bytes of one request kept for its log line; the rest is counted'),
    maxUnsizedBodyBytes: byteBound(0, 64 << 20, 1 << 20, 'Largest request body without Content-Length, read whole to send CONTENT_LENGTH (413 beyond)'),
  })
  .strict();

/** `warren.dev/fastcgi-index` (values of these annotations apply to every route of the Ingress). */
export const FASTCGI_INDEX = defineAnnotation({
  key: 'fastcgi-index',
  description: 'File appended to request paths ending in "/" (overrides the plugin setting `index`; ingress-nginx\'s fastcgi-index).',
  schema: fileName,
  example: 'index.php',
});

/** `warren.dev/fastcgi-script-root`. */
export const FASTCGI_SCRIPT_ROOT = defineAnnotation({
  key: 'fastcgi-script-root',
  description: "Document root of the scripts in the application's file system (overrides the plugin setting `documentRoot`).",
  schema: absolutePath,
  example: '/var/www/html/public',
});

/** `warren.dev/fastcgi-params`, parsed to `[name, value]` pairs. */
export const FASTCGI_PARAMS = defineAnnotation({
  key: 'fastcgi-params',
  description:
    "Extra FastCGI params, one NAME=value per line, replacing computed ones of the same name and the plugin setting `params` (ingress-nginx's fastcgi-params-configmap, inline).",
  schema: paramLines,
  example: 'SCRIPT_FILENAME=/var/www/html/public/index.php',
});

/** Annotations this plugin owns, under `warren.dev/`. */
export const FASTCGI_ANNOTATIONS = [FASTCGI_INDEX, FASTCGI_SCRIPT_ROOT, FASTCGI_PARAMS] as const;

/** The backend protocol this plugin serves: `warren.dev/backend-protocol: FCGI`. */
export const FASTCGI_PROTOCOL = 'fcgi';

export const manifest = defineManifest({
  id: 'example.fastcgi',
  name: 'fastcgi',
  description: 'Serves the FastCGI backend protocol (backend-protocol FCGI), e.g. PHP-FPM.',
  coreRange: '^0.1.0',
  kind: 'protocol',
  order: 50,
  annotations: FASTCGI_ANNOTATIONS,
  protocols: [FASTCGI_PROTOCOL],
  configSchema: fastcgiConfigSchema,
});

export type FastcgiConfig = PluginConfig<typeof manifest>;
