import { definePlugin } from '@warren/core/plugin';
import { KeepalivePlugin } from './keepalive-plugin.js';
import { manifest } from './manifest.js';

export default definePlugin({ manifest, plugin: KeepalivePlugin });

export { KeepalivePlugin };
export { KEEPALIVE_CONNECTIONS, KEEPALIVE_TIMEOUT, manifest, type KeepaliveConfig } from './manifest.js';
