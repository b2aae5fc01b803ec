/** The fake's data model. Tests read it through `FakeCloudflare`'s accessors, never by reaching in. */

export interface FakeZone {
  readonly id: string;
  readonly name: string;
  readonly accountId: string;
  status: 'active' | 'pending' | 'initializing' | 'moved';
  /**
   * Plan decides the DNS batch size (free: 200, others: 3,500), the `matches` operator (business and up) and how many
   * custom rules the `http_request_firewall_custom` phase holds (5 / 20 / 100 / 1,000).
   */
  plan: 'free' | 'pro' | 'business' | 'enterprise';
  readonly createdOn: string;
}

export interface FakeDnsRecord {
  id: string;
  zoneId: string;
  name: string;
  type: string;
  content: string;
  proxied: boolean;
  ttl: number;
  priority?: number | undefined;
  comment: string | null;
  tags: string[];
  createdOn: string;
  modifiedOn: string;
}

export interface FakeTunnel {
  readonly id: string;
  readonly accountId: string;
  name: string;
  readonly createdAt: string;
  deletedAt: string | null;
  readonly configSrc: 'local' | 'cloudflare';
  secret: Buffer;
  /** Active connector connections. */
  connections: number;
  /**
   * Connector processes still running (replicas). They reconnect right after their connections are cleaned up
   * (`DELETE …/connections`), as connectors do, so only `cascade=true` deletes a tunnel they serve.
   */
  connectors: number;
}

export interface FakeRule {
  id: string;
  version: number;
  action: string;
  expression: string;
  description: string;
  ref: string;
  enabled: boolean;
  lastUpdated: string;
  actionParameters?: unknown;
}

export interface FakeRuleset {
  readonly id: string;
  readonly zoneId: string;
  name: string;
  description: string;
  readonly kind: string;
  readonly phase: string;
  version: number;
  lastUpdated: string;
  rules: FakeRule[];
}

/** An API token and what it may see. Absent lists mean "everything". */
export interface FakeToken {
  readonly value: string;
  /** Account ids whose tunnels and zones the token may use. */
  readonly accounts?: readonly string[];
  /** Zone names the token may use (list, DNS, rulesets). */
  readonly zones?: readonly string[];
  /**
   * The user the token belongs to (default: one shared user). Cloudflare's global rate limit counts requests per
   * user, whatever token or key they come with, so two tokens of one user share one budget.
   */
  readonly user?: string;
}

export interface FakeState {
  readonly zones: Map<string, FakeZone>;
  readonly records: Map<string, Map<string, FakeDnsRecord>>;
  readonly tunnels: Map<string, FakeTunnel>;
  readonly rulesets: Map<string, FakeRuleset>;
}

export function emptyState(): FakeState {
  return { zones: new Map(), records: new Map(), tunnels: new Map(), rulesets: new Map() };
}
