import { createHash } from 'node:crypto';
import {
  ErrorCode,
  pluginConfigToken,
  WarrenError,
  type EventSink,
  type ProvisionContext,
  type Route,
  type RouteBinding,
  type SecretReader,
  type TransportProfile,
  type UpstreamPlugin,
  type UpstreamTls,
} from '@warren/core/plugin';
import { inject, injectable } from 'tsyringe';

interface TlsSettings {
  readonly crossNamespaceSecrets: boolean;
}

/** Parsed TLS annotations of a route. */
export interface TlsOptions {
  readonly caSecret: string | undefined;
  readonly clientSecret: string | undefined;
  readonly serverName: string | undefined;
  readonly verify: boolean;
}

const NONE: SecretReader = { get: () => undefined, onChange: () => () => {} };

/**
 * Fills the TLS part of the transport profile of every route whose upstream speaks TLS (`https`, `h2`,
 * `grpcs`, `wss`, or `auto` resolved to TLS). Secrets are read when a generation compiles; the pipeline
 * recompiles when a referenced Secret changes, so a rotated CA or client certificate applies to new
 * connections while exchanges in flight keep theirs. A Secret that is missing or lacks a key makes the route
 * unavailable (502) and records a Warning on the Ingress: never a silent fallback to weaker verification.
 */
@injectable()
export class TlsPlugin implements UpstreamPlugin<TlsOptions> {
  readonly id = 'upstream.tls';
  readonly #settings: TlsSettings;
  #secrets: SecretReader = NONE;
  #events: EventSink | undefined;

  constructor(@inject(pluginConfigToken('tls')) settings: TlsSettings) {
    this.#settings = settings;
  }

  provision(ctx: ProvisionContext): void {
    this.#secrets = ctx.secrets;
    this.#events = ctx.events;
  }

  bind(route: Route): RouteBinding<TlsOptions> {
    const a = route.annotations;
    return {
      route,
      options: {
        caSecret: a['proxy-ssl-secret'] as string | undefined,
        clientSecret: a['proxy-ssl-client-secret'] as string | undefined,
        serverName: a['proxy-ssl-name'] as string | undefined,
        verify: a['proxy-ssl-verify'] !== 'off',
      },
    };
  }

  configureTransport(binding: RouteBinding<TlsOptions>, profile: TransportProfile): void {
    if (profile.scheme !== 'https:') return;
    const { route, options } = binding;
    const tls: UpstreamTls = { ...(profile.tls ?? { rejectUnauthorized: true }), rejectUnauthorized: options.verify };
    if (options.serverName) tls.servername = options.serverName;
    const hash = createHash('sha256');
    if (options.caSecret) {
      const data = this.#secret(route, 'proxy-ssl-secret', options.caSecret);
      if (data['ca.crt']) {
        tls.ca = data['ca.crt'];
        hash.update('ca').update(data['ca.crt']);
      }
      if (!options.clientSecret && data['tls.crt'] && data['tls.key']) {
        tls.cert = data['tls.crt'];
        tls.key = data['tls.key'];
        hash.update('cert').update(data['tls.crt']).update(data['tls.key']);
      }
      if (!data['ca.crt'] && !(data['tls.crt'] && data['tls.key'])) {
        this.#refuse(route, `Secret ${this.#ref(route, options.caSecret)} named by warren.dev/proxy-ssl-secret has neither ca.crt nor tls.crt/tls.key`);
      }
    }
    if (options.clientSecret) {
      const data = this.#secret(route, 'proxy-ssl-client-secret', options.clientSecret);
      if (!data['tls.crt'] || !data['tls.key']) {
        this.#refuse(route, `Secret ${this.#ref(route, options.clientSecret)} named by warren.dev/proxy-ssl-client-secret needs both tls.crt and tls.key`);
      }
      tls.cert = data['tls.crt'];
      tls.key = data['tls.key'];
      hash.update('cert').update(data['tls.crt']!).update(data['tls.key']!);
    }
    tls.fingerprint = hash.digest('base64url').slice(0, 22);
    profile.tls = tls;
  }

  #ref(route: Route, value: string): string {
    return value.includes('/') ? value : `${route.ingress.namespace}/${value}`;
  }

  #secret(route: Route, annotation: string, value: string): Readonly<Record<string, Buffer>> {
    const ref = this.#ref(route, value);
    const slash = ref.indexOf('/');
    const namespace = ref.slice(0, slash);
    if (namespace !== route.ingress.namespace && !this.#settings.crossNamespaceSecrets) {
      this.#refuse(
        route,
        `warren.dev/${annotation} names Secret ${ref} in another namespace than the Ingress; set plugins.tls.crossNamespaceSecrets to allow it`,
      );
    }
    const data = this.#secrets.get(namespace, ref.slice(slash + 1));
    if (!data) this.#refuse(route, `Secret ${ref} named by warren.dev/${annotation} does not exist (or is not readable)`);
    return data;
  }

  #refuse(route: Route, message: string): never {
    const ingress = route.ingress;
    this.#events?.warning({ kind: 'Ingress', namespace: ingress.namespace, name: ingress.name, uid: ingress.uid }, 'UpstreamTLSInvalid', message);
    throw new WarrenError(ErrorCode.UpstreamConnect, `${message} (Ingress ${ingress.namespace}/${ingress.name})`, { status: 502 });
  }
}
