import { readFileSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import { ErrorCode, WarrenError } from '../errors.js';
import { rememberSecret } from './redact.js';

/** True when an API token is configured (file setting or environment), without reading it. */
export function hasApiToken(config: Readonly<Config>['cloudflare'], env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(config.apiTokenFile) || Boolean(env.CLOUDFLARE_API_TOKEN?.trim());
}

/**
 * Reads the Cloudflare API token: the file named by `cloudflare.apiTokenFile` (whitespace trimmed; read again on
 * every call so a rotated Secret takes effect), else env `CLOUDFLARE_API_TOKEN`. The value is remembered for
 * redaction and never appears in an error message.
 */
export function readApiToken(config: Readonly<Config>['cloudflare'], env: NodeJS.ProcessEnv = process.env): string {
  let token: string | undefined;
  if (config.apiTokenFile) {
    try {
      token = readFileSync(config.apiTokenFile, 'utf8').trim();
    } catch (err) {
      throw new WarrenError(
        ErrorCode.ConfigInvalid,
        `cannot read the Cloudflare API token file named by cloudflare.apiTokenFile (${config.apiTokenFile}): ${(err as NodeJS.ErrnoException).code ?? 'read error'}`,
        { terminal: true },
      );
    }
    if (!token) throw new WarrenError(ErrorCode.ConfigInvalid, `the Cloudflare API token file ${config.apiTokenFile} is empty`, { terminal: true });
  } else {
    token = env.CLOUDFLARE_API_TOKEN?.trim();
  }
  if (!token) {
    throw new WarrenError(ErrorCode.ConfigInvalid, 'no Cloudflare API token: set cloudflare.apiTokenFile or the environment variable CLOUDFLARE_API_TOKEN', {
      terminal: true,
    });
  }
  if (/\s/.test(token)) {
    throw new WarrenError(ErrorCode.ConfigInvalid, 'the Cloudflare API token contains whitespace; check the Secret it comes from', { terminal: true });
  }
  rememberSecret(token);
  return token;
}
