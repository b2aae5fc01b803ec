import type { V1Secret } from '@kubernetes/client-node';
import { apiPath, type KubeClient } from '../k8s/api/client.js';
import { apiFailure } from '../k8s/api-errors.js';
import { ErrorCode, WarrenError } from '../errors.js';

/** Labels and annotations written on the credentials Secret (no secret material). */
export interface SecretMetadata {
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
}

/**
 * Storage for the credentials of a managed tunnel: exactly one Secret, whose name and namespace the store was
 * built with. Implemented with the Kubernetes API ({@link KubernetesCredentialsSecretStore}); tests of the tunnel
 * lifecycle may use an in-memory double of this interface.
 */
export interface CredentialsSecretStore {
  /** `namespace/name`, for logs and errors. */
  readonly description: string;
  /** The Secret's data, or undefined when it does not exist. */
  read(signal?: AbortSignal): Promise<Readonly<Record<string, Buffer>> | undefined>;
  /** Creates the Secret; `exists` when it was already there (another replica won the race): read it then. */
  create(data: Readonly<Record<string, Buffer>>, metadata: SecretMetadata, signal?: AbortSignal): Promise<'created' | 'exists'>;
  /** Overwrites the Secret's data (it must exist). */
  replace(data: Readonly<Record<string, Buffer>>, metadata: SecretMetadata, signal?: AbortSignal): Promise<void>;
  /** Deletes the Secret; absent is fine. */
  delete(signal?: AbortSignal): Promise<void>;
}

/**
 * The {@link CredentialsSecretStore} where there is no cluster (folder mode): it holds nothing, and every write is
 * refused, since only a managed tunnel writes credentials and folder mode refuses a managed tunnel at start.
 */
export class NoCredentialsSecretStore implements CredentialsSecretStore {
  readonly description = 'no credentials Secret (folder mode)';

  async read(): Promise<undefined> {
    return undefined;
  }

  async create(): Promise<never> {
    throw this.#refused();
  }

  async replace(): Promise<never> {
    throw this.#refused();
  }

  async delete(): Promise<void> {}

  #refused(): WarrenError {
    return new WarrenError(ErrorCode.ConfigInvalid, "folder mode keeps no tunnel credentials Secret: give the tunnel's token or credentials file", { terminal: true });
  }
}

/** {@link CredentialsSecretStore} on the Kubernetes API (core/v1 Secrets, type Opaque). Needs get/create/update/delete on that Secret. */
export class KubernetesCredentialsSecretStore implements CredentialsSecretStore {
  readonly description: string;
  readonly #client: KubeClient;
  readonly #namespace: string;
  readonly #name: string;

  constructor(client: KubeClient, namespace: string, name: string) {
    this.#client = client;
    this.#namespace = namespace;
    this.#name = name;
    this.description = `Secret ${namespace}/${name}`;
  }

  async read(): Promise<Readonly<Record<string, Buffer>> | undefined> {
    let secret: V1Secret;
    try {
      secret = await this.#client.get<V1Secret>(this.#path());
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw this.#error('read', err);
    }
    const data: Record<string, Buffer> = {};
    for (const [key, value] of Object.entries(secret.data ?? {})) data[key] = Buffer.from(value, 'base64');
    return data;
  }

  async create(data: Readonly<Record<string, Buffer>>, metadata: SecretMetadata): Promise<'created' | 'exists'> {
    try {
      await this.#client.post(apiPath('v1', 'secrets', this.#namespace), this.#body(data, metadata));
      return 'created';
    } catch (err) {
      if (statusOf(err) === 409) return 'exists';
      throw this.#error('create', err);
    }
  }

  async replace(data: Readonly<Record<string, Buffer>>, metadata: SecretMetadata): Promise<void> {
    try {
      await this.#client.put(this.#path(), this.#body(data, metadata));
    } catch (err) {
      throw this.#error('replace', err);
    }
  }

  async delete(): Promise<void> {
    try {
      await this.#client.delete(this.#path());
    } catch (err) {
      if (statusOf(err) !== 404) throw this.#error('delete', err);
    }
  }

  #path(): string {
    return apiPath('v1', 'secrets', this.#namespace, this.#name);
  }

  #body(data: Readonly<Record<string, Buffer>>, metadata: SecretMetadata): V1Secret {
    return {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'Opaque',
      metadata: { name: this.#name, namespace: this.#namespace, labels: { ...metadata.labels }, annotations: { ...metadata.annotations } },
      data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, v.toString('base64')])),
    };
  }

  #error(verb: string, err: unknown): WarrenError {
    const status = statusOf(err);
    return new WarrenError(ErrorCode.KubernetesApi, `cannot ${verb} ${this.description}: ${status ? `HTTP ${status}` : ((err as Error)?.message ?? 'unknown error')}`, {
      terminal: status === 403,
    });
  }
}

function statusOf(err: unknown): number | undefined {
  return apiFailure(err).status;
}
