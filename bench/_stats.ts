/**
 * Percentiles, and the engine's RFC 3339 nanosecond timestamps as epoch milliseconds.
 * @module
 */

/** The `p`-th percentile (0–100) of `values` by the nearest-rank method; NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`Cannot take percentile: p is ${p}`);
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1];
}

/**
 * Milliseconds since the epoch, with the sub-millisecond part, of a UTC timestamp such as
 * `2026-11-25T20:24:44.123456789Z`. Throws `SyntaxError` for anything else.
 */
export function timestampMs(ts: string): number {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/.exec(ts);
  if (!m) throw new SyntaxError(`Cannot parse timestamp: current value is ${JSON.stringify(ts)}`);
  const whole = Date.parse(`${m[1]}Z`);
  const fraction = m[2] === undefined ? 0 : Number(`0.${m[2]}`) * 1000;
  return whole + fraction;
}

/** Now, as epoch milliseconds with sub-millisecond resolution. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}
