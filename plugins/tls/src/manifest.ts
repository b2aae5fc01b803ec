import { defineAnnotation, defineManifest, type PluginConfig } from '@warren/core/plugin';
import { z } from 'zod';

/** Config under `plugins.tls`. */
const configSchema = z
  .object({
    crossNamespaceSecrets: z
      .boolean()
      .default(false)
      .describe(
        'Allow proxy-ssl-secret / proxy-ssl-client-secret to name a Secret in another namespace than the Ingress ("namespace/name"). Off by default: a client certificate is an identity, and an Ingress must not borrow another namespace\'s.',
      ),
  })
  .strict();

const DNS_LABEL = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?)*$/;

/** A Secret reference: `name` (the Ingress's namespace) or `namespace/name`. */
const secretRef = z
  .string()
  .transform((v) => v.trim())
  .refine((v) => {
    const [a, b, ...rest] = v.split('/');
    return rest.length === 0 && (b === undefined ? DNS_SUBDOMAIN.test(a!) : DNS_LABEL.test(a!) && DNS_SUBDOMAIN.test(b));
  }, 'a Secret as "name" or "namespace/name" (lower-case DNS names)');

/** `warren.dev/proxy-ssl-secret` (values apply to every route of the Ingress). */
export const PROXY_SSL_SECRET = defineAnnotation({
  key: 'proxy-ssl-secret',
  description: 'Secret ("name" or "namespace/name") whose ca.crt verifies the upstream certificate; its tls.crt/tls.key, when present, are sent as client certificate (mTLS).',
  schema: secretRef,
  example: 'upstream-ca',
  secretRef: true,
});

/** Longest inline CA bundle accepted (Kubernetes caps all annotations of an object at 256 KiB together). */
const MAX_CA_BUNDLE = 256 * 1024;

/** `warren.dev/proxy-ssl-ca`: the CA bundle itself, as a BackendTLSPolicy's ConfigMap CA is handed over. */
export const PROXY_SSL_CA = defineAnnotation({
  key: 'proxy-ssl-ca',
  description:
    "PEM CA bundle (the certificates themselves) that verifies the upstream certificate, instead of a Secret's ca.crt; what a BackendTLSPolicy's ConfigMap CA becomes. When proxy-ssl-secret also names a ca.crt, both are trusted.",
  schema: z
    .string()
    .refine((v) => v.length <= MAX_CA_BUNDLE, `at most ${MAX_CA_BUNDLE} characters`)
    .refine((v) => v.includes('-----BEGIN CERTIFICATE-----'), 'PEM certificates ("-----BEGIN CERTIFICATE-----" blocks)'),
  example: '-----BEGIN CERTIFICATE-----\\n…\\n-----END CERTIFICATE-----',
});

/** `warren.dev/proxy-ssl-client-secret`. */
export const PROXY_SSL_CLIENT_SECRET = defineAnnotation({
  key: 'proxy-ssl-client-secret',
  description: 'Secret ("name" or "namespace/name") whose tls.crt/tls.key are sent as client certificate, when it differs from proxy-ssl-secret.',
  schema: secretRef,
  example: 'warren-client-cert',
  secretRef: true,
});

/** `warren.dev/proxy-ssl-name`. */
export const PROXY_SSL_NAME = defineAnnotation({
  key: 'proxy-ssl-name',
  description: 'Name sent as SNI and verified in the upstream certificate (default: <service>.<namespace>.svc).',
  schema: z
    .string()
    .transform((v) => v.trim().toLowerCase())
    .refine((v) => DNS_SUBDOMAIN.test(v), 'a DNS name such as "api.internal"'),
  example: 'api.internal',
});

/** One subject alternative name: `DNS:<name>` (a leading `*.` allowed) or `URI:<scheme>:<rest>` (no spaces or commas). */
const SAN = /^(?:DNS:(?:\*\.)?[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?)*|URI:[a-z][a-z0-9+.-]*:[^\s,]+)$/;

/** `warren.dev/proxy-ssl-subject-alt-names`. */
export const PROXY_SSL_SUBJECT_ALT_NAMES = defineAnnotation({
  key: 'proxy-ssl-subject-alt-names',
  description:
    'Comma-separated subject alternative names ("DNS:name" or "URI:uri") of which the upstream certificate must carry one; when set, proxy-ssl-name is sent as SNI but no longer checked against the certificate.',
  schema: z
    .string()
    .transform((v) =>
      v
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean)
        .map((x) => (x.slice(0, 4).toUpperCase() === 'DNS:' ? `DNS:${x.slice(4).toLowerCase()}` : x)),
    )
    .refine((list) => list.length > 0 && list.length <= 32 && list.every((x) => SAN.test(x)), '1 to 32 names such as "DNS:api.internal" or "URI:spiffe://example.org/api"'),
  example: 'DNS:api.internal,URI:spiffe://example.org/api',
});

/** `warren.dev/proxy-ssl-verify`. */
export const PROXY_SSL_VERIFY = defineAnnotation({
  key: 'proxy-ssl-verify',
  description: 'Verify the upstream certificate: "on" (default) or "off" (explicit opt-out, e.g. self-signed upstreams).',
  schema: z
    .string()
    .transform((v) => v.trim().toLowerCase())
    .pipe(z.enum(['on', 'off'], { error: '"on" or "off"' })),
  example: 'off',
});

/**
 * HTTPS upstreams: verification on by default against a CA bundle from a Secret, SNI/verify-name override,
 * client certificates for mTLS, and Secret rotation without dropping in-flight exchanges.
 */
export const manifest = defineManifest({
  id: 'upstream.tls',
  name: 'tls',
  description: 'HTTPS upstreams: CA bundles, SNI and verify name, client certificates from Secrets, hot reload.',
  coreRange: '^0.1.0',
  kind: 'transport',
  order: 10,
  enabledByDefault: true,
  protocols: ['https'],
  protocolTraits: { https: { tls: true, ports: [443, 8443] } },
  appProtocols: { https: 'https' },
  annotations: [PROXY_SSL_SECRET, PROXY_SSL_CA, PROXY_SSL_CLIENT_SECRET, PROXY_SSL_NAME, PROXY_SSL_SUBJECT_ALT_NAMES, PROXY_SSL_VERIFY],
  configSchema,
});

export type TlsConfig = PluginConfig<typeof manifest>;
