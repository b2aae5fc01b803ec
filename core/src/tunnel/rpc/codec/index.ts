/** A small schema-less Cap'n Proto codec: stream framing, a bounds-checked reader and a single-segment builder. */
export * from './builder.js';
export * from './framing.js';
export * from './protocol-error.js';
export * from './reader.js';
