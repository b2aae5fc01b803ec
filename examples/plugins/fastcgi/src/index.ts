import { definePlugin, pluginConfigToken, TOKENS } from '@warren/core/plugin';
import { Lifecycle } from 'tsyringe';
import { FastcgiPlugin } from './fastcgi-plugin.js';
import { fastcgiConfigSchema, manifest, type FastcgiConfig } from './manifest.js';

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
  manifest,
  configSchema: fastcgiConfigSchema,
  register(container, config) {
    container.register(FASTCGI_CONFIG, { useValue: config });
    container.register(TOKENS.UpstreamPlugin, { useClass: FastcgiPlugin }, { lifecycle: Lifecycle.ContainerScoped });
  },
});

export { FastcgiPlugin };
export { FastCgiPool } from './fastcgi-pool.js';
export { FASTCGI_ANNOTATIONS, FASTCGI_PROTOCOL, fastcgiConfigSchema, manifest, type FastcgiConfig } from './manifest.js';
