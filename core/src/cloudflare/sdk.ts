import { createRequire } from 'node:module';
import type Cloudflare from 'cloudflare';

const require = createRequire(import.meta.url);
let loaded: typeof Cloudflare | undefined;

/**
 * The official `cloudflare` SDK, loaded on first use. Token mode without the DNS or firewall plugin never calls
 * the API, so it never pays for the SDK's module graph (tens of MB of RSS). Loaded synchronously through
 * `require` of its ES module build, which is the same module instance a static `import 'cloudflare'` gets, so
 * `instanceof` against its error classes holds everywhere.
 */
export function cloudflareSdk(): typeof Cloudflare {
  return (loaded ??= (require('cloudflare/index.mjs') as { default: typeof Cloudflare }).default);
}

/** The SDK if something loaded it already; an error cannot come from the SDK before then. */
export function loadedCloudflareSdk(): typeof Cloudflare | undefined {
  return loaded;
}
