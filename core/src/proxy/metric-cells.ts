import type { Counter, Histogram, LabelValues } from 'prom-client';

/**
 * One series of a prom-client counter or histogram (one fixed label set), updated in place. prom-client finds the
 * series of every `inc`/`observe` by validating the labels and building a string key from them; the proxy's label
 * sets are few and made once (`metrics.ts`), so a cell keeps the series prom-client made on its first observation
 * and adds to it directly. The series are prom-client's own objects, so the exposition is the same. A series that
 * prom-client replaced or dropped (`reset`, `remove`) is looked up through prom-client again on the next
 * observation; so is one whose shape is not the one below (another prom-client version).
 */

/** A counter's series (prom-client 15, `lib/counter.js`). */
interface CounterSeries {
  value: number;
  readonly labels: LabelValues<string>;
}

/** A histogram's series: sum, count and one count per upper bound (prom-client 15, `lib/histogram.js`). */
interface HistogramSeries {
  sum: number;
  count: number;
  /** Keyed by the bound as a string (the key prom-client made it with). */
  readonly bucketValues: Record<string, number>;
  readonly labels: LabelValues<string>;
}

/** What prom-client keeps on a metric: its series by key; a histogram's upper bounds, ascending. */
interface SeriesOf<S> {
  readonly hashMap: Record<string, S> | undefined;
  readonly upperBounds?: readonly number[] | undefined;
}

function sameLabels(a: LabelValues<string>, b: LabelValues<string>): boolean {
  const keys = Object.keys(b);
  if (Object.keys(a).length !== keys.length) return false;
  for (const k of keys) if (a[k] !== b[k]) return false;
  return true;
}

/** The key and series of `labels` in `metric`, if it has one of the expected shape. */
function findSeries<S extends { readonly labels: LabelValues<string> }>(
  metric: SeriesOf<S>,
  labels: LabelValues<string>,
  shaped: (s: S) => boolean,
): { readonly key: string; readonly series: S } | undefined {
  const map = metric.hashMap;
  if (!map) return undefined;
  for (const key of Object.keys(map)) {
    const series = map[key]!;
    if (series && typeof series.labels === 'object' && sameLabels(series.labels, labels)) return shaped(series) ? { key, series } : undefined;
  }
  return undefined;
}

export class CounterCell {
  readonly #counter: Counter<string>;
  readonly #labels: LabelValues<string>;
  #key = '';
  #series: CounterSeries | undefined;

  constructor(counter: Counter<string>, labels: LabelValues<string>) {
    this.#counter = counter;
    this.#labels = labels;
  }

  inc(): void {
    const series = this.#series;
    if (series !== undefined && (this.#counter as unknown as SeriesOf<CounterSeries>).hashMap?.[this.#key] === series) {
      series.value += 1;
      return;
    }
    this.#counter.inc(this.#labels, 1);
    const found = findSeries(this.#counter as unknown as SeriesOf<CounterSeries>, this.#labels, (s) => typeof s.value === 'number');
    this.#key = found?.key ?? '';
    this.#series = found?.series;
  }
}

export class HistogramCell {
  readonly #histogram: Histogram<string>;
  readonly #labels: LabelValues<string>;
  #key = '';
  #series: HistogramSeries | undefined;
  #bounds: readonly number[] = [];
  #bucketKeys: readonly string[] = [];

  constructor(histogram: Histogram<string>, labels: LabelValues<string>) {
    this.#histogram = histogram;
    this.#labels = labels;
  }

  observe(value: number): void {
    const series = this.#series;
    if (series !== undefined && Number.isFinite(value) && (this.#histogram as unknown as SeriesOf<HistogramSeries>).hashMap?.[this.#key] === series) {
      series.sum += value;
      series.count += 1;
      // The first bound the value does not exceed; above the last, only the count (+Inf) has it.
      const bounds = this.#bounds;
      for (let i = 0; i < bounds.length; i++) {
        if (value <= bounds[i]!) {
          series.bucketValues[this.#bucketKeys[i]!]! += 1;
          break;
        }
      }
      return;
    }
    this.#histogram.observe(this.#labels, value);
    const metric = this.#histogram as unknown as SeriesOf<HistogramSeries>;
    const bounds = metric.upperBounds;
    const found = Array.isArray(bounds)
      ? findSeries(
          metric,
          this.#labels,
          (s) => typeof s.sum === 'number' && typeof s.count === 'number' && bounds.every((b) => typeof s.bucketValues?.[String(b)] === 'number'),
        )
      : undefined;
    this.#key = found?.key ?? '';
    this.#series = found?.series;
    this.#bounds = bounds ?? [];
    this.#bucketKeys = this.#bounds.map(String);
  }
}
