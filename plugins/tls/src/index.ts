import { definePlugin, pluginConfigToken, TOKENS, type AnnotationSpec } from '@warren/core/plugin';
import { Lifecycle } from 'tsyringe';
import { z } from 'zod';
import { TlsPlugin } from './tls-plugin.js';

/** Settings under `plugins.tls`. */
export const tlsConfigSchema = z
  .object({
    crossNamespaceSecrets: z
      .boolean()
      .default(false)
      .describe(
        'Allow proxy-ssl-secret / proxy-ssl-client-secret to name a Secret in another namespace than the Ingress ("namespace/name"). Off by default: a client certificate is an identity, and an Ingress must not borrow another namespace\'s.',
      ),
  })
  .strict();
export type TlsConfig = z.output<typeof tlsConfigSchema>;

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

/** Annotations this plugin owns (values apply to every route of the Ingress). */
export const TLS_ANNOTATIONS: readonly AnnotationSpec[] = [
  {
    key: 'proxy-ssl-secret',
    description:
      'Secret ("name" or "namespace/name") whose ca.crt verifies the upstream certificate; its tls.crt/tls.key, when present, are sent as client certificate (mTLS).',
    schema: secretRef,
    example: 'upstream-ca',
    secretRef: true,
  },
  {
    key: 'proxy-ssl-client-secret',
    description: 'Secret ("name" or "namespace/name") whose tls.crt/tls.key are sent as client certificate, when it differs from proxy-ssl-secret.',
    schema: secretRef,
    example: 'warren-client-cert',
    secretRef: true,
  },
  {
    key: 'proxy-ssl-name',
    description: 'Name sent as SNI and verified in the upstream certificate (default: <service>.<namespace>.svc).',
    schema: z
      .string()
      .transform((v) => v.trim().toLowerCase())
      .refine((v) => DNS_SUBDOMAIN.test(v), 'a DNS name such as "api.internal"'),
    example: 'api.internal',
  },
  {
    key: 'proxy-ssl-verify',
    description: 'Verify the upstream certificate: "on" (default) or "off" (explicit opt-out, e.g. self-signed upstreams).',
    schema: z
      .string()
      .transform((v) => v.trim().toLowerCase())
      .pipe(z.enum(['on', 'off'], { error: '"on" or "off"' })),
    example: 'off',
  },
];

export const TLS_CONFIG = pluginConfigToken<TlsConfig>('tls');

/**
 * HTTPS upstreams: verification on by default against a CA bundle from a Secret, SNI/verify-name override,
 * client certificates for mTLS, and Secret rotation without dropping in-flight exchanges.
 */
export default definePlugin({
  manifest: {
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
    annotations: TLS_ANNOTATIONS,
  },
  configSchema: tlsConfigSchema,
  register(container, config) {
    container.register(TLS_CONFIG, { useValue: config });
    container.register(TOKENS.UpstreamPlugin, { useClass: TlsPlugin }, { lifecycle: Lifecycle.ContainerScoped });
  },
});

export { TlsPlugin };
