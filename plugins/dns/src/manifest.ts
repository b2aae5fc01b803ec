import { defineAnnotation, defineManifest } from '@warren/core/plugin';
import { z } from 'zod';
import { dnsConfigSchema } from './config.js';

/** `warren.dev/dns-managed`: `"false"` hands the Ingress's names off (no records created; ownership released). */
export const dnsManagedSchema = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.enum(['true', 'false']))
  .transform((v) => v === 'true');

/** The per-Ingress opt-out. */
export const DNS_MANAGED = defineAnnotation({
  key: 'dns-managed',
  description:
    'Set to "false" to keep Warren from managing DNS for this Ingress (or HTTPRoute/GRPCRoute); names it already owns are handed off (ownership record removed, CNAME kept).',
  schema: dnsManagedSchema,
  example: 'false',
});

/**
 * Proxied CNAME records `host → <tunnel-id>.cfargotunnel.com` for the hosts of owned Ingresses and attached
 * HTTPRoutes and GRPCRoutes (which carry no annotations, so always managed), with a TXT
 * ownership registry so that several installations and external-dns can share a zone. Off by default; leader only.
 */
export const manifest = defineManifest({
  id: 'cloud.dns',
  name: 'dns',
  description: 'Proxied CNAME records for the hosts of Ingresses and Gateway API routes, with an ownership registry.',
  coreRange: '^0.1.0',
  kind: 'control',
  order: 10,
  enabledByDefault: false,
  annotations: [DNS_MANAGED],
  configSchema: dnsConfigSchema,
});
