import { isIP } from 'node:net';

/**
 * A small validator for the Rules language subset that firewall custom rules use, so the fake rejects what
 * the API would: unknown fields and functions, unbalanced parentheses, bad IP/CIDR literals (including host bits
 * set), empty sets, expressions over 4,096 characters, and the regex operator `matches` on plans below Business.
 */
const FIELDS = new Set([
  'http.host',
  'http.request.uri',
  'http.request.uri.path',
  'http.request.uri.query',
  'http.request.full_uri',
  'http.request.method',
  'http.user_agent',
  'http.referer',
  'ip.src',
  'ip.src.country',
  'ip.src.continent',
  'ip.src.asnum',
  'ip.geoip.country',
  'ssl',
  'cf.client.bot',
  'cf.threat_score',
]);
const FUNCTIONS = new Set(['lower', 'upper', 'ends_with', 'starts_with', 'len', 'concat', 'any', 'all']);
const COMPARISONS = new Set(['eq', 'ne', 'lt', 'le', 'gt', 'ge', '==', '!=', '<', '<=', '>', '>=', 'contains', 'matches', '~', 'wildcard', 'in']);

type Token = { kind: 'str' | 'word' | 'num' | 'ip' | 'punct'; text: string };

export interface ExpressionCheckOptions {
  /** Whether the zone's plan allows `matches` (Business and Enterprise). */
  readonly regexAllowed: boolean;
}

/** Returns undefined when valid, else the reason. */
export function checkExpression(expression: unknown, options: ExpressionCheckOptions): string | undefined {
  if (typeof expression !== 'string' || expression.trim() === '') return 'expression is required';
  if (expression.length > 4096) return `expression is ${expression.length} characters long; the limit is 4096`;
  let tokens: Token[];
  try {
    tokens = tokenize(expression);
    const parser = new Parser(tokens, options);
    parser.expression();
    if (!parser.done()) return `unexpected "${parser.peek()?.text}"`;
  } catch (err) {
    return (err as Error).message;
  }
  return undefined;
}

function tokenize(s: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '"' || (c === 'r' && s[i + 1] === '"')) {
      const raw = c === 'r';
      let j = i + (raw ? 2 : 1);
      let text = '';
      while (j < s.length && s[j] !== '"') {
        if (!raw && s[j] === '\\') j++;
        text += s[j] ?? '';
        j++;
      }
      if (j >= s.length) throw new Error('unterminated string');
      out.push({ kind: 'str', text });
      i = j + 1;
    } else if (/[0-9a-fA-F:]/.test(c) && /^[0-9a-fA-F:.]+(\/\d+)?/.test(s.slice(i)) && looksLikeIp(s.slice(i))) {
      const m = /^[0-9a-fA-F:.]+(\/\d+)?/.exec(s.slice(i))!;
      out.push({ kind: 'ip', text: m[0] });
      i += m[0].length;
    } else if (/[0-9]/.test(c)) {
      const m = /^\d+/.exec(s.slice(i))!;
      out.push({ kind: 'num', text: m[0] });
      i += m[0].length;
    } else if (/[a-z_]/i.test(c)) {
      const m = /^[a-z_][a-z0-9_.]*/i.exec(s.slice(i))!;
      out.push({ kind: 'word', text: m[0] });
      i += m[0].length;
    } else {
      const two = s.slice(i, i + 2);
      if (['==', '!=', '<=', '>=', '&&', '||', '^^'].includes(two)) {
        out.push({ kind: 'punct', text: two });
        i += 2;
      } else if ('(){},!<>~'.includes(c)) {
        out.push({ kind: 'punct', text: c });
        i++;
      } else {
        throw new Error(`unexpected character "${c}"`);
      }
    }
  }
  return out;
}

function looksLikeIp(rest: string): boolean {
  const m = /^[0-9a-fA-F:.]+/.exec(rest)![0];
  return (m.includes('.') && /^\d+\.\d+/.test(m)) || m.includes(':');
}

class Parser {
  #i = 0;
  constructor(
    private readonly tokens: Token[],
    private readonly options: ExpressionCheckOptions,
  ) {}

  peek(): Token | undefined {
    return this.tokens[this.#i];
  }
  done(): boolean {
    return this.#i >= this.tokens.length;
  }
  #next(): Token {
    const t = this.tokens[this.#i++];
    if (!t) throw new Error('unexpected end of expression');
    return t;
  }
  #accept(...texts: string[]): boolean {
    const t = this.peek();
    if (t && (t.kind === 'word' || t.kind === 'punct') && texts.includes(t.text)) {
      this.#i++;
      return true;
    }
    return false;
  }
  #expect(text: string): void {
    const t = this.#next();
    if (t.text !== text) throw new Error(`expected "${text}" but found "${t.text}"`);
  }

  expression(): void {
    this.#and();
    while (this.#accept('or', '||', 'xor', '^^')) this.#and();
  }
  #and(): void {
    this.#unary();
    while (this.#accept('and', '&&')) this.#unary();
  }
  #unary(): void {
    if (this.#accept('not', '!')) return this.#unary();
    if (this.#accept('(')) {
      this.expression();
      this.#expect(')');
      return;
    }
    this.#comparison();
  }
  #comparison(): void {
    this.#value();
    const t = this.peek();
    if (!t || !COMPARISONS.has(t.text)) return; // a boolean field or function
    this.#i++;
    if (t.text === 'matches' || t.text === '~') {
      if (!this.options.regexAllowed) throw new Error('not entitled: the matches operator needs a Business or Enterprise plan');
    }
    if (t.text === 'in') return this.#set();
    this.#value();
  }
  #set(): void {
    this.#expect('{');
    let n = 0;
    while (!this.#accept('}')) {
      const t = this.#next();
      if (t.kind === 'ip') checkIp(t.text);
      else if (t.kind !== 'str' && t.kind !== 'num') throw new Error(`unexpected "${t.text}" in a set`);
      n++;
    }
    if (n === 0) throw new Error('a set must not be empty');
  }
  #value(): void {
    const t = this.#next();
    if (t.kind === 'str' || t.kind === 'num') return;
    if (t.kind === 'ip') return checkIp(t.text);
    if (t.kind !== 'word') throw new Error(`unexpected "${t.text}"`);
    if (this.#accept('(')) {
      if (!FUNCTIONS.has(t.text)) throw new Error(`unknown function ${t.text}()`);
      if (!this.#accept(')')) {
        do this.#value();
        while (this.#accept(','));
        this.#expect(')');
      }
      return;
    }
    if (!FIELDS.has(t.text)) throw new Error(`unknown field ${t.text}`);
  }
}

function checkIp(text: string): void {
  const [addr, prefix] = text.split('/');
  const family = isIP(addr ?? '');
  if (!family) throw new Error(`invalid IP address ${text}`);
  if (prefix === undefined) return;
  const bits = Number(prefix);
  const max = family === 4 ? 32 : 128;
  if (!Number.isInteger(bits) || bits < 0 || bits > max) throw new Error(`invalid CIDR ${text}`);
  const value = family === 4 ? v4(addr!) : v6(addr!);
  const hostMask = (1n << BigInt(max - bits)) - 1n;
  if ((value & hostMask) !== 0n) throw new Error(`invalid CIDR ${text}: host bits are set`);
}

function v4(a: string): bigint {
  return a.split('.').reduce((acc, p) => (acc << 8n) | BigInt(Number(p)), 0n);
}

function v6(a: string): bigint {
  // Embedded IPv4 tails (::ffff:1.2.3.4) are accepted without the host-bit check.
  if (a.includes('.')) return 0n;
  const [head, rest] = a.split('::');
  const h = head ? head.split(':').map((g) => BigInt(parseInt(g, 16))) : [];
  const r = rest ? rest.split(':').map((g) => BigInt(parseInt(g, 16))) : [];
  const groups = rest !== undefined ? [...h, ...Array<bigint>(8 - h.length - r.length).fill(0n), ...r] : h;
  return groups.reduce((acc, g) => (acc << 16n) | g, 0n);
}
