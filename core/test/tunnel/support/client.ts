import { request, type IncomingHttpHeaders } from 'node:http';

export interface EyeballResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: string[];
  readonly trailers: NodeJS.Dict<string>;
  readonly body: Buffer;
}

/** An HTTP/1.1 request with node:http (unlike fetch it may set Host and send a GET body). */
export function eyeballRequest(url: string, options: { method?: string; headers?: Record<string, string> | string[]; body?: Buffer | string } = {}): Promise<EyeballResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? 'GET', headers: options.headers ?? { host: 'app.example.com' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, trailers: res.trailers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}
