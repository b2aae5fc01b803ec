import { readFileSync } from 'node:fs';

/** `@warren/core`'s own version, read from its package.json; plugins' `coreRange` is checked against it. */
export const CORE_VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
