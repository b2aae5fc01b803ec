import { definePlugin } from '@warren/core/plugin';
import { GrpcPlugin } from './grpc-plugin.js';
import { manifest } from './manifest.js';

export default definePlugin({ manifest, plugin: GrpcPlugin });

export { GrpcPlugin };
export { GRPC_DEFAULT_TIMEOUT, GRPC_IDLE_TIMEOUT, manifest, type GrpcConfig } from './manifest.js';
export { parseGrpcTimeout } from './grpc-timeout.js';
