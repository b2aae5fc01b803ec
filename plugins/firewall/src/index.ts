import { definePlugin } from '@warren/core/plugin';
import { FirewallPlugin } from './firewall-plugin.js';
import { manifest } from './manifest.js';
import { FirewallOriginGuard } from './origin-guard.js';

/** The leader keeps the zone rules ({@link FirewallPlugin}); every replica's proxy enforces the lists too ({@link FirewallOriginGuard}). */
export default definePlugin({ manifest, plugin: FirewallPlugin, upstream: FirewallOriginGuard });

export { FirewallPlugin } from './firewall-plugin.js';
export { AddressSet } from './addresses.js';
export { FirewallOriginGuard, type OriginGuardOptions } from './origin-guard.js';
export { compileOriginLists, refusalOf, type OriginLists } from './origin-lists.js';
export { FirewallSync, PHASE, type FirewallSyncOptions, type FirewallSyncReport } from './firewall-sync.js';
export { actionSchema, countryListSchema, ipListSchema, type ParsedList } from './lists.js';
export { ACTION, ALLOW_COUNTRIES, ALLOW_IPS, DENY_COUNTRIES, DENY_IPS, manifest } from './manifest.js';
export { MAX_EXPRESSION, desiredRules, hostCondition, refPrefix, type DesiredRule, type RuleKind } from './rules.js';
export { firewallConfigSchema, type FirewallConfig } from './config.js';
