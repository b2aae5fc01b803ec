import { createHash } from 'node:crypto';
import {
  ErrorCode,
  inject,
  injectable,
  WarrenError,
  routeOwnerKind,
  routeOwnerRef,
  routeOwnerText,
  type EventSink,
  type ProvisionContext,
  type Route,
  type RouteBinding,
  type SecretReader,
  type TransportProfile,
  type UpstreamPlugin,
  type UpstreamTls,
} from '@warren/core/plugin';
import {
  PROXY_SSL_CA,
  PROXY_SSL_CLIENT_SECRET,
  PROXY_SSL_NAME,
  PROXY_SSL_SECRET,
  PROXY_SSL_SUBJECT_ALT_NAMES,
  PROXY_SSL_VERIFY,
  manifest,
  type TlsConfig,
} from './manifest.js';
import { checkMaterial, type MaterialProblem } from './material.js';

/** Parsed TLS annotations of a route. */
export interface TlsOptions {
  readonly caSecret: string | undefined;
  /** An inline CA bundle (`proxy-ssl-ca`), as `ca.crt` of a Secret-like record (checked once per binding). */
  readonly ca: Readonly<Record<string, Buffer>> | undefined;
  readonly clientSecret: string | undefined;
  readonly serverName: string | undefined;
  /** Names of which the certificate must carry one, instead of `serverName`. */
  readonly subjectAltNames: readonly string[] | undefined;
  readonly verify: boolean;
}

/** The inline bundle as the record material checks read. */
function inlineBundle(pem: string | undefined): Readonly<Record<string, Buffer>> | undefined {
  return pem === undefined ? undefined : Object.freeze({ 'ca.crt': Buffer.from(pem, 'utf8') });
}

const NONE: SecretReader = { get: () => undefined, onChange: () => () => {} };

/** Ingresses remembered with an open upstream TLS problem (for the Normal event when it clears). */
const MAX_OPEN_PROBLEMS = 10_000;

/**
 * Open problems per event sink. Plugin instances are provisioned anew when a referenced Secret rotates — exactly
 * when a problem may clear — while the sink stays, so the record lives with the sink.
 */
const OPEN_BY_SINK = new WeakMap<EventSink, Map<string, string>>();

/** Checked material per Secret version (the reader hands out one frozen object per version). */
const CHECKED = new WeakMap<object, Map<string, MaterialProblem[]>>();

/**
 * Fills the TLS part of the transport profile of every route whose upstream speaks TLS (`https`, `h2`,
 * `grpcs`, `wss`, or `auto` resolved to TLS). Secrets are read when a generation compiles; the pipeline
 * recompiles when a referenced Secret changes, so a rotated CA or client certificate applies to new
 * connections while exchanges in flight keep theirs. A Secret that is missing, lacks a key, or holds material
 * that does not parse (checked on every compile, so at bind time and on every Secret change; results are cached
 * per Secret version) makes the route unavailable (502) and records a Warning `UpstreamTLSInvalid` on the
 * Ingress naming the Secret, the key and the problem: never a silent fallback to weaker verification. A Secret
 * that is still being fetched also answers 502, without a Warning; and when a reported problem clears, a Normal
 * `UpstreamTLSValid` event says so.
 */
@injectable()
export class TlsPlugin implements UpstreamPlugin<TlsOptions> {
  readonly #settings: TlsConfig;
  #secrets: SecretReader = NONE;
  #events: EventSink | undefined;
  /** Ingress uid → the problem last reported for it, until a compile of its routes succeeds. */
  #open = new Map<string, string>();

  constructor(@inject(manifest.configToken) settings: TlsConfig) {
    this.#settings = settings;
  }

  provision(ctx: ProvisionContext): void {
    this.#secrets = ctx.secrets;
    this.#events = ctx.events;
    let open = OPEN_BY_SINK.get(ctx.events);
    if (!open) OPEN_BY_SINK.set(ctx.events, (open = new Map()));
    this.#open = open;
  }

  bind(route: Route): RouteBinding<TlsOptions> {
    return {
      route,
      options: {
        caSecret: PROXY_SSL_SECRET.get(route),
        ca: inlineBundle(PROXY_SSL_CA.get(route)),
        clientSecret: PROXY_SSL_CLIENT_SECRET.get(route),
        serverName: PROXY_SSL_NAME.get(route),
        subjectAltNames: PROXY_SSL_SUBJECT_ALT_NAMES.get(route),
        verify: PROXY_SSL_VERIFY.get(route) !== 'off',
      },
    };
  }

  configureTransport(binding: RouteBinding<TlsOptions>, profile: TransportProfile): void {
    if (profile.scheme !== 'https:') return;
    const { route, options } = binding;
    const tls: UpstreamTls = { ...(profile.tls ?? { rejectUnauthorized: true }), rejectUnauthorized: options.verify };
    if (options.serverName) tls.servername = options.serverName;
    if (options.subjectAltNames) tls.subjectAltNames = options.subjectAltNames;
    const hash = createHash('sha256');
    const cas: Buffer[] = [];
    if (options.ca) {
      this.#check(route, 'proxy-ssl-ca', 'the CA bundle', options.ca, { ca: true, pair: false });
      cas.push(options.ca['ca.crt']!);
      hash.update('ca').update(options.ca['ca.crt']!);
    }
    if (options.caSecret) {
      const data = this.#secret(route, 'proxy-ssl-secret', options.caSecret);
      if (data['ca.crt']) {
        cas.push(data['ca.crt']);
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
      const pair = !options.clientSecret && data['tls.crt'] && data['tls.key'];
      this.#check(route, 'proxy-ssl-secret', `Secret ${this.#ref(route, options.caSecret)}`, data, { ca: true, pair: !!pair });
    }
    if (options.clientSecret) {
      const data = this.#secret(route, 'proxy-ssl-client-secret', options.clientSecret);
      if (!data['tls.crt'] || !data['tls.key']) {
        this.#refuse(route, `Secret ${this.#ref(route, options.clientSecret)} named by warren.dev/proxy-ssl-client-secret needs both tls.crt and tls.key`);
      }
      this.#check(route, 'proxy-ssl-client-secret', `Secret ${this.#ref(route, options.clientSecret)}`, data, { ca: false, pair: true });
      tls.cert = data['tls.crt'];
      tls.key = data['tls.key'];
      hash.update('cert').update(data['tls.crt']!).update(data['tls.key']!);
    }
    if (cas.length > 0) tls.ca = cas.length === 1 ? cas[0] : cas;
    tls.fingerprint = hash.digest('base64url').slice(0, 22);
    profile.tls = tls;
    this.#cleared(route);
  }

  /** Refuses the route when the material it uses from this Secret (or inline bundle, `shown`) is unusable. */
  #check(route: Route, annotation: string, shown: string, data: Readonly<Record<string, Buffer>>, use: { ca: boolean; pair: boolean }): void {
    const which = `${use.ca ? 'ca' : ''}|${use.pair ? 'pair' : ''}`;
    let byUse = CHECKED.get(data);
    if (!byUse) CHECKED.set(data, (byUse = new Map()));
    let problems = byUse.get(which);
    if (!problems) {
      problems = checkMaterial({
        ca: use.ca ? data['ca.crt'] : undefined,
        cert: use.pair ? data['tls.crt'] : undefined,
        key: use.pair ? data['tls.key'] : undefined,
      });
      byUse.set(which, problems);
    }
    if (problems.length === 0) return;
    const list = problems.map((p) => `key ${p.key} ${p.problem}`).join('; ');
    this.#refuse(route, `${shown} named by warren.dev/${annotation} is unusable: ${list}`);
  }

  /** A route compiled: if its object (Ingress, HTTPRoute, GRPCRoute) had a problem reported, say that it cleared. */
  #cleared(route: Route): void {
    const ingress = route.ingress;
    if (!this.#open.delete(ingress.uid)) return;
    this.#events?.normal(routeOwnerRef(ingress), 'UpstreamTLSValid', `the upstream TLS Secrets named by this ${routeOwnerKind(ingress)} are usable again`);
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
        `warren.dev/${annotation} names Secret ${ref} in another namespace than the ${routeOwnerKind(route.ingress)}; set plugins.tls.crossNamespaceSecrets to allow it`,
      );
    }
    const name = ref.slice(slash + 1);
    const data = this.#secrets.get(namespace, name);
    if (data) return data;
    if (this.#secrets.loading?.(namespace, name)) {
      // Not a problem yet: the route is compiled again when the fetch completes.
      throw new WarrenError(ErrorCode.UpstreamConnect, `Secret ${ref} named by warren.dev/${annotation} is still being loaded (${routeOwnerText(route.ingress)})`, {
        status: 502,
      });
    }
    this.#refuse(route, `Secret ${ref} named by warren.dev/${annotation} does not exist (or is not readable)`);
  }

  #refuse(route: Route, message: string): never {
    const ingress = route.ingress;
    this.#open.delete(ingress.uid);
    this.#open.set(ingress.uid, message);
    if (this.#open.size > MAX_OPEN_PROBLEMS) this.#open.delete(this.#open.keys().next().value!);
    // On the object that names the Secret: an HTTPRoute's problem is never reported on the Ingress of its name.
    this.#events?.warning(routeOwnerRef(ingress), 'UpstreamTLSInvalid', message);
    throw new WarrenError(ErrorCode.UpstreamConnect, `${message} (${routeOwnerText(ingress)})`, { status: 502 });
  }
}
