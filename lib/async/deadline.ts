/**
 * A deadline on a promise: it settles as the work does, or rejects once the time ran out first.
 * The work itself goes on: stopping it (closing what it waits on) is the caller's part.
 * @module
 */

/**
 * Resolves or rejects as `work` does, or rejects with `reason()` when `ms` pass first. The timer
 * is cleared as soon as either settles; a rejection of `work` after the deadline is handled.
 *
 * @example
 * ```ts
 * await deadline(channelOpened, 5_000, () => new DOMException("no answer", "TimeoutError"));
 * ```
 */
export function deadline<T>(work: Promise<T>, ms: number, reason: () => unknown): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(reason()), ms);
  });
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}
