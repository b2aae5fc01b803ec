/**
 * A small HTTP/1.1 client for end-to-end tests: one fresh connection per request (so every request is routed
 * anew), an explicit Host header, bounded by a timeout, and the echo backends' JSON parsed when present.
 * Only loopback URLs are used (the edge simulator's eyeball entrance, health servers).
 */
import { request } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';

/** What an echo backend (see echo.ts) or the local demo origin reports about the request it received. */
export interface EchoReport {
  readonly service?: string;
  /** `address:port` of the backend that answered. */
  readonly backend?: string;
  readonly method?: string;
  readonly path?: string;
  readonly host?: string;
  readonly httpVersion?: string;
  readonly headers?: Record<string, string | string[] | undefined>;
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /** The parsed body when it is a JSON object, else undefined. */
  readonly echo: EchoReport | undefined;
}

export interface SendOptions {
  readonly method?: string;
  /** Host header; omitted: the URL's own host:port, as a client that does not override it sends. */
  readonly host?: string;
  readonly headers?: Record<string, string>;
  readonly body?: string;
  readonly timeoutMs?: number;
}

/** Sends one request to `baseUrl` + `path` and reads the whole answer. */
export function send(baseUrl: string, path: string, options: SendOptions = {}): Promise<HttpAnswer> {
  const url = new URL(baseUrl);
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  if (options.host !== undefined) headers.host = options.host;
  if (options.body !== undefined) headers['content-length'] = String(Buffer.byteLength(options.body));
  const timeoutMs = options.timeoutMs ?? 15_000;
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, method: options.method ?? 'GET', headers, agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        let echo: EchoReport | undefined;
        try {
          const parsed: unknown = JSON.parse(body);
          echo = parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as EchoReport) : undefined;
        } catch {
          echo = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, echo });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${options.method ?? 'GET'} ${baseUrl}${path} (Host ${options.host ?? url.host}) timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

/**
 * Repeats `send` until `accept` holds for the answer (connection errors count as not yet), every 50 ms, for at
 * most `timeoutMs`; resolves with the accepted answer or throws with the last one seen.
 */
export async function sendUntil(
  baseUrl: string,
  path: string,
  options: SendOptions,
  accept: (answer: HttpAnswer) => boolean,
  timeoutMs: number,
  what: string,
): Promise<HttpAnswer> {
  const deadline = Date.now() + timeoutMs;
  let last: string = 'no answer';
  for (;;) {
    try {
      const answer = await send(baseUrl, path, { ...options, timeoutMs: Math.max(1_000, Math.min(options.timeoutMs ?? 5_000, deadline - Date.now())) });
      if (accept(answer)) return answer;
      last = `${answer.status} ${answer.body.slice(0, 200)}`;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last answer: ${last}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
