import { defineAnnotation, defineManifest, type PluginConfig } from '@warren/core/plugin';
import { z } from 'zod';

/** A header name: an HTTP token, stored lower-case. */
const headerName = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^[!#$%&'*+\-.^_`|~0-9a-z]+$/, 'an HTTP header name such as "x-request-id"');

/** `warren.dev/request-id-header`: values apply to every route of the Ingress. Read it with `REQUEST_ID_HEADER.get(route)`. */
export const REQUEST_ID_HEADER = defineAnnotation({
  key: 'request-id-header',
  description: 'Header that carries the request id for these routes (overrides the plugin setting `header`).',
  schema: headerName,
  example: 'x-correlation-id',
});

/**
 * Who the plugin is, written once: core checks the manifest before any plugin code runs, parses the settings under
 * `extraPlugins[].config` with `configSchema` (strict: an unknown key is an error naming it; defaults live here and
 * nowhere else) and hands them to the class through `manifest.configToken`.
 *
 * Enable it with:
 *   extraPlugins:
 *     - package: "@warren-examples/plugin-request-id"
 *       config: { header: x-request-id }
 */
export const manifest = defineManifest({
  id: 'example.request-id',
  name: 'request-id',
  description: 'Adds a request id header to every upstream request and returns it to the client.',
  coreRange: '^0.1.0',
  kind: 'policy',
  order: 10,
  annotations: [REQUEST_ID_HEADER],
  configSchema: z
    .object({
      header: headerName.default('x-request-id').describe('Header that carries the request id'),
      trustIncoming: z.boolean().default(true).describe('Keep a well-formed id the client (or the edge) already sent instead of making a new one'),
      echo: z.boolean().default(true).describe('Also return the id to the client in the response'),
    })
    .strict(),
});

export type RequestIdConfig = PluginConfig<typeof manifest>;
