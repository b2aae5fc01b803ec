import { readFileSync } from 'node:fs';
import { ErrorCode, WarrenError } from '../errors.js';

/**
 * Tunnel credentials: what the connector needs to register with the edge. Never log this
 * object: `tunnelSecret` is the shared secret. `describeCredentials` gives a loggable summary.
 */
export interface TunnelCredentials {
  /** Cloudflare account id. */
  readonly accountTag: string;
  /** Raw secret bytes (≥ 32), sent in the registration RPC. */
  readonly tunnelSecret: Buffer;
  /** Canonical lower-case UUID text. */
  readonly tunnelId: string;
  /** The tunnel UUID as 16 raw bytes (RFC 4122 order), as the RPC carries it. */
  readonly tunnelIdBytes: Buffer;
  /** Edge region/environment from the credentials (`"fed"` for FedRAMP); undefined when absent or empty. */
  readonly endpoint?: string | undefined;
}

/** Where credentials are read from: settings `tunnel.tokenFile` / `tunnel.credentialsFile`, env `TUNNEL_TOKEN`. */
export interface CredentialSources {
  readonly tokenFile?: string | undefined;
  readonly credentialsFile?: string | undefined;
}

/** Minimum length of a tunnel secret in bytes; a shorter user-supplied secret is refused. */
const MIN_SECRET_BYTES = 32;

const STRICT_STD_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function credentialError(source: string, detail: string): WarrenError {
  return new WarrenError(ErrorCode.TunnelCredentials, `${source}: ${detail}`, { terminal: true });
}

/** Parses a canonical UUID (`8-4-4-4-12` hex) into 16 bytes; undefined when malformed. */
export function uuidToBytes(text: string): Buffer | undefined {
  if (!UUID.test(text)) return undefined;
  return Buffer.from(text.replace(/-/g, ''), 'hex');
}

/** Formats 16 bytes as a canonical lower-case UUID. */
export function bytesToUuid(bytes: Uint8Array): string {
  const hex = Buffer.from(bytes).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

function decodeSecret(value: unknown, source: string, field: string): Buffer {
  if (typeof value !== 'string' || value.length === 0) {
    throw credentialError(source, `field "${field}" must be a non-empty base64 string`);
  }
  if (!STRICT_STD_BASE64.test(value)) {
    throw credentialError(source, `field "${field}" is not valid standard base64 (alphabet A-Z a-z 0-9 + /, with = padding)`);
  }
  const secret = Buffer.from(value, 'base64');
  if (secret.length < MIN_SECRET_BYTES) {
    throw credentialError(source, `field "${field}" decodes to ${secret.length} bytes; a tunnel secret has at least ${MIN_SECRET_BYTES}`);
  }
  return secret;
}

function checkAccountTag(value: unknown, source: string, field: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this check refuses
  if (typeof value !== 'string' || value.length === 0 || /[\s\u0000-\u001f]/.test(value)) {
    throw credentialError(source, `field "${field}" must be the account id (a non-empty string without spaces)`);
  }
  return value;
}

function checkTunnelId(value: unknown, source: string, field: string): { text: string; bytes: Buffer } {
  const bytes = typeof value === 'string' ? uuidToBytes(value) : undefined;
  if (!bytes) throw credentialError(source, `field "${field}" must be a tunnel UUID such as "c0ffee00-1111-2222-3333-444455556666"`);
  return { text: (value as string).toLowerCase(), bytes };
}

function checkEndpoint(value: unknown, source: string, field: string): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string' || !/^[a-z0-9-]+$/i.test(value)) {
    throw credentialError(source, `field "${field}" must be an edge region name such as "fed"`);
  }
  return value;
}

/**
 * Builds a frozen credentials object whose secret is non-enumerable, so that logging or serializing the
 * object by mistake (pino, JSON.stringify, util.inspect) never prints it.
 */
export function makeCredentials(accountTag: string, tunnelSecret: Buffer, id: { text: string; bytes: Buffer }, endpoint?: string): TunnelCredentials {
  const credentials = { accountTag, tunnelId: id.text, tunnelIdBytes: id.bytes, endpoint } as Omit<TunnelCredentials, 'tunnelSecret'>;
  Object.defineProperty(credentials, 'tunnelSecret', { value: tunnelSecret, enumerable: false });
  return Object.freeze(credentials) as TunnelCredentials;
}

function parseJsonObject(text: string, source: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // The parser's message quotes the input, which holds the secret: never pass it on.
    throw credentialError(source, 'is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw credentialError(source, 'must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}

/**
 * Parses a tunnel token: strict standard base64 (with padding) of JSON `{"a","s","t","e"?}`, where
 * `s` is itself standard base64 of the secret. Surrounding whitespace is ignored. Throws a terminal
 * WarrenError (TunnelCredentials) naming the field; the message never contains the token or the secret.
 */
export function parseTunnelToken(token: string, source = 'tunnel token'): TunnelCredentials {
  const trimmed = token.trim();
  if (trimmed.length === 0) throw credentialError(source, 'is empty');
  if (!STRICT_STD_BASE64.test(trimmed)) {
    throw credentialError(source, 'is not valid: expected standard base64 (alphabet A-Z a-z 0-9 + /, with = padding)');
  }
  const json = parseJsonObject(Buffer.from(trimmed, 'base64').toString('utf8'), source);
  const id = checkTunnelId(json.t, source, 't');
  return makeCredentials(checkAccountTag(json.a, source, 'a'), decodeSecret(json.s, source, 's'), id, checkEndpoint(json.e, source, 'e'));
}

/** Encodes credentials as a tunnel token (what `cloudflared tunnel token` prints). */
export function encodeTunnelToken(credentials: Pick<TunnelCredentials, 'accountTag' | 'tunnelSecret' | 'tunnelId' | 'endpoint'>): string {
  const body: Record<string, string> = {
    a: credentials.accountTag,
    s: credentials.tunnelSecret.toString('base64'),
    t: credentials.tunnelId,
  };
  if (credentials.endpoint) body.e = credentials.endpoint;
  return Buffer.from(JSON.stringify(body), 'utf8').toString('base64');
}

/**
 * Parses a credentials file: JSON `{"AccountTag","TunnelSecret","TunnelID","Endpoint"?}` with keys
 * matched case-insensitively (files written by other tools differ in case) and unknown keys ignored.
 */
export function parseCredentialsJson(text: string, source = 'tunnel credentials file'): TunnelCredentials {
  const json = parseJsonObject(text, source);
  const byLower = new Map<string, { key: string; value: unknown }>();
  for (const [key, value] of Object.entries(json)) {
    const lower = key.toLowerCase();
    // An exact spelling wins over a case-insensitive match; among those, the last one in the file.
    if (!byLower.has(lower) || ['AccountTag', 'TunnelSecret', 'TunnelID', 'Endpoint'].includes(key)) byLower.set(lower, { key, value });
  }
  const field = (name: string) => byLower.get(name.toLowerCase())?.value;
  const id = checkTunnelId(field('TunnelID'), source, 'TunnelID');
  return makeCredentials(
    checkAccountTag(field('AccountTag'), source, 'AccountTag'),
    decodeSecret(field('TunnelSecret'), source, 'TunnelSecret'),
    id,
    checkEndpoint(field('Endpoint'), source, 'Endpoint'),
  );
}

/** Encodes credentials as credentials-file JSON (all four keys, as cloudflared writes them). */
export function encodeCredentialsJson(credentials: Pick<TunnelCredentials, 'accountTag' | 'tunnelSecret' | 'tunnelId' | 'endpoint'>): string {
  return JSON.stringify({
    AccountTag: credentials.accountTag,
    TunnelSecret: credentials.tunnelSecret.toString('base64'),
    TunnelID: credentials.tunnelId,
    Endpoint: credentials.endpoint ?? '',
  });
}

/**
 * Loads credentials with cloudflared's precedence: env `TUNNEL_TOKEN`, then `tunnel.tokenFile` (content
 * trimmed), then `tunnel.credentialsFile`. Throws a terminal WarrenError (TunnelCredentials) when none is
 * configured, a file cannot be read, or the content is malformed.
 */
export function loadTunnelCredentials(
  sources: CredentialSources,
  env: NodeJS.ProcessEnv = process.env,
  readFile: (path: string) => string = (path) => readFileSync(path, 'utf8'),
): TunnelCredentials {
  const token = env.TUNNEL_TOKEN;
  if (token !== undefined && token.trim() !== '') return parseTunnelToken(token, 'env TUNNEL_TOKEN');
  if (sources.tokenFile) {
    return parseTunnelToken(readSource(sources.tokenFile, 'tunnel.tokenFile', readFile), `tunnel.tokenFile "${sources.tokenFile}"`);
  }
  if (sources.credentialsFile) {
    return parseCredentialsJson(readSource(sources.credentialsFile, 'tunnel.credentialsFile', readFile), `tunnel.credentialsFile "${sources.credentialsFile}"`);
  }
  throw credentialError(
    'tunnel credentials',
    'none configured: set env TUNNEL_TOKEN, tunnel.tokenFile or tunnel.credentialsFile (or disable the connector with tunnel.enabled=false)',
  );
}

function readSource(path: string, setting: string, readFile: (path: string) => string): string {
  try {
    return readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw credentialError(`${setting} "${path}"`, `cannot be read (${code})`);
  }
}

/** A loggable summary: account and tunnel id, never the secret. */
export function describeCredentials(credentials: TunnelCredentials): { accountTag: string; tunnelId: string; endpoint?: string } {
  return { accountTag: credentials.accountTag, tunnelId: credentials.tunnelId, ...(credentials.endpoint ? { endpoint: credentials.endpoint } : {}) };
}
