import { definePlugin } from '@warren/core/plugin';
import { Http2Plugin } from './http2-plugin.js';
import { manifest } from './manifest.js';

export default definePlugin({ manifest, plugin: Http2Plugin });

export { Http2Plugin };
export { MAX_CONCURRENT_STREAMS, manifest, type Http2Config } from './manifest.js';
