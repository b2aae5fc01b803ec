import { TOKENS, definePlugin, pluginConfigToken } from '@warren/core/plugin';
import { Lifecycle } from 'tsyringe';
import { z } from 'zod';
import { DNS_MANAGED_ANNOTATION, DnsPlugin } from './dns-plugin.js';
import { dnsSettingsSchema } from './settings.js';

export { DnsPlugin, DNS_MANAGED_ANNOTATION } from './dns-plugin.js';
export { DnsSync, type DnsSyncOptions, type DnsSyncReport } from './dns-sync.js';
export { dnsSettingsSchema, type DnsSettings } from './settings.js';
export { registryContent, registryName } from './names.js';

/** `warren.dev/dns-managed`: `"false"` hands the Ingress's names off (no records created; ownership released). */
export const dnsManagedSchema = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.enum(['true', 'false']))
  .transform((v) => v === 'true');

/**
 * Proxied CNAME records `host → <tunnel-id>.cfargotunnel.com` for the hosts of owned Ingresses, with a TXT
 * ownership registry so that several installations and external-dns can share a zone. Off by default; leader only.
 */
export default definePlugin({
  manifest: {
    id: 'cloud.dns',
    name: 'dns',
    description: 'Proxied CNAME records for Ingress hosts, with an ownership registry.',
    coreRange: '^0.1.0',
    kind: 'control',
    order: 10,
    enabledByDefault: false,
    needsLeader: true,
    annotations: [
      {
        key: DNS_MANAGED_ANNOTATION,
        description:
          'Set to "false" to keep Warren from managing DNS for this Ingress; names it already owns are handed off (ownership record removed, CNAME kept).',
        schema: dnsManagedSchema,
        example: 'false',
      },
    ],
  },
  configSchema: dnsSettingsSchema,
  register(container, config) {
    container.register(pluginConfigToken('dns'), { useValue: config });
    container.register(TOKENS.ControlPlugin, { useClass: DnsPlugin }, { lifecycle: Lifecycle.ContainerScoped });
  },
});
