/**
 * Per-container lag warnings: how far the line being read is behind the wall clock. Under
 * `OVERFLOW=pause` lines wait in the engine's log file; a rotation (`max-size`/`max-file`)
 * while far behind can remove them before they are read, so an operator must hear of it.
 * @module
 */
import { timestampToNanos } from "./time.ts";
import type { Logger } from "./log.ts";

/** Lag is measured at most this often per container, ms (fewer when the threshold is lower). */
export const LAG_CHECK_INTERVAL_MS = 1_000;

/**
 * One container's lag state: `warn lagging` once when the lag passes the threshold, `info
 * caught_up` once it is below half of it again.
 */
export class LagWatch {
  readonly #fields: { id: string; name: string };
  readonly #log: Logger;
  readonly #thresholdMs: number;
  /** How often `maybeCheck` measures, ms. */
  readonly intervalMs: number;
  #next = 0;
  #lagging = false;

  constructor(id: string, name: string, thresholdMs: number, log: Logger) {
    this.#fields = { id: id.slice(0, 12), name };
    this.#log = log;
    this.#thresholdMs = thresholdMs;
    this.intervalMs = Math.min(LAG_CHECK_INTERVAL_MS, thresholdMs / 2);
  }

  /** True between a `lagging` warning and the `caught_up` after it. */
  get lagging(): boolean {
    return this.#lagging;
  }

  /** `check(ts)`, at most once per `intervalMs`: cheap enough to call per batch of lines. */
  maybeCheck(ts: string): void {
    const now = performance.now();
    if (now < this.#next) return;
    this.#next = now + this.intervalMs;
    this.check(ts);
  }

  /** Measures the lag of a line with engine timestamp `ts` and logs a change of state. */
  check(ts: string, nowMs = Date.now()): void {
    let lagMs: number;
    try {
      lagMs = nowMs - Number(timestampToNanos(ts) / 1_000_000n);
    } catch (err) {
      if (err instanceof SyntaxError) return; // no engine timestamp: nothing to measure
      throw err;
    }
    const lagS = Math.round(lagMs / 100) / 10;
    if (!this.#lagging && lagMs > this.#thresholdMs) {
      this.#lagging = true;
      this.#log.warn("lagging", {
        ...this.#fields,
        lag_s: lagS,
        threshold_s: this.#thresholdMs / 1000,
      });
    } else if (this.#lagging && lagMs < this.#thresholdMs / 2) {
      this.#lagging = false;
      this.#log.info("caught_up", { ...this.#fields, lag_s: lagS });
    }
  }
}
