import { definePlugin } from '@warren/core/plugin';
import { SsePlugin } from './sse-plugin.js';
import { manifest } from './manifest.js';

export default definePlugin({ manifest, plugin: SsePlugin });

export { SsePlugin, SseStreamHandler, atEventBoundary } from './sse-plugin.js';
export { SSE_HEARTBEAT, SSE_IDLE_TIMEOUT, manifest, type SseConfig } from './manifest.js';
