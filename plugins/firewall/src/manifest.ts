import { defineAnnotation, defineManifest } from '@warren/core/plugin';
import { actionSchema, countryListSchema, ipListSchema } from './lists.js';
import { firewallConfigSchema } from './config.js';

/** `warren.dev/firewall-allow-ips` (values apply to every route of the Ingress). */
export const ALLOW_IPS = defineAnnotation({
  key: 'firewall-allow-ips',
  description: "Only these client IPs/CIDRs may reach the Ingress's hosts; others get the firewall action. Invalid entries are skipped with a Warning.",
  schema: ipListSchema,
  example: '203.0.113.0/24, 2001:db8::/32',
});

/** `warren.dev/firewall-deny-ips`. */
export const DENY_IPS = defineAnnotation({
  key: 'firewall-deny-ips',
  description: "Client IPs/CIDRs that get the firewall action on the Ingress's hosts. Invalid entries are skipped with a Warning.",
  schema: ipListSchema,
  example: '198.51.100.7, 192.0.2.0/24',
});

/** `warren.dev/firewall-allow-countries`. */
export const ALLOW_COUNTRIES = defineAnnotation({
  key: 'firewall-allow-countries',
  description:
    "Only clients from these countries (ISO 3166-1 alpha-2; T1 = Tor, XX = unknown) may reach the Ingress's hosts. Other codes (EU, UN, …) are skipped with a Warning.",
  schema: countryListSchema,
  example: 'DE, FR, NL',
});

/** `warren.dev/firewall-deny-countries`. */
export const DENY_COUNTRIES = defineAnnotation({
  key: 'firewall-deny-countries',
  description: 'Clients from these countries (ISO 3166-1 alpha-2; T1 = Tor, XX = unknown) get the firewall action.',
  schema: countryListSchema,
  example: 'T1',
});

/** `warren.dev/firewall-action`. */
export const ACTION = defineAnnotation({
  key: 'firewall-action',
  description: 'What refused requests get: block (default), managed_challenge, js_challenge or challenge.',
  schema: actionSchema,
  example: 'managed_challenge',
});

/**
 * Per-Ingress IP/CIDR and country allow and deny lists, applied as zone WAF custom rules scoped to exactly that
 * Ingress's hosts (leader only), and enforced again in every replica's proxy with what the edge states about the
 * visitor, so that lists the plan's rule limit leaves out of the edge still refuse. Off by default. Generated
 * expressions are documented in docs/cloudflare.md.
 */
export const manifest = defineManifest({
  id: 'cloud.firewall',
  name: 'firewall',
  description: "Per-Ingress IP, CIDR and country allow and deny lists as zone WAF custom rules (kept by the leader), also enforced in every replica's proxy.",
  coreRange: '^0.1.0',
  kind: 'control',
  order: 20,
  enabledByDefault: false,
  annotations: [ALLOW_IPS, DENY_IPS, ALLOW_COUNTRIES, DENY_COUNTRIES, ACTION],
  configSchema: firewallConfigSchema,
});
