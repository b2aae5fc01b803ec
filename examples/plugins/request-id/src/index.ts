import { definePlugin, pluginConfigToken, TOKENS, type AnnotationSpec } from '@warren/core/plugin';
import { Lifecycle } from 'tsyringe';
import { z } from 'zod';
import { RequestIdPlugin } from './request-id-plugin.js';

/** A header name: an HTTP token, stored lower-case. */
const headerName = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^[!#$%&'*+\-.^_`|~0-9a-z]+$/, 'an HTTP header name such as "x-request-id"');

/**
 * Settings under `extraPlugins[].config` (strict: an unknown key is an error naming it). Defaults live here
 * and nowhere else.
 */
export const requestIdConfigSchema = z
  .object({
    header: headerName.default('x-request-id').describe('Header that carries the request id'),
    trustIncoming: z
      .boolean()
      .default(true)
      .describe('Keep a well-formed id the client (or the edge) already sent instead of making a new one'),
    echo: z.boolean().default(true).describe('Also return the id to the client in the response'),
  })
  .strict();
export type RequestIdConfig = z.output<typeof requestIdConfigSchema>;

/** Annotations this plugin owns, under `warren.dev/`. Values apply to every route of the Ingress. */
export const REQUEST_ID_ANNOTATIONS: readonly AnnotationSpec[] = [
  {
    key: 'request-id-header',
    description: 'Header that carries the request id for these routes (overrides the plugin setting `header`).',
    schema: headerName,
    example: 'x-correlation-id',
  },
];

/** Where the parsed settings are registered; the plugin class injects them from here. */
export const REQUEST_ID_CONFIG = pluginConfigToken<RequestIdConfig>('request-id');

/**
 * Worked example of a custom Warren plugin (see docs/writing-a-plugin.md): gives every upstream request an id
 * header, keeping a well-formed incoming one, and returns it to the client.
 *
 * Enable it with:
 *   extraPlugins:
 *     - package: "@warren-examples/plugin-request-id"
 *       config: { header: x-request-id }
 */
export default definePlugin({
  manifest: {
    id: 'example.request-id',
    name: 'request-id',
    description: 'Adds a request id header to every upstream request and returns it to the client.',
    coreRange: '^0.1.0',
    kind: 'policy',
    order: 10,
    annotations: REQUEST_ID_ANNOTATIONS,
  },
  configSchema: requestIdConfigSchema,
  register(container, config) {
    container.register(REQUEST_ID_CONFIG, { useValue: config });
    container.register(TOKENS.UpstreamPlugin, { useClass: RequestIdPlugin }, { lifecycle: Lifecycle.ContainerScoped });
  },
});

export { RequestIdPlugin };
