import { ErrorCode, WarrenError } from '../errors.js';

/**
 * A listener that cannot bind, as one terminal error naming the address, the reason and the setting (flag) that
 * moves it; other errors pass unchanged.
 */
export function listenError(err: unknown, setting: string, address: string): unknown {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const why =
    code === 'EADDRINUSE' ? 'the port is already in use' : code === 'EACCES' ? 'permission denied' : code === 'EADDRNOTAVAIL' ? 'no such address on this machine' : undefined;
  if (!why) return err;
  const [host, port] = splitListen(address);
  const example = `${host.includes(':') ? `[${host}]` : host}:${Number(port) > 0 && Number(port) < 65535 ? Number(port) + 1 : 18080}`;
  return new WarrenError(ErrorCode.ConfigInvalid, `cannot listen on ${address} (${setting}): ${why}; choose another address with --set ${setting}=${example}`, {
    terminal: true,
    cause: err,
  });
}

/** `host:port` (host possibly in brackets) as `[host, port]`. */
export function splitListen(listen: string): [string, string] {
  const i = listen.lastIndexOf(':');
  return [listen.slice(0, i).replace(/^\[|\]$/g, ''), listen.slice(i + 1)];
}
