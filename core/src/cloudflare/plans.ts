/** A zone's Cloudflare plan, as `plan.legacy_id` of the zone names it. */
export type ZonePlan = 'free' | 'pro' | 'business' | 'enterprise';

/** What a plan allows Warren to do in one zone. */
export interface PlanLimits {
  /** Record changes per `POST /zones/{id}/dns_records/batch` request. */
  readonly dnsBatch: number;
  /** Rules in the zone's `http_request_firewall_custom` phase, counting everyone's rules, not only Warren's. */
  readonly customRules: number;
  /** Whether the Rules language's `matches` (regex) operator is available. */
  readonly regex: boolean;
}

/** Cloudflare's published limits per plan (DNS batch record changes; WAF custom rules). */
export const PLAN_LIMITS: Readonly<Record<ZonePlan, PlanLimits>> = {
  free: { dnsBatch: 200, customRules: 5, regex: false },
  pro: { dnsBatch: 3500, customRules: 20, regex: false },
  business: { dnsBatch: 3500, customRules: 100, regex: true },
  enterprise: { dnsBatch: 3500, customRules: 1000, regex: true },
};

/** The plan of a zone from the API's `plan` object, or undefined when it names none Warren knows. */
export function zonePlan(plan: unknown): ZonePlan | undefined {
  const id = (plan as { legacy_id?: unknown } | null | undefined)?.legacy_id;
  return typeof id === 'string' && id in PLAN_LIMITS ? (id as ZonePlan) : undefined;
}

/** The limits of `plan`; an unknown plan gets the Free plan's, the smallest, so nothing Warren sends is too big. */
export function planLimits(plan: ZonePlan | undefined): PlanLimits {
  return PLAN_LIMITS[plan ?? 'free'];
}
