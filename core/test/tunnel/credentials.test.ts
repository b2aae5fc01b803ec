import test from 'ava';
import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { ErrorCode, isWarrenError } from '../../src/errors.js';
import {
  bytesToUuid,
  encodeCredentialsJson,
  encodeTunnelToken,
  loadTunnelCredentials,
  parseCredentialsJson,
  parseTunnelToken,
  uuidToBytes,
} from '../../src/tunnel/credentials.js';

const secret = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
const tunnelId = '11111111-2222-3333-4444-555555555555';
const accountTag = '0123456789abcdef0123456789abcdef';
const secretB64 = secret.toString('base64');

function token(body: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify(body)).toString('base64');
}

function credentialFailure(t: import('ava').ExecutionContext, fn: () => unknown, field: RegExp): string {
  const err = t.throws(fn);
  t.true(isWarrenError(err, ErrorCode.TunnelCredentials), String(err));
  t.regex(err!.message, field);
  t.false(err!.message.includes(secretB64), 'the secret must never appear in the message');
  return err!.message;
}

test('a token decodes to account, raw secret bytes, tunnel id (text and 16 bytes) and endpoint', (t) => {
  const c = parseTunnelToken(token({ a: accountTag, s: secretB64, t: tunnelId, e: 'fed' }));
  t.is(c.accountTag, accountTag);
  t.deepEqual(c.tunnelSecret, secret);
  t.is(c.tunnelId, tunnelId);
  t.deepEqual(c.tunnelIdBytes, Buffer.from('11111111222233334444555555555555', 'hex'));
  t.is(c.endpoint, 'fed');
});

test('encodeTunnelToken round-trips through parseTunnelToken, and surrounding whitespace is ignored', (t) => {
  const original = { accountTag, tunnelSecret: randomBytes(48), tunnelId: 'c0ffee00-1111-2222-3333-444455556666' };
  const parsed = parseTunnelToken(`  ${encodeTunnelToken(original)}\n`);
  t.deepEqual(parsed.tunnelSecret, original.tunnelSecret);
  t.is(parsed.tunnelId, original.tunnelId);
  t.is(parsed.endpoint, undefined);
});

test('tokens that are not strict standard base64 are refused', (t) => {
  const good = token({ a: accountTag, s: secretB64, t: tunnelId });
  credentialFailure(t, () => parseTunnelToken(good.replace(/=+$/, '')), /standard base64/);
  const urlSafe = Buffer.from(JSON.stringify({ a: accountTag, s: secretB64, t: tunnelId, x: '??>>' })).toString('base64url');
  if (/[-_]/.test(urlSafe)) credentialFailure(t, () => parseTunnelToken(urlSafe), /standard base64/);
  credentialFailure(t, () => parseTunnelToken('not a token!'), /standard base64/);
  credentialFailure(t, () => parseTunnelToken(''), /is empty/);
});

test('each malformed token field is named, and the secret never appears', (t) => {
  credentialFailure(t, () => parseTunnelToken(token({ s: secretB64, t: tunnelId })), /field "a"/);
  credentialFailure(t, () => parseTunnelToken(token({ a: accountTag, t: tunnelId })), /field "s"/);
  credentialFailure(t, () => parseTunnelToken(token({ a: accountTag, s: 'c2hvcnQ=', t: tunnelId })), /field "s" decodes to 5 bytes/);
  credentialFailure(t, () => parseTunnelToken(token({ a: accountTag, s: secretB64.replace(/=/g, ''), t: tunnelId })), /field "s" is not valid/);
  credentialFailure(t, () => parseTunnelToken(token({ a: accountTag, s: secretB64, t: 'nope' })), /field "t"/);
  credentialFailure(t, () => parseTunnelToken(token({ a: accountTag, s: secretB64, t: tunnelId, e: 'bad region!' })), /field "e"/);
  credentialFailure(t, () => parseTunnelToken(Buffer.from(`{"a":"${accountTag}","s":"${secretB64}"`).toString('base64')), /not valid JSON/);
  credentialFailure(t, () => parseTunnelToken(Buffer.from('[1,2]').toString('base64')), /JSON object/);
});

test('credentials files match keys case-insensitively and ignore unknown keys', (t) => {
  const c = parseCredentialsJson(JSON.stringify({ accounttag: accountTag, TUNNELSECRET: secretB64, tunnelId, TunnelName: 'x', Endpoint: '' }));
  t.is(c.accountTag, accountTag);
  t.deepEqual(c.tunnelSecret, secret);
  t.is(c.tunnelId, tunnelId);
  t.is(c.endpoint, undefined);
  const round = parseCredentialsJson(encodeCredentialsJson(c));
  t.deepEqual(round.tunnelIdBytes, c.tunnelIdBytes);
  credentialFailure(t, () => parseCredentialsJson(JSON.stringify({ AccountTag: accountTag, TunnelSecret: 'AAAA', TunnelID: tunnelId })), /"TunnelSecret" decodes to 3 bytes/);
  credentialFailure(t, () => parseCredentialsJson(JSON.stringify({ AccountTag: accountTag, TunnelSecret: secretB64 })), /"TunnelID"/);
});

test('loading follows the precedence TUNNEL_TOKEN, tokenFile, credentialsFile and names unreadable files', (t) => {
  const files: Record<string, string> = {
    '/t': token({ a: 'from-file', s: secretB64, t: tunnelId }),
    '/c': JSON.stringify({ AccountTag: 'from-creds', TunnelSecret: secretB64, TunnelID: tunnelId }),
  };
  const read = (p: string) => {
    if (!(p in files)) throw Object.assign(new Error('nope'), { code: 'ENOENT' });
    return files[p]!;
  };
  const envToken = token({ a: 'from-env', s: secretB64, t: tunnelId });
  t.is(loadTunnelCredentials({ tokenFile: '/t', credentialsFile: '/c' }, { TUNNEL_TOKEN: envToken }, read).accountTag, 'from-env');
  t.is(loadTunnelCredentials({ tokenFile: '/t', credentialsFile: '/c' }, {}, read).accountTag, 'from-file');
  t.is(loadTunnelCredentials({ credentialsFile: '/c' }, { TUNNEL_TOKEN: '  ' }, read).accountTag, 'from-creds');
  credentialFailure(t, () => loadTunnelCredentials({ tokenFile: '/missing' }, {}, read), /tunnel.tokenFile "\/missing": cannot be read \(ENOENT\)/);
  credentialFailure(t, () => loadTunnelCredentials({}, {}, read), /TUNNEL_TOKEN/);
  credentialFailure(t, () => loadTunnelCredentials({}, { TUNNEL_TOKEN: 'garbage' }, read), /env TUNNEL_TOKEN/);
});

test('the secret is not visible when credentials are logged or serialized', (t) => {
  const c = parseTunnelToken(token({ a: accountTag, s: secretB64, t: tunnelId }));
  t.false(JSON.stringify(c).includes('tunnelSecret'));
  t.false(inspect(c, { depth: 5 }).includes('tunnelSecret'));
  t.is(c.tunnelSecret.length, 32);
});

test('uuid helpers round-trip and reject malformed text', (t) => {
  const bytes = uuidToBytes('AAAAAAAA-bbbb-cccc-dddd-eeeeeeeeeeee')!;
  t.is(bytes.length, 16);
  t.is(bytesToUuid(bytes), 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee');
  t.is(uuidToBytes('aaaaaaaabbbbccccddddeeeeeeeeeeee'), undefined);
});
