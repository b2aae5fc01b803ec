import { actionSchema, countryListSchema, ipListSchema } from '../src/index.js';

/** Annotations as the route builder would parse them with the manifest's schemas. */
export function annotate(raw: Record<string, string>): Record<string, unknown> {
  const schemas: Record<string, { parse(v: string): unknown }> = {
    'firewall-allow-ips': ipListSchema,
    'firewall-deny-ips': ipListSchema,
    'firewall-allow-countries': countryListSchema,
    'firewall-deny-countries': countryListSchema,
    'firewall-action': actionSchema,
  };
  return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, schemas[k]!.parse(v)]));
}
