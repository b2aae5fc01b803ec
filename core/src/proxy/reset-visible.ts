import { buildConnector } from 'undici';

/**
 * The code an origin's connection reset carries once it has passed {@link resetVisibleConnector}. Warren counts
 * it as a reset like `ECONNRESET` (errors.ts).
 */
export const ORIGIN_RESET = 'WARREN_ORIGIN_RESET';

/**
 * undici's connector for `options`, whose sockets report a reset by the origin under {@link ORIGIN_RESET}.
 * undici's HTTP/1.1 client takes an `ECONNRESET` in the middle of a body delimited by the connection's close for
 * the end of that body (a workaround for platforms that report a reset after a complete body), so a response the
 * origin cut off by crashing would be delivered as complete, and cached as such. Under another code undici
 * reports it as the error it is. Bodies with a length or chunked framing were never affected: their end is
 * explicit.
 */
/**
 * Options undici's connector reads or passes on to `net.connect` / `tls.connect` although its types omit them.
 */
interface SocketOptions {
  useH2c?: boolean;
  highWaterMark?: number | undefined;
  readableHighWaterMark?: number;
}

export function resetVisibleConnector(options: buildConnector.BuildOptions & SocketOptions): buildConnector.connector {
  const connect = buildConnector(options as buildConnector.BuildOptions);
  return (opts, callback) =>
    connect(opts, (...args) => {
      const socket = args[1];
      // Runs before undici's own listener, which then sees the renamed code.
      socket?.prependListener('error', renameReset);
      callback(...args);
    });
}

function renameReset(err: NodeJS.ErrnoException): void {
  if (err.code === 'ECONNRESET') err.code = ORIGIN_RESET;
}
