/** PHP scripts the tests run on PHP-FPM. */

/** Echoes the request as JSON: CGI variables, the body's length and SHA-256 (read as a stream). */
const echo = `<?php
$in = fopen('php://input', 'rb');
$hash = hash_init('sha256');
$bytes = 0;
while (!feof($in)) {
  $chunk = fread($in, 65536);
  if ($chunk === false) break;
  $bytes += strlen($chunk);
  hash_update($hash, $chunk);
}
$keep = [];
foreach ($_SERVER as $k => $v) {
  if (is_string($v) && (str_starts_with($k, 'HTTP_') || in_array($k, [
    'REQUEST_METHOD', 'REQUEST_URI', 'QUERY_STRING', 'SCRIPT_NAME', 'SCRIPT_FILENAME', 'PATH_INFO', 'DOCUMENT_ROOT',
    'SERVER_PROTOCOL', 'SERVER_NAME', 'SERVER_PORT', 'REMOTE_ADDR', 'CONTENT_TYPE', 'CONTENT_LENGTH', 'HTTPS',
    'REQUEST_SCHEME', 'GATEWAY_INTERFACE', 'APP_MODE', 'PATH_TRANSLATED',
  ], true))) $keep[$k] = $v;
}
header('Content-Type: application/json');
echo json_encode(['server' => $keep, 'get' => $_GET, 'bytes' => $bytes, 'sha256' => hash_final($hash)]);
`;

/** Sets a status, headers (two cookies) and a body. */
const status = `<?php
http_response_code(201);
header('X-Custom: yes');
header('Set-Cookie: a=1', false);
header('Set-Cookie: b=2', false);
echo 'created';
`;

const redirect = `<?php
header('Location: /elsewhere?from=php');
`;

/** Streams ?mb= MiB of 'x', writing after each MiB how much it has written to $SCRATCH/progress. */
const big = `<?php
$mb = (int)($_GET['mb'] ?? 1);
header('Content-Type: application/octet-stream');
header('Content-Length: ' . ($mb * 1048576));
$chunk = str_repeat('x', 65536);
for ($i = 0; $i < $mb * 16; $i++) {
  echo $chunk;
  flush();
  if ($i % 16 === 15) file_put_contents(getenv('SCRATCH') . '/progress', (string)(($i + 1) * 65536));
}
`;

/** Reads 1 MiB of the body, waits ?wait= ms, then reads the rest. */
const slowUpload = `<?php
$in = fopen('php://input', 'rb');
$bytes = 0;
while ($bytes < 1048576 && !feof($in)) $bytes += strlen(fread($in, 65536));
usleep(1000 * (int)($_GET['wait'] ?? 0));
while (!feof($in)) $bytes += strlen(fread($in, 65536));
echo $bytes;
`;

/** Logs to the web server (FastCGI STDERR) and answers. */
const stderr = `<?php
error_log('something odd: ' . str_repeat('e', (int)($_GET['n'] ?? 10)));
echo 'ok';
`;

/** Promises 100000 bytes, sends 1000, then the worker is killed: the connection closes without END_REQUEST. */
const killed = `<?php
header('Content-Length: 100000');
echo str_repeat('a', 1000);
flush();
exec('kill -9 ' . getmypid());
sleep(5);
`;

/** Promises 100000 bytes and ends the script normally after 1000: END_REQUEST arrives, the body is short. */
const short = `<?php
header('Content-Length: 100000');
echo str_repeat('a', 1000);
exit(0);
`;

/** Answers after ?ms= milliseconds. */
const slow = `<?php
usleep(1000 * (int)($_GET['ms'] ?? 0));
echo 'late';
`;

export const SCRIPTS: Readonly<Record<string, string>> = {
  'echo.php': echo,
  'index.php': echo,
  'status.php': status,
  'redirect.php': redirect,
  'big.php': big,
  'slow-upload.php': slowUpload,
  'stderr.php': stderr,
  'killed.php': killed,
  'short.php': short,
  'slow.php': slow,
};
