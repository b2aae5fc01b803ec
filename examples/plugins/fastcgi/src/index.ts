import { definePlugin } from '@warren/core/plugin';
import { FastcgiPlugin } from './fastcgi-plugin.js';
import { manifest } from './manifest.js';

/**
 * Example protocol plugin: the FastCGI backend protocol (`warren.dev/backend-protocol: FCGI`), e.g. for
 * PHP-FPM, added without touching core. See README.md.
 *
 * Enable it with:
 *   extraPlugins:
 *     - package: "@warren-examples/plugin-fastcgi"
 *       config: { documentRoot: /var/www/html }
 */
export default definePlugin({ manifest, plugin: FastcgiPlugin });

export { FastcgiPlugin };
export { FastCgiPool } from './fastcgi-pool.js';
export { FASTCGI_ANNOTATIONS, FASTCGI_PROTOCOL, fastcgiConfigSchema, manifest, type FastcgiConfig } from './manifest.js';
