/** `@warren/core/testing`: helpers for tests of core and of plugins (loopback servers, fixtures). */
export {};
