/** `@warren/core/testing`: helpers for tests of core and of plugins (certificates, loopback servers, fixtures). */
export * from '../edge-simulator/certs.js';
export * from './fake-cloudflare/index.js';
export * from '../proxy/testing.js';
export * from './proxy-harness.js';
export * from './grpc-json.js';
