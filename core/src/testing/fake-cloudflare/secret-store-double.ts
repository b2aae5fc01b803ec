import type { CredentialsSecretStore, SecretMetadata } from '../../cloudflare/secret-store.js';

/**
 * TEST DOUBLE of the {@link CredentialsSecretStore} interface only, for tests that exercise the tunnel lifecycle's
 * decisions without a kube-apiserver. Several lifecycle instances sharing one double behave like replicas sharing
 * one Secret: `create` is atomic and reports `exists` to the loser.
 */
export class InMemoryCredentialsSecretStore implements CredentialsSecretStore {
  readonly description: string;
  #data: Record<string, Buffer> | undefined;
  #metadata: SecretMetadata | undefined;
  /** Calls made, in order, for assertions. */
  readonly calls: Array<'read' | 'create' | 'replace' | 'delete'> = [];

  constructor(description = 'Secret test/warren-tunnel-credentials') {
    this.description = description;
  }

  get metadata(): SecretMetadata | undefined {
    return this.#metadata;
  }

  async read(): Promise<Readonly<Record<string, Buffer>> | undefined> {
    this.calls.push('read');
    return this.#data ? { ...this.#data } : undefined;
  }

  async create(data: Readonly<Record<string, Buffer>>, metadata: SecretMetadata): Promise<'created' | 'exists'> {
    this.calls.push('create');
    if (this.#data) return 'exists';
    this.#data = { ...data };
    this.#metadata = metadata;
    return 'created';
  }

  async replace(data: Readonly<Record<string, Buffer>>, metadata: SecretMetadata): Promise<void> {
    this.calls.push('replace');
    if (!this.#data) throw new Error(`${this.description} does not exist`);
    this.#data = { ...data };
    this.#metadata = metadata;
  }

  async delete(): Promise<void> {
    this.calls.push('delete');
    this.#data = undefined;
    this.#metadata = undefined;
  }
}
