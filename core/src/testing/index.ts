/** `@warren/core/testing`: helpers for tests of core and of plugins (certificates, loopback servers, fixtures). */
export * from './certs.js';
