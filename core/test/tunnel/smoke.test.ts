import test from 'ava';
import { startHarness } from './support/harness.js';

test('a request travels eyeball → edge simulator → connector → origin and back', async (t) => {
  const h = await startHarness(t, { ha: 2 });
  await h.sim.waitForRegistrations(2);
  const res = await fetch(`${h.sim.eyeballUrl}/echo?x=1`, { method: 'POST', body: 'hello', headers: { host: 'app.example.com' } });
  t.is(res.status, 200);
  const echo = (await res.json()) as { method: string; path: string; headers: string[]; body: { length: number } };
  t.is(echo.method, 'POST');
  t.is(echo.path, '/echo?x=1');
  t.is(echo.body.length, 5);
  t.deepEqual(h.sim.violations, []);
  t.is(h.connector.registeredConnections, 2);
});
