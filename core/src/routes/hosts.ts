import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';

/**
 * Host rules: an Ingress rule host is a DNS name (`foo.example.com`) or a wildcard whose first label is `*`
 * (`*.example.com`, matching exactly one more label). Matching is case-insensitive and ignores the port.
 * Internationalised names must be written in punycode (`xn--…`), as the Kubernetes API requires.
 */

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** A rule host after validation: lower-case, and for wildcards the parent domain they cover. */
export type CheckedHost = { readonly ok: true; readonly host: string; readonly wildcardParent?: string | undefined } | { readonly ok: false; readonly problem: string };

/** Validates and lower-cases a rule host. Never throws. */
export function checkRuleHost(value: unknown): CheckedHost {
  if (typeof value !== 'string') return { ok: false, problem: `must be a string, got ${typeof value}` };
  if (value.length > 253) return { ok: false, problem: `is ${value.length} characters long; a DNS name has at most 253` };
  if (/[^\x21-\x7e]/.test(value)) {
    const ascii = /^[\x21-\x7e\u00a0-\u{10ffff}]+$/u.test(value) ? domainToASCII(value) : '';
    const hint = ascii && ascii !== value ? `; write it in punycode: "${ascii}"` : '';
    return { ok: false, problem: `contains spaces, control or non-ASCII characters${hint}` };
  }
  const host = value.toLowerCase();
  if (isIP(host) !== 0 || (host.startsWith('[') && host.endsWith(']'))) {
    return { ok: false, problem: 'must be a DNS name, not an IP address' };
  }
  if (host.includes(':')) return { ok: false, problem: 'must not carry a port (matching ignores the port)' };
  let labels = host.split('.');
  let wildcard = false;
  if (labels[0] === '*') {
    wildcard = true;
    labels = labels.slice(1);
    if (labels.length === 0) return { ok: false, problem: 'a wildcard needs a parent domain, like "*.example.com"' };
  }
  for (const label of labels) {
    if (label === '*' || label.includes('*')) {
      return { ok: false, problem: 'a wildcard "*" may only be the whole first label, like "*.example.com"' };
    }
    if (label === '') return { ok: false, problem: 'has an empty label (leading, trailing or double dot)' };
    if (!LABEL.test(label)) {
      return {
        ok: false,
        problem: `has an invalid label "${label}": labels are 1-63 letters, digits or "-", not starting or ending with "-"`,
      };
    }
  }
  return wildcard ? { ok: true, host, wildcardParent: labels.join('.') } : { ok: true, host };
}

/**
 * True when a request's Host or `:authority` is only a host and an optional port: a DNS name or IPv4 address
 * (letters, digits, `.`, `-`, `_`) or a bracketed IPv6 address, then `:` and at most 5 digits. Anything else
 * (`a.example:80, evil.example`, `a.example:@evil.example`, `a.example/x`) would be matched on its leading host
 * while a backend that reads Host or X-Forwarded-Host (the last element of a list, or the part after `@` when it
 * builds a URL) sees another one. Empty (an HTTP/1.0 request without Host) is accepted: it matches host-less rules
 * only.
 */
export function validAuthority(authority: string): boolean {
  return authority === '' || AUTHORITY.test(authority);
}

const AUTHORITY = /^(?:[A-Za-z0-9._-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{0,5})?$/;

/**
 * The host a request is matched on: lower-case, without port, without a trailing dot. `authority` is the
 * Host header or `:authority` as sent (`Foo.Example.com:443`, `[::1]:8080`).
 */
export function requestHost(authority: string): string {
  let end = authority.length;
  if (authority.charCodeAt(0) === 91 /* [ */) {
    const close = authority.indexOf(']');
    end = close === -1 ? end : close + 1;
  } else {
    const colon = authority.indexOf(':');
    if (colon !== -1) end = colon;
  }
  if (end > 0 && authority.charCodeAt(end - 1) === 46 /* . */) end--;
  const host = end === authority.length ? authority : authority.slice(0, end);
  return host.toLowerCase();
}
