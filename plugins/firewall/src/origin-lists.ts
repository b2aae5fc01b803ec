import type { OriginRefusalReason } from '@warren/core';
import type { Annotated, AnnotationSpec, RequestHead } from '@warren/core/plugin';
import { AddressSet } from './addresses.js';
import type { ParsedList } from './lists.js';
import { ACTION, ALLOW_COUNTRIES, ALLOW_IPS, DENY_COUNTRIES, DENY_IPS } from './manifest.js';

/** One Ingress's lists, compiled once per route for the proxy. */
export interface OriginLists {
  readonly denyIps: AddressSet | undefined;
  readonly allowIps: AddressSet | undefined;
  readonly denyCountries: ReadonlySet<string> | undefined;
  readonly allowCountries: ReadonlySet<string> | undefined;
  /** The Ingress's `firewall-action` (`block` when unset). */
  readonly action: string;
}

/** The lists of a route's annotations; undefined when it has no list with a valid entry. */
export function compileOriginLists(route: Annotated): OriginLists | undefined {
  const entries = (annotation: AnnotationSpec<ParsedList>) => {
    const list = annotation.get(route);
    return list?.entries.length ? list.entries : undefined;
  };
  const ips = (annotation: AnnotationSpec<ParsedList>) => {
    const list = entries(annotation);
    return list ? new AddressSet(list) : undefined;
  };
  const countries = (annotation: AnnotationSpec<ParsedList>) => {
    const list = entries(annotation);
    return list ? new Set(list) : undefined;
  };
  const lists = {
    denyIps: ips(DENY_IPS),
    allowIps: ips(ALLOW_IPS),
    denyCountries: countries(DENY_COUNTRIES),
    allowCountries: countries(ALLOW_COUNTRIES),
    action: ACTION.get(route) ?? 'block',
  };
  return lists.denyIps || lists.allowIps || lists.denyCountries || lists.allowCountries ? lists : undefined;
}

/** What Cloudflare's edge states about the visitor: `cf-connecting-ip` and `cf-ipcountry`. */
const CLIENT_IP = 'cf-connecting-ip';
const COUNTRY = 'cf-ipcountry';
/** Cloudflare's code for a country it does not know; also what a request without `cf-ipcountry` counts as. */
const UNKNOWN_COUNTRY = 'XX';

/**
 * Why `head` fails `lists`, or undefined when it passes. Only what the edge states counts (`forwardedBy: 'edge'`):
 * the visitor's address from `cf-connecting-ip`, its country from `cf-ipcountry` (absent: `XX`, unknown, as when
 * the zone's IP geolocation is off). A request that did not come through the edge is refused, since nothing
 * states a visitor address the lists could be checked against; so is an edge request whose address is missing or
 * not an IP address while an IP list is set. Deny lists are checked first, as the reason to report.
 */
export function refusalOf(lists: OriginLists, head: RequestHead): OriginRefusalReason | undefined {
  if (head.forwardedBy !== 'edge') return 'not-from-edge';
  let address: string | undefined;
  let country: string | undefined;
  const headers = head.headers;
  for (let i = 0; i + 1 < headers.length && (address === undefined || country === undefined); i += 2) {
    const name = headers[i];
    if (address === undefined && name === CLIENT_IP) address = headers[i + 1]!.trim();
    else if (country === undefined && name === COUNTRY) country = headers[i + 1]!.trim().toUpperCase();
  }
  if (lists.denyIps || lists.allowIps) {
    if (address === undefined) return 'no-client-address';
    const denied = lists.denyIps?.has(address);
    const allowed = lists.allowIps?.has(address);
    if (denied === undefined && allowed === undefined) return 'no-client-address';
    if (denied) return 'deny-ips';
    if (allowed === false) return 'allow-ips';
  }
  const code = country || UNKNOWN_COUNTRY;
  if (lists.denyCountries?.has(code)) return 'deny-countries';
  if (lists.allowCountries && !lists.allowCountries.has(code)) return 'allow-countries';
  return undefined;
}
