import { duration } from '@warren/core/plugin';
import { z } from 'zod';

/** Config under `plugins.firewall`. */
export const firewallConfigSchema = z
  .object({
    zones: z.array(z.string().min(1).toLowerCase()).default([]).describe('Zone allow-list (empty: every zone the API token can see)'),
    ownerId: z.string().min(1).optional().describe('Identity of this installation in rule refs (default: the tunnel id); set it when the tunnel may be replaced'),
    wildcardMatch: z
      .enum(['suffix', 'regex'])
      .default('suffix')
      .describe(
        'How wildcard hosts are matched: "suffix" (all plans; also covers deeper names no Warren route serves) or "regex" (exactly one label; Business and Enterprise plans)',
      ),
    originEnforcement: z
      .enum(['all', 'block-only'])
      .default('all')
      .describe(
        'Which Ingresses\' lists Warren\'s proxy enforces too (403), whether or not the edge holds their rule: "all" (default; a visitor outside the lists is refused even after passing an edge challenge) or "block-only" (Ingresses with a challenge action are left to the edge, and are unprotected while their rule is not installed)',
      ),
    zoneCacheTtl: duration().default(3_600_000).describe('How long the zone list is reused'),
    resyncInterval: duration().default(3_600_000).describe("How long a zone's rules are trusted before they are read again to repair drift (0: only after a failure)"),
  })
  .strict();

export type FirewallConfig = z.output<typeof firewallConfigSchema>;
