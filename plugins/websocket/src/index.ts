import { definePlugin } from '@warren/core/plugin';
import { WebsocketPlugin } from './websocket-plugin.js';
import { manifest } from './manifest.js';

export default definePlugin({ manifest, plugin: WebsocketPlugin });

export { WebsocketPlugin };
export { WEBSOCKET_IDLE_TIMEOUT, manifest, type WebsocketConfig } from './manifest.js';
