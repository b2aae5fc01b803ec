import { definePlugin } from '@warren/core/plugin';
import { TlsPlugin } from './tls-plugin.js';
import { manifest } from './manifest.js';

export default definePlugin({ manifest, plugin: TlsPlugin });

export { TlsPlugin };
export { PROXY_SSL_CLIENT_SECRET, PROXY_SSL_NAME, PROXY_SSL_SECRET, PROXY_SSL_VERIFY, manifest, type TlsConfig } from './manifest.js';
