import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, parseConfig } from '../../src/config/load.js';
import { ErrorCode, isWarrenError } from '../../src/errors.js';

function file(content: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'warren-config-'));
  const path = join(dir, 'config.yaml');
  writeFileSync(path, content);
  return path;
}

test('defaults come from the schema and the result is deeply frozen', (t) => {
  const config = loadConfig({ env: {} });
  t.is(config.ingressClass.name, 'cloudflare-tunnel');
  t.is(config.kubernetes.leaderElection.leaseDuration, 15_000);
  t.is(config.tunnel.haConnections, 4);
  t.true(Object.isFrozen(config));
  t.true(Object.isFrozen(config.kubernetes.leaderElection));
  t.throws(() => {
    (config.proxy as { retries: number }).retries = 9;
  });
});

test('precedence: file < environment < flags', (t) => {
  const path = file('proxy:\n  connectTimeout: 1s\n  retries: 1\nlogLevel: warn\n');
  const config = loadConfig({
    file: path,
    env: { WARREN_PROXY__CONNECT_TIMEOUT: '2s', WARREN_LOG_LEVEL: 'debug', HOME: '/root' },
    sets: ['proxy.connectTimeout=3s'],
  });
  t.is(config.proxy.connectTimeout, 3000);
  t.is(config.proxy.retries, 1);
  t.is(config.logLevel, 'debug');
});

test('an unknown key is an error that names it', (t) => {
  const err = t.throws(() => parseConfig({ proxy: { conectTimeout: '1s' } }));
  t.true(isWarrenError(err, ErrorCode.ConfigInvalid));
  t.regex(err!.message, /unknown setting "proxy\.conectTimeout"/);
});

test('a bad value names the key, the value and what was expected', (t) => {
  const err = t.throws(() => loadConfig({ env: { WARREN_TUNNEL__HA_CONNECTIONS: 'lots' } }));
  t.regex(err!.message, /setting "tunnel\.haConnections": got "lots", .*number/i);
  const err2 = t.throws(() => parseConfig({ proxy: { idleTimeout: '5 minutes' } }));
  t.regex(err2!.message, /setting "proxy\.idleTimeout": got "5 minutes"/);
  t.regex(err2!.message, /duration/);
});

test('a malformed --set flag is rejected', (t) => {
  const err = t.throws(() => loadConfig({ env: {}, sets: ['novalue'] }));
  t.regex(err!.message, /--set "novalue"/);
});

test('the config file must be YAML holding a mapping', (t) => {
  t.throws(() => loadConfig({ file: file('- a\n- b\n'), env: {} }), { message: /must hold a mapping/ });
  t.throws(() => loadConfig({ file: '/nonexistent/warren.yaml', env: {} }), { message: /cannot read config file/ });
});

test('Kubernetes service-link variables for a Service named warren are not settings', (t) => {
  const config = loadConfig({
    env: {
      WARREN_SERVICE_HOST: '10.0.0.1',
      WARREN_SERVICE_PORT: '10254',
      WARREN_SERVICE_PORT_METRICS: '10254',
      WARREN_PORT: 'tcp://10.0.0.1:10254',
      WARREN_PORT_10254_TCP: 'tcp://10.0.0.1:10254',
      WARREN_PORT_10254_TCP_ADDR: '10.0.0.1',
      WARREN_LOG_LEVEL: 'warn',
    },
  });
  t.is(config.logLevel, 'warn');
  t.throws(() => loadConfig({ env: { WARREN_PROXXY__RETRIES: '1' } }), { message: /unknown setting "proxxy"/ });
});
