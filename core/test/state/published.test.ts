import test from 'ava';
import { onTunnelIdentity } from '../../src/reconcile/control-context.js';
import { ALWAYS_LEADING, sameLeadership, type Leadership } from '../../src/state/leadership.js';
import { PublishedValue } from '../../src/state/published.js';
import { NO_TUNNEL, TunnelStateStore, type TunnelState } from '../../src/state/tunnel.js';

test('a published value tells each subscriber about every change, in order, and not about an equal value', (t) => {
  const leadership = new PublishedValue<Leadership>({ leading: false, term: 0 }, { same: sameLeadership });
  const a: Leadership[] = [];
  const b: boolean[] = [];
  leadership.subscribe((l) => a.push(l));
  const unsubscribe = leadership.subscribe((l) => b.push(l.leading));
  t.true(leadership.publish({ leading: true, term: 1 }));
  t.false(leadership.publish({ leading: true, term: 1 }), 'an equal value is no change');
  unsubscribe();
  t.true(leadership.publish({ leading: false, term: 1 }));
  t.deepEqual(a, [
    { leading: true, term: 1 },
    { leading: false, term: 1 },
  ]);
  t.deepEqual(b, [true], 'an unsubscribed listener hears nothing more');
  t.deepEqual(leadership.current, { leading: false, term: 1 });
});

test('a listener that throws does not keep the others from hearing the change', (t) => {
  const errors: unknown[] = [];
  const value = new PublishedValue(0, { onListenerError: (err) => errors.push(err) });
  const seen: number[] = [];
  value.subscribe(() => {
    throw new Error('listener failed');
  });
  value.subscribe((v) => seen.push(v));
  value.publish(1);
  t.deepEqual(seen, [1]);
  t.is((errors[0] as Error).message, 'listener failed');
});

test('the tunnel state publishes identity and connections, and only what changed', (t) => {
  const tunnel = new TunnelStateStore();
  const states: TunnelState[] = [];
  tunnel.subscribe((s) => states.push(s));
  t.is(tunnel.current, NO_TUNNEL);
  tunnel.identify('tunnel-a');
  tunnel.connections(2);
  tunnel.connections(2);
  tunnel.identify('tunnel-a', []);
  tunnel.identify('tunnel-b', ['tunnel-a']);
  t.deepEqual(states, [
    { id: 'tunnel-a', formerIds: [], registeredConnections: 0 },
    { id: 'tunnel-a', formerIds: [], registeredConnections: 2 },
    { id: 'tunnel-b', formerIds: ['tunnel-a'], registeredConnections: 2 },
  ]);
  t.true(Object.isFrozen(tunnel.current.formerIds));
});

test('followers of the tunnel identity hear about a new id or replaced ids, not about connections', (t) => {
  const tunnel = new TunnelStateStore();
  const heard: Array<string | undefined> = [];
  const stop = onTunnelIdentity(tunnel, (s) => heard.push(s.id));
  tunnel.connections(1);
  tunnel.identify('tunnel-a');
  tunnel.connections(4);
  tunnel.identify('tunnel-a', ['tunnel-0']);
  stop();
  tunnel.identify('tunnel-b');
  t.deepEqual(heard, ['tunnel-a', 'tunnel-a']);
});

test('a replica without leader election always leads, in its first term', (t) => {
  t.deepEqual(ALWAYS_LEADING.current, { leading: true, term: 1 });
  const unsubscribe = ALWAYS_LEADING.subscribe(() => t.fail('it never changes'));
  unsubscribe();
});
