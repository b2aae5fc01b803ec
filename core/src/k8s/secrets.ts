import type { V1Secret } from '@kubernetes/client-node';
import type { SecretReader } from '../plugin-api/lifecycle.js';
import { ReferencedCache, type ReferencedCacheOptions } from './referenced.js';

export type SecretCacheOptions = Omit<ReferencedCacheOptions<V1Secret>, 'kind' | 'resource'>;

/**
 * The Secret side of the informers, and the {@link SecretReader} plugins get.
 *
 * Only Secrets that routes reference (`Route.secretRefs`, `namespace/name`) or Gateway listeners name are kept in
 * memory ({@link ReferencedCache}), and Secret data never appears in logs.
 */
export class SecretCache extends ReferencedCache<V1Secret> implements SecretReader {
  readonly #decoded = new WeakMap<V1Secret, Readonly<Record<string, Buffer>>>();

  constructor(options: SecretCacheOptions) {
    super({ ...options, kind: 'Secret', resource: 'secrets' });
  }

  get(namespace: string, name: string): Readonly<Record<string, Buffer>> | undefined {
    const secret = this.object(namespace, name);
    if (!secret) return undefined;
    let decoded = this.#decoded.get(secret);
    if (!decoded) {
      const out: Record<string, Buffer> = {};
      for (const [k, v] of Object.entries(secret.data ?? {})) out[k] = Buffer.from(String(v), 'base64');
      decoded = Object.freeze(out);
      this.#decoded.set(secret, decoded);
    }
    return decoded;
  }
}
