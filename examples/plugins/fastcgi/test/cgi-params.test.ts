import test from 'ava';
import { ErrorCode } from '@warren/core/plugin';
import { cgiParams, splitScript, type CgiRequest } from '../src/cgi-params.js';
import { FASTCGI_INDEX, FASTCGI_PARAMS, FASTCGI_SCRIPT_ROOT } from '../src/manifest.js';
import { scriptSettings } from './support/dispatch.js';

const SPLIT = { index: 'index.php', scriptExtension: '.php' };

test('script name and PATH_INFO: first element ending in .php; index for a trailing slash', (t) => {
  t.deepEqual(splitScript('/app.php/users/7', SPLIT), { scriptName: '/app.php', pathInfo: '/users/7' });
  t.deepEqual(splitScript('/a/b.php', SPLIT), { scriptName: '/a/b.php', pathInfo: '' });
  t.deepEqual(splitScript('/x.phpx/y.php/z', SPLIT), { scriptName: '/x.phpx/y.php', pathInfo: '/z' }, '".phpx" does not end in ".php"');
  t.deepEqual(splitScript('/blog/', SPLIT), { scriptName: '/blog/index.php', pathInfo: '' });
  t.deepEqual(splitScript('/.php/x', SPLIT), { scriptName: '/.php/x', pathInfo: '' }, 'a bare ".php" element is no script');
  t.deepEqual(splitScript('/style.css', SPLIT), { scriptName: '/style.css', pathInfo: '' });
});

const REQUEST: CgiRequest = { method: 'GET', target: '/', headers: [], authority: 'example.test', clientAddress: '198.18.0.5', contentLength: undefined };

function vars(request: Partial<CgiRequest>, settings = scriptSettings('/srv/www')): Map<string, string> {
  return new Map(cgiParams({ ...REQUEST, ...request }, settings));
}

test('paths are decoded (as UTF-8 bytes); escaped slashes that make ".." and NUL bytes are refused', (t) => {
  const v = vars({ target: '/caf%C3%A9.php/a%20b?x=%20' });
  t.is(v.get('SCRIPT_NAME'), Buffer.from('/café.php', 'utf8').toString('latin1'));
  t.is(v.get('PATH_INFO'), '/a b');
  t.is(v.get('QUERY_STRING'), 'x=%20', 'the query stays as the client sent it');
  t.is(v.get('PATH_TRANSLATED'), '/srv/www/a b');
  for (const target of ['/a%2F..%2Fb.php', '/a/%2e%2E/b.php', '/a%00.php', '/%E0%A4%A.php']) {
    const err = t.throws(() => vars({ target }));
    t.is((err as { code?: string }).code, ErrorCode.BadRequest, target);
  }
});

test('Host, scheme and port; Proxy and underscore names are never forwarded; the client cannot set CONTENT_*', (t) => {
  const v = vars({
    headers: ['host', '[2001:db8::1]:8080', 'x-forwarded-proto', 'http', 'proxy', 'x', 'x_forwarded_for', 'y', 'content-type', 'text/plain', 'content-length', '3'],
    contentLength: 3,
  });
  t.is(v.get('SERVER_NAME'), '[2001:db8::1]');
  t.is(v.get('SERVER_PORT'), '8080');
  t.is(v.get('HTTPS'), undefined);
  t.is(v.get('REQUEST_SCHEME'), 'http');
  t.is(v.get('HTTP_PROXY'), undefined);
  t.is(v.get('HTTP_X_FORWARDED_FOR'), undefined);
  t.is(v.get('HTTP_CONTENT_TYPE'), undefined);
  t.is(v.get('CONTENT_TYPE'), 'text/plain');
  t.is(v.get('CONTENT_LENGTH'), '3');
  const https = vars({ headers: ['x-forwarded-proto', 'https'] });
  t.is(https.get('HTTPS'), 'on');
  t.is(https.get('SERVER_PORT'), '443');
  t.is(https.get('HTTP_HOST'), 'example.test', 'the authority when no Host is sent upstream');
});

test('extra params replace computed ones and come last', (t) => {
  const v = [
    ...vars(
      {},
      scriptSettings('/srv', {
        params: [
          ['SCRIPT_FILENAME', '/app/index.php'],
          ['APP', '1'],
        ],
      }),
    ),
  ];
  t.deepEqual(v.slice(-2), [
    ['SCRIPT_FILENAME', '/app/index.php'],
    ['APP', '1'],
  ]);
  t.is(v.filter(([k]) => k === 'SCRIPT_FILENAME').length, 1);
  const text = vars({}, scriptSettings('/srv', { params: [['GREETING', 'grüße']] })).get('GREETING')!;
  t.deepEqual(Buffer.from(text, 'latin1'), Buffer.from('grüße', 'utf8'), 'values are sent as UTF-8');
});

test('annotation schemas parse to what bind uses and refuse with messages that say what is expected', (t) => {
  const [index, root, params] = [FASTCGI_INDEX, FASTCGI_SCRIPT_ROOT, FASTCGI_PARAMS];
  t.is(index!.schema.parse(' app.php '), 'app.php');
  t.is(root!.schema.parse('/var/www/html/public/'), '/var/www/html/public');
  t.deepEqual(params!.schema.parse('A=1\n# note\n\nB = two words \r\nC='), [
    ['A', '1'],
    ['B', 'two words'],
    ['C', ''],
  ]);
  const tooMany = Array.from({ length: 65 }, (_, i) => `P${i}=x`).join('\n');
  t.regex(params!.schema.safeParse(tooMany).error!.issues[0]!.message, /65 params; at most 64/);
  t.regex(params!.schema.safeParse('A=\u0001').error!.issues[0]!.message, /control characters/);
  t.regex(index!.schema.safeParse('a/b.php').error!.issues[0]!.message, /no "\/"/);
});
