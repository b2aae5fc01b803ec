import { parseArgs } from 'node:util';
import { DEBUG_VIEW_MAX_LIMIT, type RouteTableView, type RouteView } from './routes/debug-view.js';

/**
 * `warren routes`: prints the live route table of a running Warren, read from its health port's
 * `/debug/routes` (see docs/troubleshooting.md). Read-only; talks to nothing else.
 */

export const ROUTES_USAGE = `Usage: warren routes [options]

Prints the live route table of a running Warren: host, path (with the conditions and weight of Gateway API
routes), the object it comes from (an Ingress, HTTPRoute or GRPCRoute), backend, endpoints with their state,
protocol and plugins, and current problems. Reads GET /debug/routes on Warren's health port.

Options:
      --url URL       Warren's health server (default http://127.0.0.1:10254, the default server.listen);
                      in a cluster: kubectl -n warren-system port-forward deploy/warren 10254
      --host HOST     only routes that can answer this request host (and their objects' problems)
      --path PATH     with --host: also show which route a request for this path gets
      --gateway NS/NAME  with --path: as a request that arrived on this Gateway's own tunnel (managed tunnel)
      --limit N       list at most N routes and N problems (default 1000, at most 10000)
      --json          print the JSON as served
  -h, --help          show this help and exit
`;

/** Where output goes (process.stdout / process.stderr, or a collector in tests). */
export interface Output {
  write(text: string): unknown;
}

const DEFAULT_URL = 'http://127.0.0.1:10254';
const TIMEOUT_MS = 10_000;

function parseRoutesFlags(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      url: { type: 'string' },
      host: { type: 'string' },
      path: { type: 'string' },
      gateway: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  }).values;
}

/** Runs the command; returns the exit code (0 ok, 1 Warren unreachable or answered an error, 2 bad flags). */
export async function runRoutesCommand(argv: readonly string[], out: Output, err: Output): Promise<number> {
  let values: ReturnType<typeof parseRoutesFlags>;
  try {
    values = parseRoutesFlags(argv);
  } catch (e) {
    err.write(`warren routes: ${(e as Error).message}\n\n${ROUTES_USAGE}`);
    return 2;
  }
  if (values.help) {
    out.write(ROUTES_USAGE);
    return 0;
  }
  if (values.path !== undefined && values.host === undefined) {
    err.write('warren routes: --path needs --host (a request is matched on host and path)\n');
    return 2;
  }
  if (values.gateway !== undefined && values.path === undefined) {
    err.write('warren routes: --gateway needs --host and --path (it says which tunnel the request arrived on)\n');
    return 2;
  }
  if (values.limit !== undefined && (!/^[1-9]\d*$/.test(values.limit) || Number(values.limit) > DEBUG_VIEW_MAX_LIMIT)) {
    err.write(`warren routes: --limit must be a whole number from 1 to ${DEBUG_VIEW_MAX_LIMIT}, not ${JSON.stringify(values.limit)}\n`);
    return 2;
  }
  let target: URL;
  try {
    target = new URL('/debug/routes', values.url ?? DEFAULT_URL);
  } catch {
    err.write(`warren routes: --url ${JSON.stringify(values.url)} is not a URL such as ${DEFAULT_URL}\n`);
    return 2;
  }
  for (const key of ['host', 'path', 'gateway', 'limit'] as const) if (values[key] !== undefined) target.searchParams.set(key, values[key]);

  let body: string;
  try {
    const res = await fetch(target, { signal: AbortSignal.timeout(TIMEOUT_MS), headers: { accept: 'application/json' } });
    body = await res.text();
    if (res.status !== 200) {
      err.write(
        `warren routes: ${target.origin} answered ${res.status} on /debug/routes${res.status === 404 ? ' (not a Warren health port, or a Warren without the debug view)' : ''}\n`,
      );
      return 1;
    }
  } catch (e) {
    const c = (e as { cause?: { code?: string; message?: string } }).cause;
    const cause = c?.code ?? c?.message ?? (e as Error).message;
    err.write(`warren routes: cannot reach Warren's health server at ${target.origin} (${cause}); set --url, or port-forward port 10254\n`);
    return 1;
  }
  if (values.json) {
    out.write(body.endsWith('\n') ? body : `${body}\n`);
    return 0;
  }
  out.write(formatRouteTableView(JSON.parse(body) as RouteTableView));
  return 0;
}

/** Renders the view as text: a summary line, one line per route (endpoints below it), then the problems. */
export function formatRouteTableView(view: RouteTableView): string {
  const lines: string[] = [
    `route table generation ${view.generation}: ${count(view.totalRoutes, 'route')}, ${count(view.hosts, 'host')}, ${count(view.ingresses, 'Ingress')}, ${count(
      view.problems.length + view.truncated.problems,
      'problem',
    )}`,
  ];
  if (view.match !== undefined) {
    lines.push('', view.match === null ? 'this request gets: no route (404)' : `this request gets: ${routeLine(view.match)}`);
  }
  lines.push('');
  if (view.routes.length === 0) lines.push('no routes');
  else {
    const rows = view.routes.map((r) => [r.host, pathText(r), ownerText(r), backendText(r), r.protocol, r.plugins.join(',') || '-', stateText(r)]);
    lines.push(...columns([['HOST', 'PATH', 'FROM', 'BACKEND', 'PROTOCOL', 'PLUGINS', 'STATE'], ...rows]));
    for (const r of view.routes) {
      const eps = r.endpoints.map((e) => `${e.address}:${e.port} ${e.state}${e.pod ? ` (${e.pod})` : ''}`);
      if (eps.length > 0) lines.push(`  ${r.host}${r.path}: ${eps.join(', ')}`);
    }
  }
  if (view.truncated.routes > 0) lines.push(`… ${view.truncated.routes} more routes (use --limit or --host)`);
  if (view.problems.length > 0) {
    lines.push('', 'PROBLEMS');
    for (const p of view.problems) lines.push(`${p.type} ${p.reason} ${p.object}${p.field ? ` ${p.field}` : ''}: ${p.message}`);
  }
  if (view.truncated.problems > 0) lines.push(`… ${view.truncated.problems} more problems`);
  return `${lines.join('\n')}\n`;
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

function routeLine(r: RouteView): string {
  return `${r.host} ${pathText(r)} from ${ownerText(r)} → ${backendText(r)}, ${stateText(r)}`;
}

/** An Ingress as `namespace/name` (as always); other kinds name themselves, so an HTTPRoute never reads as an Ingress. */
function ownerText(r: RouteView): string {
  const owner = r.kind === undefined || r.kind === 'Ingress' ? r.ingress : `${r.kind} ${r.ingress}`;
  return r.gateway ? `${owner} via Gateway ${r.gateway}` : owner;
}

/** Path and type, then what else the request must carry (`[GET x-env=canary ?v=2]`, `~` for a regex) and the weight. */
function pathText(r: RouteView): string {
  const c = r.conditions;
  const terms = [
    ...(c?.method ? [c.method] : []),
    ...(c?.headers ?? []).map((h) => `${h.name}${h.type === 'Exact' ? '=' : '~'}${h.value}`),
    ...(c?.query ?? []).map((q) => `?${q.name}${q.type === 'Exact' ? '=' : '~'}${q.value}`),
  ];
  return `${r.path} (${r.pathType})${terms.length ? ` [${terms.join(' ')}]` : ''}${r.weight ? ` weight ${r.weight.weight}` : ''}`;
}

function backendText(r: RouteView): string {
  const port = r.backend.portName ?? String(r.backend.port);
  return `${r.backend.namespace}/${r.backend.service || '?'}:${port}`;
}

function stateText(r: RouteView): string {
  if (r.state === 'unresolved') return `${r.problem?.status ?? 503} ${r.problem?.reason ?? 'unresolved'}`;
  // A Gateway API rule without backendRefs names no Service: the proxy answers 500 there.
  if (r.state === 'no-endpoints') return r.backend.service === '' ? '500 no backend' : '503 no ready endpoints';
  const terminating = r.endpoints.filter((e) => e.state === 'terminating').length;
  return `${count(r.endpoints.length, 'endpoint')}${terminating ? ` (${terminating} terminating)` : ''}`;
}

function columns(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '));
}
