import test from 'ava';
import { Counter, Histogram, Registry } from 'prom-client';
import { CounterCell, HistogramCell } from '../../src/proxy/metric-cells.js';
import { createProxyMetrics } from '../../src/proxy/metrics.js';

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30];

/** A registry with the request counter and latency histogram the pipeline uses. */
function metrics() {
  const registry = new Registry();
  const requests = new Counter({ name: 'req_total', help: 'requests', labelNames: ['status_class', 'method'], registers: [registry] });
  const duration = new Histogram({ name: 'dur_seconds', help: 'latency', labelNames: ['status_class'], buckets: [...BUCKETS], registers: [registry] });
  return { registry, requests, duration };
}

/** Values on, between, below and above the buckets' bounds. */
const VALUES = [0, 0.0001, ...BUCKETS, ...BUCKETS.map((b) => b * 1.5), 31, 1e6, 0.005, 0.0049999];

test('cells give the exposition prom-client gives for the same observations, across a reset', async (t) => {
  const direct = metrics();
  const bound = metrics();
  const labelSets = [
    { status_class: '2xx', method: 'GET' },
    { status_class: '5xx', method: 'POST' },
  ];
  const cells = labelSets.map((l) => ({
    requests: new CounterCell(bound.requests, { ...l }),
    duration: new HistogramCell(bound.duration, { status_class: l.status_class }),
  }));
  const round = () => {
    for (const [i, labels] of labelSets.entries()) {
      for (const v of VALUES.slice(i)) {
        direct.requests.inc({ ...labels }, 1);
        direct.duration.observe({ status_class: labels.status_class }, v);
        cells[i]!.requests.inc();
        cells[i]!.duration.observe(v);
      }
    }
  };
  round();
  t.is(await bound.registry.metrics(), await direct.registry.metrics());
  // A reset drops the series the cells hold: they must find (make) them again, not add to detached ones.
  direct.requests.reset();
  direct.duration.reset();
  bound.requests.reset();
  bound.duration.reset();
  round();
  round();
  const text = await bound.registry.metrics();
  t.is(text, await direct.registry.metrics());
  t.regex(text, /^dur_seconds_count\{status_class="2xx"\} 56$/m);
});

test('a bound cell adds to its series without prom-client looking the labels up again', (t) => {
  const { requests, duration } = metrics();
  const lookups = { inc: 0, observe: 0 };
  const inc = requests.inc.bind(requests);
  const observe = duration.observe.bind(duration);
  requests.inc = ((...args: Parameters<typeof inc>) => {
    lookups.inc++;
    inc(...args);
  }) as typeof requests.inc;
  duration.observe = ((...args: Parameters<typeof observe>) => {
    lookups.observe++;
    observe(...args);
  }) as typeof duration.observe;
  const counter = new CounterCell(requests, { status_class: '2xx', method: 'GET' });
  const histogram = new HistogramCell(duration, { status_class: '2xx' });
  for (let i = 0; i < 100; i++) {
    counter.inc();
    histogram.observe(i / 100);
  }
  t.deepEqual(lookups, { inc: 1, observe: 1 });
});

test('a value prom-client refuses is still refused', (t) => {
  const { duration } = metrics();
  const cell = new HistogramCell(duration, { status_class: '2xx' });
  cell.observe(0.1);
  t.throws(() => cell.observe(Number.NaN), { instanceOf: TypeError });
});

test('warren_inflight_requests reads the exchanges in progress of every pipeline on the registry when scraped', async (t) => {
  const registry = new Registry();
  const one = createProxyMetrics(registry);
  const two = createProxyMetrics(registry);
  t.regex(await registry.metrics(), /^warren_inflight_requests 0$/m);
  one.inflight.inc();
  one.inflight.inc();
  two.inflight.inc();
  t.regex(await registry.metrics(), /^warren_inflight_requests 3$/m);
  one.inflight.dec();
  two.inflight.dec();
  t.regex(await registry.metrics(), /^warren_inflight_requests 1$/m);
});
