import { definePlugin } from '@warren/core/plugin';
import { DnsPlugin } from './dns-plugin.js';
import { manifest } from './manifest.js';

export default definePlugin({ manifest, plugin: DnsPlugin });

export { DnsPlugin } from './dns-plugin.js';
export { DnsSync, type DnsSyncOptions, type DnsSyncReport } from './dns-sync.js';
export { DNS_MANAGED, dnsManagedSchema, manifest } from './manifest.js';
export { dnsConfigSchema, type DnsConfig } from './config.js';
export { registryContent, registryName } from './names.js';
