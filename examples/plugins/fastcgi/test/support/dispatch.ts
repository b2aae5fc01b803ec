import { Readable } from 'node:stream';
import type { DispatchController, PoolDispatchOptions } from '@warren/core/plugin';
import type { ScriptSettings } from '../../src/cgi-params.js';
import { SCRIPT_SETTINGS, type FastCgiPool } from '../../src/fastcgi-pool.js';

/** Drives one request through a pool directly, as core's dispatch would, and records every callback. */

export interface PoolReply {
  readonly status: number | undefined;
  readonly headers: Record<string, string | string[]>;
  readonly rawHeaders: Buffer[] | null;
  readonly body: Buffer;
  /** Set when the request ended with an error; `status` tells whether a head came first. */
  readonly error: (Error & { code?: string }) | undefined;
  readonly calls: readonly string[];
}

export interface PoolRequest {
  readonly method?: string;
  readonly path?: string;
  readonly headers?: string[];
  readonly body?: Buffer | Readable;
  readonly settings: ScriptSettings;
  readonly headersTimeout?: number;
  /** Called with the controller once the head arrived (to pause, abort). */
  readonly onHead?: (controller: DispatchController) => void;
  /** Called for each body chunk. */
  readonly onData?: (controller: DispatchController, total: number) => void;
  readonly clientAddress?: string;
}

export function poolRequest(pool: FastCgiPool, request: PoolRequest): Promise<PoolReply> {
  const body = request.body;
  const headers = [...(request.headers ?? [])];
  if (Buffer.isBuffer(body)) headers.push('content-length', String(body.length));
  const context = {
    get: (key: unknown) => (key === SCRIPT_SETTINGS ? request.settings : undefined),
    exchange: { id: 'test-exchange', head: { authority: 'php.example', clientAddress: request.clientAddress ?? '198.18.0.9' } },
  };
  const options = {
    method: request.method ?? 'GET',
    path: request.path ?? '/echo.php',
    headers,
    body: body === undefined ? null : Buffer.isBuffer(body) ? Readable.from([body]) : body,
    headersTimeout: request.headersTimeout ?? 10_000,
    context,
  } as unknown as PoolDispatchOptions;
  return new Promise((resolve) => {
    const calls: string[] = [];
    const chunks: Buffer[] = [];
    let status: number | undefined;
    let replyHeaders: Record<string, string | string[]> = {};
    let rawHeaders: Buffer[] | null = null;
    let total = 0;
    const done = (error: Error | undefined): void => {
      clearTimeout(stuck);
      resolve({ status, headers: replyHeaders, rawHeaders, body: Buffer.concat(chunks), error, calls });
    };
    // A pool that never ends a request fails the test instead of hanging it.
    const stuck = setTimeout(() => {
      calls.push('stuck');
      done(undefined);
    }, 15_000);
    pool.dispatch(options, {
      onRequestStart() {
        calls.push('start');
      },
      onResponseStart(controller, code, h) {
        calls.push('head');
        status = code;
        replyHeaders = h as Record<string, string | string[]>;
        rawHeaders = controller.rawHeaders as Buffer[] | null;
        request.onHead?.(controller);
      },
      onResponseData(controller, chunk) {
        if (calls.at(-1) !== 'data') calls.push('data');
        chunks.push(chunk);
        total += chunk.length;
        request.onData?.(controller, total);
      },
      onResponseEnd() {
        calls.push('end');
        done(undefined);
      },
      onResponseError(_c, err) {
        calls.push('error');
        done(err);
      },
    });
  });
}

/** Settings as `bind` would compute them for a document root. */
export function scriptSettings(documentRoot: string, overrides: Partial<ScriptSettings> = {}): ScriptSettings {
  return { documentRoot, index: 'index.php', scriptExtension: '.php', params: [], ...overrides };
}
