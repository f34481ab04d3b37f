/**
 * Capped exponential backoff with full jitter, as a pure function, and the engine's retry policy.
 * @module
 */
import type { Tuning } from "../config.ts";

/** Backoff bounds in milliseconds. */
export interface BackoffPolicy {
  /** Wait before the first retry (attempt 0), before jitter. */
  initialMs: number;
  /** Upper bound of any wait. */
  maxMs: number;
}

/**
 * The wait before retry number `attempt` (0-based): `min(max, initial*2^attempt)`, scaled by a
 * jitter factor in [0.5, 1) so that many retries do not fire together. `random` is injectable
 * for tests.
 */
export function backoff(
  policy: BackoffPolicy,
  attempt: number,
  random: () => number = Math.random,
): number {
  const exp = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(exp * (0.5 + random() / 2));
}

/** The policy of every retry towards the engine (logs streams, events stream, listing). */
export function reattachBackoff(tuning: Readonly<Tuning>): BackoffPolicy {
  return { initialMs: tuning.reattachBackoffInitialMs, maxMs: tuning.reattachBackoffMaxMs };
}
