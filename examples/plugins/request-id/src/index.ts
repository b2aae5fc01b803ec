import { definePlugin } from '@warren/core/plugin';
import { manifest } from './manifest.js';
import { RequestIdPlugin } from './request-id-plugin.js';

/**
 * Worked example of a custom Warren plugin (see docs/writing-a-plugin.md): gives every upstream request an id
 * header, keeping a well-formed incoming one, and returns it to the client. Kind `policy`, so the class is an
 * `UpstreamPlugin`; core registers it.
 */
export default definePlugin({ manifest, plugin: RequestIdPlugin });

export { RequestIdPlugin };
export { REQUEST_ID_HEADER, manifest, type RequestIdConfig } from './manifest.js';
