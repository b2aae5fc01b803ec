/**
 * Built-in plugins, by settings name, with the package that provides each. Like Caddy's standard module list:
 * core does not import them statically, it loads them by package name exactly as it loads custom plugins.
 */
export const BUILTIN_PLUGINS: Readonly<Record<string, string>> = Object.freeze({
  tls: '@warren/plugin-tls',
  http2: '@warren/plugin-http2',
  keepalive: '@warren/plugin-keepalive',
  websocket: '@warren/plugin-websocket',
  grpc: '@warren/plugin-grpc',
  sse: '@warren/plugin-sse',
  dns: '@warren/plugin-dns',
  firewall: '@warren/plugin-firewall',
});
