import { isIPv4, isIPv6 } from 'node:net';
import { type FakeApiError, badRequest, newId, now } from './http-error.js';
import type { FakeDnsRecord, FakeZone } from './state.js';

const TYPES = new Set(['A', 'AAAA', 'CNAME', 'TXT', 'MX', 'NS', 'CAA', 'SRV']);
const PROXIABLE = new Set(['A', 'AAAA', 'CNAME']);
const LABEL = /^(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)$/;

/** Record body as the API accepts it (create, overwrite, patch, batch). */
export interface RecordInput {
  name?: unknown;
  type?: unknown;
  content?: unknown;
  proxied?: unknown;
  ttl?: unknown;
  priority?: unknown;
  comment?: unknown;
  tags?: unknown;
}

/** Cloudflare's "DNS Validation Error" (1004) with the specific reason in the error chain, flattened. */
function invalid(message: string): FakeApiError {
  return badRequest(1004, `DNS Validation Error: ${message}`);
}

/** Full record name: relative names get the zone appended, `@` is the apex; validated like the API does. */
function fullName(raw: unknown, zone: FakeZone): string {
  if (typeof raw !== 'string' || raw.trim() === '') throw invalid('name is required');
  let name = raw.trim().toLowerCase().replace(/\.$/, '');
  if (name === '@') name = zone.name;
  else if (name !== zone.name && !name.endsWith(`.${zone.name}`)) name = `${name}.${zone.name}`;
  if (name.length > 253) throw invalid(`name ${name} is longer than 253 characters`);
  const labels = name.split('.');
  labels.forEach((label, i) => {
    if (label === '*' && i === 0) return;
    if (!LABEL.test(label)) throw invalid(`name ${name} has an invalid label "${label}"`);
  });
  return name;
}

function hostname(raw: unknown, what: string): string {
  if (typeof raw !== 'string' || raw === '') throw invalid(`content for ${what} record is required`);
  const v = raw.toLowerCase().replace(/\.$/, '');
  if (v.length > 253 || !v.split('.').every((l) => LABEL.test(l)) || !v.includes('.')) {
    throw badRequest(9007, `Content for ${what} record is invalid. Must be a valid hostname.`);
  }
  return v;
}

/** Builds a complete record from `input` over `base` (patch) or from scratch; throws the API's errors. */
export function buildRecord(input: RecordInput, zone: FakeZone, base?: FakeDnsRecord): FakeDnsRecord {
  if (typeof input !== 'object' || input === null) throw invalid('the request body must be a JSON object');
  const type = input.type ?? base?.type;
  if (typeof type !== 'string' || !TYPES.has(type)) throw invalid(`unsupported record type ${JSON.stringify(type)}`);
  if (base && type !== base.type) throw invalid('the type of an existing record cannot change');
  const name = input.name !== undefined ? fullName(input.name, zone) : base ? base.name : fullName(undefined, zone);
  const rawContent = input.content ?? base?.content;
  let content: string;
  switch (type) {
    case 'A':
      if (typeof rawContent !== 'string' || !isIPv4(rawContent)) throw badRequest(9005, 'Content for A record must be a valid IPv4 address.');
      content = rawContent;
      break;
    case 'AAAA':
      if (typeof rawContent !== 'string' || !isIPv6(rawContent)) throw badRequest(9006, 'Content for AAAA record must be a valid IPv6 address.');
      content = rawContent;
      break;
    case 'CNAME':
      content = hostname(rawContent, 'CNAME');
      if (content === name) throw badRequest(9039, 'CNAME content cannot reference itself.');
      break;
    case 'MX':
    case 'NS':
      content = hostname(rawContent, type);
      break;
    default:
      if (typeof rawContent !== 'string' || rawContent === '') throw invalid(`content for ${type} record is required`);
      if (rawContent.length > 2048) throw invalid(`content for ${type} record is longer than 2048 characters`);
      content = rawContent;
  }
  const proxied = input.proxied ?? base?.proxied ?? false;
  if (typeof proxied !== 'boolean') throw invalid('proxied must be a boolean');
  if (proxied && !PROXIABLE.has(type)) throw badRequest(9004, 'This record type cannot be proxied.');
  let ttl: unknown = input.ttl ?? base?.ttl ?? 1;
  if (typeof ttl !== 'number' || !Number.isInteger(ttl) || (ttl !== 1 && (ttl < 60 || ttl > 86400))) {
    throw badRequest(9021, 'Invalid TTL. Must be between 60 and 86400 seconds, or 1 for Automatic.');
  }
  if (proxied) ttl = 1;
  const comment = input.comment === undefined ? (base?.comment ?? null) : input.comment;
  if (comment !== null && (typeof comment !== 'string' || comment.length > 100)) throw invalid('comment must be a string of at most 100 characters');
  // The API refuses line breaks in record comments. Not from an observed answer: the code and wording are the fake's.
  if (typeof comment === 'string' && /[\r\n]/.test(comment)) throw invalid('comment must not contain line breaks');
  const tags = input.tags ?? base?.tags ?? [];
  if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string')) throw invalid('tags must be a list of strings');
  const priority = type === 'MX' ? Number(input.priority ?? base?.priority ?? 10) : undefined;
  const at = now();
  return {
    id: base?.id ?? newId(),
    zoneId: zone.id,
    name,
    type,
    content,
    proxied,
    ttl: ttl as number,
    priority,
    comment: comment === '' ? null : (comment as string | null),
    tags: tags as string[],
    createdOn: base?.createdOn ?? at,
    modifiedOn: at,
  };
}

const ADDRESS_OR_ALIAS = new Set(['A', 'AAAA', 'CNAME']);

/**
 * Cloudflare's same-name rules, from its documentation ("Records with the same name") and the codes the API is seen
 * answering: a CNAME may not share its name with an A, AAAA or CNAME record (81053), an A or AAAA record not with a
 * CNAME (81054). Other types (TXT, MX, CAA, SRV, …) may sit next to a CNAME: the API accepts an MX or SPF TXT at an
 * apex that has a (flattened) CNAME. A record identical to another (same name, type and content) is refused (81058).
 */
export function checkConflicts(record: FakeDnsRecord, records: Iterable<FakeDnsRecord>): void {
  for (const other of records) {
    if (other.id === record.id || other.name !== record.name) continue;
    if (other.type === record.type && other.content === record.content) throw badRequest(81058, 'An identical record already exists.');
    if (record.type === 'CNAME' && ADDRESS_OR_ALIAS.has(other.type)) {
      throw badRequest(
        81053,
        'An A, AAAA, or CNAME record with that host already exists. For more details, refer to <https://developers.cloudflare.com/dns/manage-dns-records/troubleshooting/records-with-same-name/>.',
      );
    }
    if ((record.type === 'A' || record.type === 'AAAA') && other.type === 'CNAME') {
      throw badRequest(
        81054,
        'A CNAME record with that host already exists. For more details, refer to <https://developers.cloudflare.com/dns/manage-dns-records/troubleshooting/records-with-same-name/>.',
      );
    }
  }
}

/** The record as the API returns it. */
export function recordJson(r: FakeDnsRecord, zone: FakeZone): Record<string, unknown> {
  return {
    id: r.id,
    zone_id: zone.id,
    zone_name: zone.name,
    name: r.name,
    type: r.type,
    content: r.content,
    proxiable: PROXIABLE.has(r.type),
    proxied: r.proxied,
    ttl: r.ttl,
    ...(r.priority !== undefined ? { priority: r.priority } : {}),
    settings: {},
    meta: {},
    comment: r.comment,
    tags: r.tags,
    created_on: r.createdOn,
    modified_on: r.modifiedOn,
  };
}
