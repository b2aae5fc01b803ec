import { TOKENS, definePlugin, pluginConfigToken } from '@warren/core/plugin';
import { Lifecycle } from 'tsyringe';
import { FirewallPlugin } from './firewall-plugin.js';
import { FirewallOriginGuard } from './origin-guard.js';
import { actionSchema, countryListSchema, ipListSchema } from './lists.js';
import { ANNOTATIONS } from './rules.js';
import { firewallSettingsSchema } from './settings.js';

export { FirewallPlugin } from './firewall-plugin.js';
export { AddressSet } from './addresses.js';
export { FirewallOriginGuard, type OriginGuardOptions } from './origin-guard.js';
export { compileOriginLists, refusalOf, type OriginLists } from './origin-lists.js';
export { FirewallSync, PHASE, type FirewallSyncOptions, type FirewallSyncReport } from './firewall-sync.js';
export { actionSchema, countryListSchema, ipListSchema, type ParsedList } from './lists.js';
export { ANNOTATIONS, MAX_EXPRESSION, desiredRules, hostCondition, refPrefix, type DesiredRule, type RuleKind } from './rules.js';
export { firewallSettingsSchema, type FirewallSettings } from './settings.js';

/**
 * Per-Ingress IP/CIDR and country allow and deny lists, applied as zone WAF custom rules scoped to exactly that
 * Ingress's hosts (leader only), and enforced again in every replica's proxy with what the edge states about the
 * visitor, so that lists the plan's rule limit leaves out of the edge still refuse. Off by default. Generated
 * expressions are documented in docs/cloudflare.md.
 */
export default definePlugin({
  manifest: {
    id: 'cloud.firewall',
    name: 'firewall',
    description: 'Per-Ingress IP, CIDR and country allow and deny lists as zone WAF custom rules (kept by the leader), also enforced in every replica\'s proxy.',
    coreRange: '^0.1.0',
    kind: 'control',
    order: 20,
    enabledByDefault: false,
    needsLeader: true,
    annotations: [
      {
        key: ANNOTATIONS.allowIps,
        description: 'Only these client IPs/CIDRs may reach the Ingress\'s hosts; others get the firewall action. Invalid entries are skipped with a Warning.',
        schema: ipListSchema,
        example: '203.0.113.0/24, 2001:db8::/32',
      },
      {
        key: ANNOTATIONS.denyIps,
        description: 'Client IPs/CIDRs that get the firewall action on the Ingress\'s hosts. Invalid entries are skipped with a Warning.',
        schema: ipListSchema,
        example: '198.51.100.7, 192.0.2.0/24',
      },
      {
        key: ANNOTATIONS.allowCountries,
        description: 'Only clients from these countries (ISO 3166-1 alpha-2; T1 = Tor, XX = unknown) may reach the Ingress\'s hosts. Other codes (EU, UN, …) are skipped with a Warning.',
        schema: countryListSchema,
        example: 'DE, FR, NL',
      },
      {
        key: ANNOTATIONS.denyCountries,
        description: 'Clients from these countries (ISO 3166-1 alpha-2; T1 = Tor, XX = unknown) get the firewall action.',
        schema: countryListSchema,
        example: 'T1',
      },
      {
        key: ANNOTATIONS.action,
        description: 'What refused requests get: block (default), managed_challenge, js_challenge or challenge.',
        schema: actionSchema,
        example: 'managed_challenge',
      },
    ],
  },
  configSchema: firewallSettingsSchema,
  register(container, config) {
    container.register(pluginConfigToken('firewall'), { useValue: config });
    container.register(TOKENS.ControlPlugin, { useClass: FirewallPlugin }, { lifecycle: Lifecycle.ContainerScoped });
    container.register(TOKENS.UpstreamPlugin, { useClass: FirewallOriginGuard }, { lifecycle: Lifecycle.ContainerScoped });
  },
});
