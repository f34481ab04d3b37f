/**
 * Named deadlines for tests: wait for a condition, or for a promise, and fail with a message
 * that says what was awaited. Tests await these instead of sleeping.
 * @module
 */
import { delay } from "../../lib/async/delay.ts";

/** Poll interval of `waitFor` when none is given. */
export const DEFAULT_POLL_INTERVAL_MS = 20;

/** Options of `waitFor`. */
export interface WaitForOptions {
  /** Give up after this long. */
  timeoutMs: number;
  /** What is awaited, for the error message ("3 messages", "container to exit"). */
  what: string;
  /** Time between two checks. @default 20 */
  intervalMs?: number;
}

/**
 * Resolves as soon as `cond()` returns true; checks at once, then every `intervalMs`.
 * Throws `Error("timed out after Nms waiting for <what>")` when `timeoutMs` passes first. An
 * error thrown by `cond` is passed on as is.
 *
 * @example
 * ```ts
 * await waitFor(() => binding.messages.length >= 3, { timeoutMs: 5000, what: "3 messages" });
 * ```
 */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  opts: WaitForOptions,
): Promise<void> {
  const { timeoutMs, what, intervalMs = DEFAULT_POLL_INTERVAL_MS } = opts;
  if (!(timeoutMs >= 0)) throw new RangeError(`Cannot wait: timeoutMs is ${timeoutMs}`);
  if (!(intervalMs > 0)) throw new RangeError(`Cannot wait: intervalMs is ${intervalMs}`);
  const start = performance.now();
  while (true) {
    const left = timeoutMs - (performance.now() - start);
    // A check that hangs must not outlive the deadline either.
    const ok = await race(Promise.resolve(cond()), Math.max(left, 0), () => {
      return timeoutError(timeoutMs, what);
    });
    if (ok) return;
    const rest = timeoutMs - (performance.now() - start);
    if (rest <= 0) throw timeoutError(timeoutMs, what);
    await delay(Math.min(intervalMs, rest));
  }
}

/**
 * Resolves or rejects as `p` does, or rejects with
 * `Error("timed out after Nms waiting for <what>")` when `ms` passes first. Its timer is
 * cleared either way, so Deno's test sanitizers see nothing left behind.
 */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return race(p, ms, () => timeoutError(ms, what));
}

/** `p`, or the error `onTimeout()` makes when `ms` passes first; the timer is always cleared. */
async function race<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The one wording of a timeout in the test helpers. */
function timeoutError(ms: number, what: string): Error {
  return new Error(`timed out after ${Math.round(ms)}ms waiting for ${what}`);
}
