import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type Cloudflare from 'cloudflare';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { ErrorCode, WarrenError } from '../errors.js';
import { hasApiToken } from './api-token.js';
import type { CloudflareClientFactory } from './client.js';
import { CloudflareApiError, callCloudflare } from './errors.js';
import type { CredentialsSecretStore, SecretMetadata } from './secret-store.js';
import { credentialsFileJson, decodeTunnelToken, parseCredentialsJson, sameCredentials, type ManagedTunnelCredentials } from './tunnel-credentials.js';
import type { Leadership } from '../state/leadership.js';
import type { Published } from '../state/published.js';

/** Key of the credentials JSON inside the credentials Secret. */
export const CREDENTIALS_SECRET_KEY = 'credentials.json';
/** Key of the comma-separated ids of tunnels this installation replaced, newest first (no secret material). */
export const REPLACED_TUNNELS_SECRET_KEY = 'replaced-tunnel-ids';
/** Key set in the Secret while `warren --uninstall` deletes the tunnel: running leaders must not replace it. */
export const UNINSTALLING_SECRET_KEY = 'uninstalling';
/** How many replaced tunnel ids the Secret remembers. */
const REPLACED_TUNNELS_KEPT = 5;

/**
 * Where this replica's tunnel comes from:
 *  - `disabled`: `tunnel.enabled` is false;
 *  - `supplied`: a tunnel token or credentials file is configured (`tunnel.tokenFile`, `tunnel.credentialsFile`
 *    or env `TUNNEL_TOKEN`); the connector reads it, no Cloudflare API call is made;
 *  - `managed`: `cloudflare.accountId` + `cloudflare.tunnelName` + an API token: the tunnel is found by name or
 *    created, and its credentials live in the Secret `cloudflare.credentialsSecretName`.
 */
export type TunnelMode = 'disabled' | 'supplied' | 'managed';

/** What {@link TunnelLifecycle.resolve} found. */
export type ResolvedTunnel =
  | { readonly mode: 'disabled' }
  | { readonly mode: 'supplied' }
  | {
      readonly mode: 'managed';
      readonly credentials: ManagedTunnelCredentials;
      /** How this call got them: read from the Secret, adopted by name, or created. */
      readonly origin: 'secret' | 'adopted' | 'created';
    };

/** Picks the mode from settings and environment; throws a ConfigInvalid WarrenError when neither way is configured. */
export function tunnelMode(config: Readonly<Config>, env: NodeJS.ProcessEnv = process.env): TunnelMode {
  if (!config.tunnel.enabled) return 'disabled';
  if (config.tunnel.tokenFile || config.tunnel.credentialsFile || env.TUNNEL_TOKEN?.trim()) return 'supplied';
  const { accountId, tunnelName } = config.cloudflare;
  if (accountId && tunnelName && hasApiToken(config.cloudflare, env)) return 'managed';
  const missing = [
    !accountId && 'cloudflare.accountId',
    !tunnelName && 'cloudflare.tunnelName',
    !hasApiToken(config.cloudflare, env) && 'cloudflare.apiTokenFile (or env CLOUDFLARE_API_TOKEN)',
  ].filter(Boolean);
  throw new WarrenError(
    ErrorCode.ConfigInvalid,
    `no tunnel configured: set tunnel.tokenFile, tunnel.credentialsFile or env TUNNEL_TOKEN, or let Warren manage the tunnel (missing: ${missing.join(', ')})`,
    { terminal: true },
  );
}

/**
 * True when each Gateway of Warren's classes gets a tunnel of its own (see `GatewayTunnels`): the Gateway API is
 * on, the source is the cluster and the tunnel is managed (Warren can create tunnels). A supplied tunnel is shared
 * by every Gateway.
 */
export function perGatewayTunnels(config: Readonly<Config>, env: NodeJS.ProcessEnv = process.env): boolean {
  if (!config.gateway.enabled || config.source.kind !== 'kubernetes') return false;
  try {
    return tunnelMode(config, env) === 'managed';
  } catch {
    return false;
  }
}

export interface TunnelLifecycleOptions {
  readonly config: Readonly<Config>;
  readonly logger: Logger;
  /** The shared SDK client factory (`TOKENS.CloudflareClient`); called only in managed mode. */
  readonly clientFactory: CloudflareClientFactory;
  /** Where the credentials Secret lives (usually a {@link KubernetesCredentialsSecretStore}). */
  readonly secretStore: CredentialsSecretStore;
  /** This replica's leadership: only the leader creates, adopts or verifies tunnels. */
  readonly leadership: Published<Leadership>;
  readonly env?: NodeJS.ProcessEnv;
  /** How often a follower looks for the Secret (default 2 s); also the first re-read after the edge refused the credentials. */
  readonly pollIntervalMs?: number;
  /** While running: how often every replica re-reads the Secret for a replaced tunnel (default 30 s). */
  readonly replacementCheckMs?: number;
  /** While running: how often the leader checks in Cloudflare that the tunnel still exists (default 5 min). */
  readonly existenceCheckMs?: number;
  /** The tunnel's name in Cloudflare (default `cloudflare.tunnelName`; a Gateway's tunnel has its own). */
  readonly tunnelName?: string | undefined;
  /** Labels and annotations written on the credentials Secret besides Warren's own (a Gateway tunnel names its Gateway). */
  readonly secretMetadata?: SecretMetadata | undefined;
}

/**
 * Decides which tunnel this replica runs and, in managed mode, makes sure every replica and every restart uses
 * the same one:
 *
 *  1. the credentials Secret exists → use it (the leader also checks that the tunnel still exists);
 *  2. else the leader finds a non-deleted tunnel with `cloudflare.tunnelName` (adopting it: its token carries the
 *     secret) or creates one (`config_src: local`, 32 random bytes of secret), then creates the Secret; if another
 *     replica created the Secret first, that one wins;
 *  3. a follower polls for the Secret until it appears (or until it becomes the leader).
 *
 * While the connector runs, {@link watchForReplacement} notices a tunnel that was deleted in Cloudflare (the leader
 * replaces it and the Secret) or replaced by another replica (the Secret names another tunnel), so every replica
 * moves to the new tunnel without a restart.
 *
 * A tunnel is deleted only by {@link uninstall} and only when `cloudflare.deleteTunnelOnUninstall` is true.
 * Credentials and the API token are never logged.
 */
export class TunnelLifecycle {
  readonly #o: TunnelLifecycleOptions;
  readonly #log: Logger;
  #replaced: readonly string[] = [];
  /** The last Secret read carried the uninstall marker. */
  #uninstalling = false;

  constructor(options: TunnelLifecycleOptions) {
    this.#o = options;
    this.#log = options.logger.child({ component: 'tunnel-lifecycle' });
  }

  /**
   * Tunnels this installation replaced (deleted in Cloudflare), newest first, as last read from or written to the
   * credentials Secret. Control plugins move state recorded under them (DNS ownership) to the current tunnel.
   */
  get replacedTunnelIds(): readonly string[] {
    return this.#replaced;
  }

  /** Resolves the tunnel to run; in managed mode waits (bounded only by `signal`) until credentials exist. */
  async resolve(signal: AbortSignal): Promise<ResolvedTunnel> {
    const mode = tunnelMode(this.#o.config, this.#o.env);
    if (mode !== 'managed') return { mode };
    let waitingLogged = false;
    for (;;) {
      signal.throwIfAborted();
      const stored = await this.#readSecret(signal);
      if (stored) {
        if (this.#o.leadership.current.leading) {
          const live = await this.#verifyOrReplace(stored, signal);
          if (live) return live;
        } else {
          this.#log.info({ tunnelId: stored.tunnelId, secret: this.#o.secretStore.description }, 'using the tunnel stored in the credentials Secret');
          return { mode: 'managed', credentials: stored, origin: 'secret' };
        }
      } else if (this.#o.leadership.current.leading) {
        const obtained = await this.#findOrCreate(signal);
        const outcome = await this.#o.secretStore.create(secretData(obtained.credentials), this.#metadata(obtained.credentials), signal);
        if (outcome === 'created') {
          this.#log.info(
            { tunnelId: obtained.credentials.tunnelId, tunnelName: obtained.credentials.tunnelName, secret: this.#o.secretStore.description },
            `tunnel ${obtained.origin}; credentials stored`,
          );
          return { mode: 'managed', credentials: obtained.credentials, origin: obtained.origin };
        }
        continue; // another replica stored credentials first: use those
      } else if (!waitingLogged) {
        this.#log.info({ secret: this.#o.secretStore.description }, 'waiting for the leader to store the tunnel credentials');
        waitingLogged = true;
      }
      await sleep(this.#o.pollIntervalMs ?? 2_000, undefined, { signal });
    }
  }

  /**
   * Resolves, in managed mode, once the tunnel `running` was replaced: the credentials Secret names another
   * tunnel (checked by every replica every `replacementCheckMs`), or — checked by the leader every
   * `existenceCheckMs` — the tunnel was deleted in Cloudflare, which the leader then replaces (adopting another
   * tunnel of the name or creating one, and rewriting the Secret). The result is the tunnel to run now. Read and
   * API failures are logged and retried at the next check; never resolves on its own otherwise, and rejects only
   * when `signal` aborts.
   *
   * Without the Secret nothing is replaced or recreated: `warren --uninstall` (the Helm pre-delete hook, which runs
   * while replicas are still up) deletes the Secret together with the tunnel, and a leader must not undo that by
   * creating a new tunnel. Replacement happens only while the Secret still names the deleted tunnel.
   *
   * Rotation: the leader's check also reads the tunnel's token; when its secret is not the stored one ("Refresh
   * token" in the dashboard, or a new `tunnel_secret`), the leader stores the new credentials and every replica
   * moves to them like to a replaced tunnel. With `refused` (the edge just refused the running credentials) every
   * replica reads the Secret at once and then again after `pollIntervalMs`, doubling up to `replacementCheckMs`,
   * so followers pick up what the leader stores within seconds; the leader reads the token at once, then after
   * `replacementCheckMs`, doubling back up to `existenceCheckMs` (a refusal that was not a rotation costs a few
   * calls, not two every `replacementCheckMs` for as long as the connector runs).
   */
  async watchForReplacement(running: ManagedTunnelCredentials, signal: AbortSignal, options: { readonly refused?: boolean } = {}): Promise<ResolvedTunnel> {
    const checkMs = this.#o.replacementCheckMs ?? 30_000;
    const refused = options.refused === true;
    const existenceMs = this.#o.existenceCheckMs ?? 5 * 60_000;
    let verifyEveryMs = refused ? 0 : existenceMs;
    let verifiedAt = refused ? -Infinity : Date.now();
    let wait = refused ? 0 : checkMs;
    for (;;) {
      if (wait > 0) await sleep(wait, undefined, { signal });
      else signal.throwIfAborted();
      wait = refused ? Math.min(checkMs, Math.max(this.#o.pollIntervalMs ?? 2_000, wait * 2)) : checkMs;
      try {
        const stored = await this.#readSecret(signal);
        if (stored && !sameCredentials(stored, running)) {
          const what = stored.tunnelId === running.tunnelId ? 'new credentials for the tunnel' : 'another tunnel';
          this.#log.warn({ from: running.tunnelId, to: stored.tunnelId, secret: this.#o.secretStore.description }, `the credentials Secret holds ${what}; switching to it`);
          return { mode: 'managed', credentials: stored, origin: 'secret' };
        }
        if (stored && !this.#uninstalling && this.#o.leadership.current.leading && Date.now() - verifiedAt >= verifyEveryMs) {
          verifiedAt = Date.now();
          verifyEveryMs = Math.min(existenceMs, Math.max(checkMs, verifyEveryMs * 2));
          const live = await this.#verifyOrReplace(stored, signal, false, true);
          if (live?.mode === 'managed' && !sameCredentials(live.credentials, running)) return live;
        }
      } catch (err) {
        signal.throwIfAborted();
        this.#log.warn({ err: (err as Error).message }, 'could not check whether the tunnel was replaced; checking again later');
      }
    }
  }

  /**
   * Token mode: resolves with `{ mode: 'supplied' }` once `tunnel.tokenFile` (or `tunnel.credentialsFile`) holds
   * other valid credentials than when the watch began: a rotated token written into the mounted Secret is picked
   * up without a restart. Checked every `replacementCheckMs`; content that does not parse is logged and ignored
   * (the running connector keeps its credentials). Env `TUNNEL_TOKEN` cannot change, so then it never resolves;
   * it rejects only when `signal` aborts. The file's content is never logged.
   */
  async watchSuppliedCredentials(signal: AbortSignal): Promise<ResolvedTunnel> {
    const { tokenFile, credentialsFile } = this.#o.config.tunnel;
    const env = this.#o.env ?? process.env;
    const path = env.TUNNEL_TOKEN?.trim() ? undefined : (tokenFile ?? credentialsFile);
    const read = (): string | undefined => {
      try {
        return readFileSync(path!, 'utf8').trim();
      } catch {
        return undefined;
      }
    };
    let seen = path ? read() : undefined;
    for (;;) {
      await sleep(this.#o.replacementCheckMs ?? 30_000, undefined, { signal });
      if (!path) continue;
      const text = read();
      if (text === undefined || text === seen) continue;
      seen = text;
      try {
        if (tokenFile) decodeTunnelToken(text, `tunnel.tokenFile "${tokenFile}"`);
        else parseCredentialsJson(text, `tunnel.credentialsFile "${credentialsFile}"`);
      } catch (err) {
        this.#log.warn({ err: (err as Error).message }, 'the tunnel credentials file changed but holds no valid credentials; keeping the running ones');
        continue;
      }
      this.#log.info({ file: path }, 'the tunnel credentials file changed; restarting the connector with the new credentials');
      return { mode: 'supplied' };
    }
  }

  /**
   * Uninstall cleanup (run once, e.g. from a Helm pre-delete hook): deletes the tunnel and the credentials Secret,
   * but only when `cloudflare.deleteTunnelOnUninstall` is true. Otherwise it changes nothing, so a reinstall adopts
   * the same tunnel. The hook runs while replicas are still connected and their connectors reconnect right after a
   * connection cleanup, so the tunnel is deleted with `cascade=true` (its connections with it).
   */
  async uninstall(signal: AbortSignal): Promise<{ readonly tunnelDeleted: boolean }> {
    if (tunnelMode(this.#o.config, this.#o.env) !== 'managed' || !this.#o.config.cloudflare.deleteTunnelOnUninstall) {
      this.#log.info('keeping the tunnel (cloudflare.deleteTunnelOnUninstall is false or the tunnel is not managed by Warren)');
      return { tunnelDeleted: false };
    }
    return { tunnelDeleted: await this.deleteTunnel(signal) };
  }

  /**
   * Deletes the tunnel named in the credentials Secret (with its connections; one already gone is fine), then the
   * Secret; false when there is no Secret. Marks the Secret first, so that replicas still running see a deletion,
   * not a tunnel deleted by accident, and create no replacement. For the uninstall and for a deleted Gateway's
   * tunnel, which has no other owner.
   */
  async deleteTunnel(signal: AbortSignal): Promise<boolean> {
    const stored = await this.#readSecret(signal);
    if (!stored) return false;
    await this.#writeSecret(stored, signal, true);
    const client = this.#o.clientFactory();
    const account_id = stored.accountTag;
    try {
      await callCloudflare('delete tunnel connections', () => client.zeroTrust.tunnels.cloudflared.connections.delete(stored.tunnelId, { account_id }, { signal }));
      await callCloudflare('delete tunnel', () => client.zeroTrust.tunnels.cloudflared.delete(stored.tunnelId, { account_id }, { signal, query: { cascade: true } }));
    } catch (err) {
      if (!(err instanceof CloudflareApiError && err.httpStatus === 404)) throw err;
    }
    await this.#o.secretStore.delete(signal);
    this.#log.info({ tunnelId: stored.tunnelId, secret: this.#o.secretStore.description }, 'tunnel and credentials Secret deleted');
    return true;
  }

  async #readSecret(signal: AbortSignal): Promise<ManagedTunnelCredentials | undefined> {
    const data = await this.#o.secretStore.read(signal);
    const json = data?.[CREDENTIALS_SECRET_KEY];
    if (!data) return undefined;
    this.#replaced = parseReplaced(data[REPLACED_TUNNELS_SECRET_KEY]);
    this.#uninstalling = data[UNINSTALLING_SECRET_KEY] !== undefined;
    if (!json) {
      throw new WarrenError(ErrorCode.TunnelCredentials, `${this.#o.secretStore.description} has no "${CREDENTIALS_SECRET_KEY}" key`, { terminal: true });
    }
    return parseCredentialsJson(json.toString('utf8'), `${this.#o.secretStore.description} key "${CREDENTIALS_SECRET_KEY}"`);
  }

  /** Leader with stored credentials: keeps them while the tunnel exists; replaces them when it was deleted. */
  async #verifyOrReplace(stored: ManagedTunnelCredentials, signal: AbortSignal, logKept = true, whileRunning = false): Promise<ResolvedTunnel | undefined> {
    const client = this.#o.clientFactory();
    let gone = false;
    try {
      const tunnel = await callCloudflare('get tunnel', () => client.zeroTrust.tunnels.cloudflared.get(stored.tunnelId, { account_id: stored.accountTag }, { signal }));
      gone = Boolean(tunnel.deleted_at);
    } catch (err) {
      if (err instanceof CloudflareApiError && err.httpStatus === 404) gone = true;
      else throw err;
    }
    if (!gone) {
      const rotated = await this.#rotated(client, stored, signal);
      if (rotated && !this.#uninstalling) {
        this.#log.warn({ tunnelId: stored.tunnelId, secret: this.#o.secretStore.description }, "the tunnel's token was rotated in Cloudflare; storing the new credentials");
        await this.#writeSecret(rotated, signal);
        return { mode: 'managed', credentials: rotated, origin: 'secret' };
      }
      if (logKept) this.#log.info({ tunnelId: stored.tunnelId, secret: this.#o.secretStore.description }, 'using the tunnel stored in the credentials Secret');
      return { mode: 'managed', credentials: stored, origin: 'secret' };
    }
    if (whileRunning) {
      // An uninstall deletes the tunnel, then the Secret: if the Secret went meanwhile, leave both alone.
      const again = await this.#readSecret(signal);
      if (again?.tunnelId !== stored.tunnelId || this.#uninstalling) return undefined;
    }
    this.#log.warn({ tunnelId: stored.tunnelId }, 'the stored tunnel was deleted in Cloudflare; finding or creating another one');
    const obtained = await this.#findOrCreate(signal);
    this.#replaced = [stored.tunnelId, ...this.#replaced]
      .filter((id, i, all) => id !== obtained.credentials.tunnelId && all.indexOf(id) === i)
      .slice(0, REPLACED_TUNNELS_KEPT);
    await this.#writeSecret(obtained.credentials, signal);
    return { mode: 'managed', credentials: obtained.credentials, origin: obtained.origin };
  }

  /**
   * The tunnel's current credentials when its token (`GET …/cfd_tunnel/{id}/token`) carries another secret than
   * `stored`; undefined when they agree or the token cannot be read (the tunnel-existence check decides then).
   */
  async #rotated(client: Cloudflare, stored: ManagedTunnelCredentials, signal: AbortSignal): Promise<ManagedTunnelCredentials | undefined> {
    let token: string;
    try {
      token = String(
        await callCloudflare('get tunnel token', () => client.zeroTrust.tunnels.cloudflared.token.get(stored.tunnelId, { account_id: stored.accountTag }, { signal })),
      );
    } catch (err) {
      if (err instanceof CloudflareApiError && !err.retryable) {
        this.#log.warn({ tunnelId: stored.tunnelId, err: err.message }, 'cannot read the tunnel token to check for a rotation');
        return undefined;
      }
      throw err;
    }
    const current = decodeTunnelToken(token, `token of tunnel ${stored.tunnelId}`);
    if (current.tunnelId !== stored.tunnelId.toLowerCase() || current.tunnelSecret.equals(stored.tunnelSecret)) return undefined;
    return { ...stored, tunnelSecret: current.tunnelSecret, ...(current.endpoint ? { endpoint: current.endpoint } : {}) };
  }

  /** Stores `credentials` in the Secret, creating it when it is missing. */
  async #writeSecret(credentials: ManagedTunnelCredentials, signal: AbortSignal, uninstalling = false): Promise<void> {
    const data = secretData(credentials);
    if (this.#replaced.length) data[REPLACED_TUNNELS_SECRET_KEY] = Buffer.from(this.#replaced.join(','));
    if (uninstalling) data[UNINSTALLING_SECRET_KEY] = Buffer.from('true');
    const outcome = await this.#o.secretStore.create(data, this.#metadata(credentials), signal);
    if (outcome === 'exists') await this.#o.secretStore.replace(data, this.#metadata(credentials), signal);
  }

  #metadata(c: ManagedTunnelCredentials): SecretMetadata {
    const own = secretMetadata(c);
    const extra = this.#o.secretMetadata;
    return extra ? { labels: { ...own.labels, ...extra.labels }, annotations: { ...extra.annotations, ...own.annotations } } : own;
  }

  async #findOrCreate(signal: AbortSignal): Promise<{ credentials: ManagedTunnelCredentials; origin: 'adopted' | 'created' }> {
    const client = this.#o.clientFactory();
    const accountId = this.#o.config.cloudflare.accountId!;
    const name = this.#o.tunnelName ?? this.#o.config.cloudflare.tunnelName!;
    const existing = await this.#findByName(client, accountId, name, signal);
    if (existing) return { credentials: await this.#adopt(client, accountId, existing, name, signal), origin: 'adopted' };
    const secret = randomBytes(32);
    try {
      const created = await callCloudflare('create tunnel', () =>
        client.zeroTrust.tunnels.cloudflared.create({ account_id: accountId, name, config_src: 'local', tunnel_secret: secret.toString('base64') }, { signal, maxRetries: 0 }),
      );
      if (!created.id) throw new CloudflareApiError('Cloudflare API create tunnel returned no tunnel id', undefined, [], true);
      return { credentials: { accountTag: accountId, tunnelId: created.id, tunnelSecret: secret, tunnelName: name }, origin: 'created' };
    } catch (err) {
      // Another leader created the same name a moment ago: adopt that one.
      if (err instanceof CloudflareApiError && (err.httpStatus === 409 || err.httpStatus === 400)) {
        const raced = await this.#findByName(client, accountId, name, signal);
        if (raced) return { credentials: await this.#adopt(client, accountId, raced, name, signal), origin: 'adopted' };
      }
      throw err;
    }
  }

  async #findByName(client: Cloudflare, accountId: string, name: string, signal: AbortSignal) {
    const page = await callCloudflare('list tunnels', () =>
      client.zeroTrust.tunnels.cloudflared.list({ account_id: accountId, name, is_deleted: false, per_page: 50 }, { signal }),
    );
    const matches = page.result.filter((t) => t.name === name && !t.deleted_at && t.id).sort((a, b) => (a.created_at ?? '').localeCompare(b.created_at ?? ''));
    if (matches.length > 1) this.#log.warn({ tunnelName: name, count: matches.length }, 'several tunnels have this name; adopting the oldest');
    return matches[0];
  }

  async #adopt(
    client: Cloudflare,
    accountId: string,
    tunnel: { id?: string | undefined; config_src?: string | undefined },
    name: string,
    signal: AbortSignal,
  ): Promise<ManagedTunnelCredentials> {
    const id = tunnel.id!;
    if (tunnel.config_src === 'cloudflare') {
      this.#log.warn({ tunnelId: id }, 'adopting a remotely managed tunnel; Warren routes from Kubernetes and ignores its remote ingress rules');
    }
    const token = await callCloudflare('get tunnel token', () => client.zeroTrust.tunnels.cloudflared.token.get(id, { account_id: accountId }, { signal }));
    const decoded = decodeTunnelToken(String(token), `token of tunnel ${id}`);
    if (decoded.tunnelId !== id.toLowerCase()) {
      throw new WarrenError(ErrorCode.TunnelCredentials, `the token of tunnel ${id} names another tunnel`, { terminal: true });
    }
    return { ...decoded, tunnelName: name };
  }
}

/** Reads the replaced-tunnels key; anything that is not a list of UUIDs is ignored (it only guides DNS moves). */
function parseReplaced(value: Buffer | undefined): readonly string[] {
  if (!value) return [];
  const ids = value
    .toString('utf8')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(s));
  return ids.slice(0, REPLACED_TUNNELS_KEPT);
}

function secretData(c: ManagedTunnelCredentials): Record<string, Buffer> {
  return { [CREDENTIALS_SECRET_KEY]: Buffer.from(credentialsFileJson(c)) };
}

function secretMetadata(c: ManagedTunnelCredentials): SecretMetadata {
  return {
    labels: { 'app.kubernetes.io/managed-by': 'warren', 'app.kubernetes.io/component': 'tunnel-credentials' },
    annotations: { 'warren.dev/tunnel-id': c.tunnelId, ...(c.tunnelName ? { 'warren.dev/tunnel-name': c.tunnelName } : {}) },
  };
}
