import { ownershipDigest } from '@warren/core';

/** Host names Warren can publish: lower-case DNS names, optionally with a leading `*.` wildcard label. */
const HOST = /^(\*\.)?([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** The longest DNS name Cloudflare accepts. */
const MAX_NAME = 253;

/**
 * Host names Warren can publish: valid, and short enough that the ownership record next to them
 * (`<prefix>.<host>`, see {@link registryName}) is still a valid name.
 */
export function isPublishableHost(host: string, prefix: string): boolean {
  return HOST.test(host) && host.length <= MAX_NAME && registryName(prefix, host).length <= MAX_NAME;
}

/**
 * Name of the TXT ownership record next to a managed name: `<prefix>.<host>`, with a leading wildcard label
 * written as `_wildcard` (a `*` may only be the leftmost label). `*.example.com` → `_warren._wildcard.example.com`.
 */
export function registryName(prefix: string, host: string): string {
  return `${prefix}.${host.startsWith('*.') ? `_wildcard.${host.slice(2)}` : host}`;
}

/** Inverse of {@link registryName}, or undefined for names that are not registry records. */
export function hostOfRegistryName(prefix: string, name: string): string | undefined {
  if (!name.startsWith(`${prefix}.`)) return undefined;
  const rest = name.slice(prefix.length + 1);
  return rest.startsWith('_wildcard.') ? `*.${rest.slice('_wildcard.'.length)}` : rest;
}

/**
 * Content of the ownership record: opaque, different per installation and per name, revealing neither the owner
 * key nor the tunnel id. Quoted, as Cloudflare recommends for TXT content.
 */
export function registryContent(ownerKey: string, host: string): string {
  return `"warren-owner=${ownershipDigest(ownerKey, `dns:${host}`)}"`;
}

/** TXT content without the surrounding quotes Cloudflare may or may not keep. */
export function unquote(content: string): string {
  return content.length >= 2 && content.startsWith('"') && content.endsWith('"') ? content.slice(1, -1) : content;
}
