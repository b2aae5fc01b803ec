/**
 * A local fake of the Cloudflare v4 API (zones, DNS records incl. batch, tunnels, zone rulesets) for tests and
 * benchmarks: node:http on 127.0.0.1, the API's envelope, paging, error codes, Bearer auth and 429 with
 * `retry-after`, plus fault injection, a request log and an in-memory Secret store double.
 */
export { startFakeCloudflare } from './server.js';
export type { FakeCloudflare, FakeCloudflareOptions, FakeFaults, FakeRequestLogEntry } from './server.js';
export type { FakeDnsRecord, FakeRule, FakeRuleset, FakeToken, FakeTunnel, FakeZone } from './state.js';
export { InMemoryCredentialsSecretStore } from './secret-store-double.js';
export * from './control-harness.js';
