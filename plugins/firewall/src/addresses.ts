/**
 * An IP allow or deny list compiled for matching one address per request without allocating: IPv4 entries as
 * sorted, merged ranges searched by bisection, IPv6 entries as (network, prefix length) pairs compared word by
 * word. Addresses are parsed from their text with `charCodeAt` into numbers or a shared scratch buffer (matching
 * is synchronous, so one buffer serves every exchange).
 */
export class AddressSet {
  readonly #v4Starts: Float64Array;
  readonly #v4Ends: Float64Array;
  /** Eight 16-bit words per IPv6 entry. */
  readonly #v6Networks: Uint16Array;
  readonly #v6Prefixes: Uint8Array;

  /** `entries`: addresses and CIDR ranges as `ipListSchema` accepts them. Throws for anything else. */
  constructor(entries: readonly string[]) {
    const v4: Array<[number, number]> = [];
    const v6: Array<{ network: Uint16Array; prefix: number }> = [];
    for (const entry of entries) {
      const slash = entry.indexOf('/');
      const address = slash < 0 ? entry : entry.slice(0, slash);
      const v4Value = parseIpv4(address, 0, address.length);
      if (v4Value >= 0) {
        const prefix = slash < 0 ? 32 : Number(entry.slice(slash + 1));
        const size = 2 ** (32 - prefix);
        const start = Math.floor(v4Value / size) * size;
        v4.push([start, start + size - 1]);
        continue;
      }
      const words = new Uint16Array(8);
      if (!parseIpv6(address, words)) throw new Error(`not an IP address or CIDR range: ${entry}`);
      const prefix = slash < 0 ? 128 : Number(entry.slice(slash + 1));
      if (!Number.isInteger(prefix) || prefix < 0 || prefix > 128) throw new Error(`not a CIDR prefix length: ${entry}`);
      v6.push({ network: words, prefix });
    }
    v4.sort((a, b) => a[0] - b[0]);
    const merged: Array<[number, number]> = [];
    for (const range of v4) {
      const last = merged.at(-1);
      if (last && range[0] <= last[1] + 1) last[1] = Math.max(last[1], range[1]);
      else merged.push([range[0], range[1]]);
    }
    this.#v4Starts = Float64Array.from(merged, (r) => r[0]);
    this.#v4Ends = Float64Array.from(merged, (r) => r[1]);
    this.#v6Networks = new Uint16Array(v6.length * 8);
    this.#v6Prefixes = Uint8Array.from(v6, (e) => e.prefix);
    v6.forEach((e, i) => {
      this.#v6Networks.set(e.network, i * 8);
    });
  }

  /**
   * Whether `address` (an IPv4 or IPv6 address as text, without port or brackets) is in the list; undefined when
   * it is not an address. An IPv4-mapped IPv6 address counts as its IPv4 address.
   */
  has(address: string): boolean | undefined {
    let v4 = -1;
    if (address.includes(':')) {
      if (!parseIpv6(address, scratch)) return undefined;
      if (!isV4Mapped(scratch)) return this.#hasV6(scratch);
      v4 = scratch[6]! * 65536 + scratch[7]!;
    } else {
      v4 = parseIpv4(address, 0, address.length);
      if (v4 < 0) return undefined;
    }
    return this.#hasV4(v4);
  }

  #hasV4(value: number): boolean {
    const starts = this.#v4Starts;
    let lo = 0;
    let hi = starts.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (starts[mid]! <= value) lo = mid + 1;
      else hi = mid - 1;
    }
    return hi >= 0 && value <= this.#v4Ends[hi]!;
  }

  #hasV6(words: Uint16Array): boolean {
    const networks = this.#v6Networks;
    for (let i = 0; i < this.#v6Prefixes.length; i++) {
      const prefix = this.#v6Prefixes[i]!;
      const base = i * 8;
      const full = prefix >>> 4;
      let k = 0;
      while (k < full && words[k] === networks[base + k]) k++;
      if (k < full) continue;
      const rest = prefix & 15;
      if (rest === 0) return true;
      const mask = (0xffff << (16 - rest)) & 0xffff;
      if ((words[full]! & mask) === (networks[base + full]! & mask)) return true;
    }
    return false;
  }
}

const scratch = new Uint16Array(8);

function isV4Mapped(w: Uint16Array): boolean {
  return w[0] === 0 && w[1] === 0 && w[2] === 0 && w[3] === 0 && w[4] === 0 && w[5] === 0xffff;
}

/** Dotted-quad IPv4 in `text[start, end)` as a number, or -1. No leading zeros (they read as octal elsewhere). */
function parseIpv4(text: string, start: number, end: number): number {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + octet;
      dots++;
      octet = 0;
      digits = 0;
      continue;
    }
    if (c < 48 || c > 57 || (digits === 1 && octet === 0)) return -1;
    octet = octet * 10 + (c - 48);
    if (++digits > 3 || octet > 255) return -1;
  }
  if (digits === 0 || dots !== 3) return -1;
  return value * 256 + octet;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** Parses IPv6 text (RFC 4291 §2.2: `::`, an IPv4 tail) into eight words; false when it is not one. No zone ids. */
export function parseIpv6(text: string, out: Uint16Array): boolean {
  const n = text.length;
  let i = 0;
  let w = 0;
  let gap = -1;
  if (n >= 2 && text.charCodeAt(0) === 58) {
    if (text.charCodeAt(1) !== 58) return false;
    gap = 0;
    i = 2;
  }
  while (i < n) {
    if (w === 8) return false;
    let value = 0;
    let j = i;
    while (j < n && j - i < 5) {
      const h = hexValue(text.charCodeAt(j));
      if (h < 0) break;
      value = value * 16 + h;
      j++;
    }
    if (j - i > 4) return false;
    if (j < n && text.charCodeAt(j) === 46) {
      if (w > 6) return false;
      const v4 = parseIpv4(text, i, n);
      if (v4 < 0) return false;
      out[w++] = Math.floor(v4 / 65536);
      out[w++] = v4 % 65536;
      i = n;
      break;
    }
    if (j === i) return false;
    out[w++] = value;
    i = j;
    if (i === n) break;
    if (text.charCodeAt(i) !== 58 || ++i === n) return false;
    if (text.charCodeAt(i) === 58) {
      if (gap >= 0) return false;
      gap = w;
      i++;
    }
  }
  if (gap < 0) return w === 8;
  if (w === 8) return false;
  const tail = w - gap;
  for (let k = 0; k < tail; k++) out[7 - k] = out[w - 1 - k]!;
  for (let k = gap; k < 8 - tail; k++) out[k] = 0;
  return true;
}
