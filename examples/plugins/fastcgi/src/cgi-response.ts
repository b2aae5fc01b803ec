import { protocolError } from './records.js';

/**
 * The head of a CGI response (RFC 3875 §6) read from the application's STDOUT: header fields up to an empty
 * line, lines ending in LF or CRLF. `Status:` sets the status (200 without it, 302 when there is a `Location`
 * and no `Status`); every other field becomes a response header.
 */

export interface CgiHead {
  readonly status: number;
  readonly statusText: string;
  /** Lower-case names; repeated fields as arrays (undici's shape). */
  readonly headers: Record<string, string | string[]>;
  /** `[name, value, …]` with the application's spelling of the names. */
  readonly raw: Buffer[];
  /** The declared `Content-Length`, when there is one. */
  readonly contentLength: number | undefined;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Visible ASCII, obs-text, space and tab; no CR, LF, NUL or other controls.
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
const STATUS = /^([1-5]\d\d)(?:[ \t]+(.*))?$/;
const LF = 0x0a;

/**
 * Collects STDOUT bytes until the head is complete. `push` returns the parsed head and the first body bytes
 * once the empty line arrived, `undefined` while more is needed; it throws a {@link protocolError} for a head
 * larger than `maxBytes` or one that does not parse.
 */
export class CgiHeadReader {
  readonly #maxBytes: number;
  readonly #chunks: Buffer[] = [];
  #length = 0;
  /** Bytes already searched for the empty line (the search resumes two bytes earlier: a CRLF may straddle chunks). */
  #scanned = 0;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  push(chunk: Buffer): { head: CgiHead; body: Buffer } | undefined {
    this.#chunks.push(chunk);
    this.#length += chunk.length;
    const data = this.#chunks.length === 1 ? chunk : Buffer.concat(this.#chunks);
    if (this.#chunks.length > 1) this.#chunks.splice(0, this.#chunks.length, data);
    const end = findHeadEnd(data, Math.max(0, this.#scanned - 2));
    if (end === undefined) {
      if (this.#length > this.#maxBytes) throw protocolError(`response head exceeds ${this.#maxBytes} bytes`);
      this.#scanned = data.length;
      return undefined;
    }
    if (end.headEnd > this.#maxBytes) throw protocolError(`response head exceeds ${this.#maxBytes} bytes`);
    return { head: parseHead(data.subarray(0, end.headEnd)), body: data.subarray(end.bodyStart) };
  }
}

/** Position of the empty line that ends the head: the end of the head's text and the start of the body. */
function findHeadEnd(data: Buffer, from: number): { headEnd: number; bodyStart: number } | undefined {
  // The head is empty when the output starts with an empty line.
  if (from === 0) {
    if (data[0] === LF) return { headEnd: 0, bodyStart: 1 };
    if (data[0] === 0x0d && data[1] === LF) return { headEnd: 0, bodyStart: 2 };
  }
  for (let i = data.indexOf(LF, from); i !== -1; i = data.indexOf(LF, i + 1)) {
    const next = i + 1;
    if (data[next] === LF) return { headEnd: i, bodyStart: next + 1 };
    if (data[next] === 0x0d && data[next + 1] === LF) return { headEnd: i, bodyStart: next + 2 };
  }
  return undefined;
}

function parseHead(text: Buffer): CgiHead {
  const headers: Record<string, string | string[]> = {};
  const raw: Buffer[] = [];
  let status: number | undefined;
  let statusText = '';
  let contentLength: number | undefined;
  const lines = text.length === 0 ? [] : text.toString('latin1').split('\n');
  for (let line of lines) {
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line.length === 0) continue;
    if (line[0] === ' ' || line[0] === '\t') throw protocolError('response header line folded over several lines');
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    if (!TOKEN.test(name)) throw protocolError(`response header line without a valid field name: ${JSON.stringify(line.slice(0, 40))}`);
    const value = line.slice(colon + 1).trim();
    if (BAD_VALUE.test(value)) throw protocolError(`response header "${name}" has control characters in its value`);
    const lower = name.toLowerCase();
    if (lower === 'status') {
      const m = STATUS.exec(value);
      if (!m || status !== undefined) throw protocolError(`invalid or repeated Status ${JSON.stringify(value.slice(0, 40))}`);
      status = Number(m[1]);
      if (status < 200) throw protocolError(`Status ${status} is informational, not a final response`);
      statusText = m[2] ?? '';
      continue;
    }
    if (lower === 'content-length') {
      if (!/^\d{1,15}$/.test(value) || (contentLength !== undefined && contentLength !== Number(value))) {
        throw protocolError(`invalid Content-Length ${JSON.stringify(value.slice(0, 40))}`);
      }
      if (contentLength !== undefined) continue;
      contentLength = Number(value);
    }
    const prev = headers[lower];
    headers[lower] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
    raw.push(Buffer.from(name, 'latin1'), Buffer.from(value, 'latin1'));
  }
  if (status === undefined) status = headers.location !== undefined ? 302 : 200;
  return { status, statusText, headers, raw, contentLength };
}
