import { duration } from '@warren/core/plugin';
import { z } from 'zod';

/** Config under `plugins.dns`. */
export const dnsConfigSchema = z
  .object({
    zones: z.array(z.string().min(1).toLowerCase()).default([]).describe('Zone allow-list: only these zones are managed (empty: every zone the API token can see)'),
    ownerId: z.string().min(1).optional().describe('Identity of this installation in the ownership registry (default: the tunnel id); set it when the tunnel may be replaced'),
    registryPrefix: z
      .string()
      .regex(/^_[a-z0-9-]{1,30}$/, 'a DNS label starting with "_", e.g. "_warren"')
      .default('_warren')
      .describe('Label prefixed to each managed name for its TXT ownership record'),
    overwriteUnmanaged: z.boolean().default(false).describe('Take over records at managed names that carry no ownership record (never those another owner claims)'),
    accountId: z
      .string()
      .regex(/^[0-9a-f]{32}$/, 'a 32-character hex Cloudflare account id')
      .optional()
      .describe("The tunnel's Cloudflare account (default: found through the API); records are managed only in zones of this account"),
    batchSize: z
      .number()
      .int()
      .min(2)
      .max(3500)
      .default(3500)
      .describe("Most record changes per batch request; each zone's plan caps it further (Free: 200, paid plans: 3,500)"),
    listPageSize: z.number().int().min(100).max(50_000).default(5000).describe('Records per page when reading a zone'),
    zoneCacheTtl: duration().default(3_600_000).describe('How long the zone list is reused before it is listed again'),
    resyncInterval: duration().default(3_600_000).describe("How long a zone's records are trusted before they are read again to repair drift (0: only after changes fail)"),
    cleanupTimeout: duration().default(30_000).describe('Bound on removing records when an Ingress is deleted'),
    comment: z
      .string()
      .max(100)
      .regex(/^[^\r\n]*$/, 'one line: Cloudflare refuses line breaks in record comments')
      .default('managed by Warren')
      .describe('Comment written on managed records (one line, at most 100 characters)'),
  })
  .strict();

export type DnsConfig = z.output<typeof dnsConfigSchema>;
