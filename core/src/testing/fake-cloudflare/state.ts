/** The fake's data model. Tests read it through `FakeCloudflare`'s accessors, never by reaching in. */

export interface FakeZone {
  readonly id: string;
  readonly name: string;
  readonly accountId: string;
  status: 'active' | 'pending' | 'initializing' | 'moved';
  /** Plan decides the DNS batch size (free: 200, others: 3,500) and the `matches` operator (business and up). */
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
  /** Active connector connections (tests set this to exercise delete refusal). */
  connections: number;
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
