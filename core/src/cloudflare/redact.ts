/**
 * Secret values (API tokens) registered here are replaced by `[redacted]` in every message Warren builds from
 * Cloudflare errors. Defence in depth: the SDK already redacts the Authorization header in its own logs.
 */
const secrets = new Set<string>();

/** Remembers a secret so that {@link redactSecrets} hides it. Ignores values shorter than 8 characters. */
export function rememberSecret(value: string): void {
  if (value.length >= 8) secrets.add(value);
}

/** Replaces every remembered secret in `text`. */
export function redactSecrets(text: string): string {
  let out = text;
  for (const secret of secrets) if (out.includes(secret)) out = out.split(secret).join('[redacted]');
  return out;
}
