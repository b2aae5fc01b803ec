import { definePlugin, pluginConfigToken, TOKENS } from '@warren/core/plugin';
import { Lifecycle } from 'tsyringe';
import { FASTCGI_PROTOCOL, FastcgiPlugin } from './fastcgi-plugin.js';
import { FASTCGI_ANNOTATIONS, fastcgiConfigSchema, type FastcgiConfig } from './settings.js';

/** Where the parsed settings are registered; the plugin class injects them from here. */
export const FASTCGI_CONFIG = pluginConfigToken<FastcgiConfig>('fastcgi');

/**
 * Example protocol plugin: the FastCGI backend protocol (`warren.dev/backend-protocol: FCGI`), e.g. for
 * PHP-FPM, added without touching core. See README.md.
 *
 * Enable it with:
 *   extraPlugins:
 *     - package: "@warren-examples/plugin-fastcgi"
 *       config: { documentRoot: /var/www/html }
 */
export default definePlugin({
  manifest: {
    id: 'example.fastcgi',
    name: 'fastcgi',
    description: 'Serves the FastCGI backend protocol (backend-protocol FCGI), e.g. PHP-FPM.',
    coreRange: '^0.1.0',
    kind: 'protocol',
    order: 50,
    annotations: FASTCGI_ANNOTATIONS,
    protocols: [FASTCGI_PROTOCOL],
  },
  configSchema: fastcgiConfigSchema,
  register(container, config) {
    container.register(FASTCGI_CONFIG, { useValue: config });
    container.register(TOKENS.UpstreamPlugin, { useClass: FastcgiPlugin }, { lifecycle: Lifecycle.ContainerScoped });
  },
});

export { FastcgiPlugin, FASTCGI_PROTOCOL };
export { FastCgiPool } from './fastcgi-pool.js';
export { FASTCGI_ANNOTATIONS, fastcgiConfigSchema, type FastcgiConfig } from './settings.js';
