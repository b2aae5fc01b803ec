import { z } from 'zod';
import { COUNTRY_CODES } from './countries.js';

/** A parsed list annotation: the entries that will be used, and the ones skipped as invalid. */
export interface ParsedList {
  readonly entries: readonly string[];
  readonly invalid: ReadonlyArray<{ readonly entry: string; readonly reason: string }>;
}

const address = z.union([z.ipv4(), z.ipv6(), z.cidrv4(), z.cidrv6()]);
const split = (value: string) => value.split(/[\s,]+/).filter(Boolean);

/**
 * IP addresses and CIDR ranges, separated by commas or whitespace. Each entry is validated on its own (zod's
 * IP/CIDR checks plus "no host bits set", as the Rules language requires); an invalid entry is skipped and reported,
 * the others stay. Entries are de-duplicated and lower-cased.
 */
export const ipListSchema = z.string().transform((value): ParsedList => {
  const entries: string[] = [];
  const invalid: Array<{ entry: string; reason: string }> = [];
  for (const raw of split(value)) {
    const entry = raw.toLowerCase();
    if (!address.safeParse(entry).success) invalid.push({ entry: raw, reason: 'not an IP address or CIDR range' });
    else if (hostBitsSet(entry)) invalid.push({ entry: raw, reason: `host bits are set (did you mean ${networkOf(entry)}?)` });
    else if (!entries.includes(entry)) entries.push(entry);
  }
  return { entries, invalid };
});

/** ISO 3166-1 alpha-2 country codes (plus Cloudflare's `T1` and `XX`), separated by commas or whitespace. */
export const countryListSchema = z.string().transform((value): ParsedList => {
  const entries: string[] = [];
  const invalid: Array<{ entry: string; reason: string }> = [];
  for (const raw of split(value)) {
    const code = raw.toUpperCase();
    const known = COUNTRY_CODES.has(code);
    if (!known) invalid.push({ entry: raw, reason: 'not an ISO 3166-1 alpha-2 country code' });
    else if (!entries.includes(code)) entries.push(code);
  }
  return { entries, invalid };
});

/** What a request that fails the lists gets. */
export const actionSchema = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.enum(['block', 'managed_challenge', 'js_challenge', 'challenge']));

function toBigInt(address: string): { value: bigint; bits: number } {
  if (address.includes('.') && !address.includes(':')) {
    return { value: address.split('.').reduce((acc, p) => (acc << 8n) | BigInt(Number(p)), 0n), bits: 32 };
  }
  const [head, rest] = address.split('::');
  const groups = (s: string | undefined) => (s ? s.split(':').map((g) => BigInt(parseInt(g, 16))) : []);
  const h = groups(head);
  const r = groups(rest);
  const all = rest !== undefined ? [...h, ...Array<bigint>(8 - h.length - r.length).fill(0n), ...r] : h;
  return { value: all.reduce((acc, g) => (acc << 16n) | g, 0n), bits: 128 };
}

function hostBitsSet(entry: string): boolean {
  const [addr, prefix] = entry.split('/');
  if (prefix === undefined || addr!.includes('.') === addr!.includes(':')) return false; // plain address, or v4-in-v6
  const { value, bits } = toBigInt(addr!);
  return (value & ((1n << BigInt(bits - Number(prefix))) - 1n)) !== 0n;
}

function networkOf(entry: string): string {
  const [addr, prefix] = entry.split('/');
  const { value, bits } = toBigInt(addr!);
  const net = value & ~((1n << BigInt(bits - Number(prefix))) - 1n);
  if (bits === 32) return `${[24n, 16n, 8n, 0n].map((s) => String((net >> s) & 255n)).join('.')}/${prefix}`;
  const groups = Array.from({ length: 8 }, (_, i) => ((net >> BigInt(112 - 16 * i)) & 0xffffn).toString(16));
  return `${groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::')}/${prefix}`;
}
