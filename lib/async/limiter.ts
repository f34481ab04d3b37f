/**
 * At most so many tasks at once; the others wait their turn, in order of arrival, but never
 * longer than a set time: a task that holds its place for long does not hold up the rest.
 * @module
 */

/** Runs tasks with at most `max` of them in progress, unless a waiter's time ran out. */
export class Limiter {
  readonly #max: number;
  readonly #maxWaitMs: number;
  #running = 0;
  readonly #waiting: (() => void)[] = [];

  /** `max`: tasks in progress at once (at least 1); `maxWaitMs`: the longest wait for a place. */
  constructor(max: number, maxWaitMs: number) {
    this.#max = Math.max(1, max);
    this.#maxWaitMs = maxWaitMs;
  }

  /** Tasks in progress in a place of their own now (not those that stopped waiting). */
  get running(): number {
    return this.#running;
  }

  /**
   * Runs `task` once a place is free, or after `maxWaitMs` without one. Rejects with the
   * signal's reason if it aborts while the task waits (the task never starts then); a task that
   * started is left to its own signal.
   */
  async run<T>(task: () => Promise<T>, signal: AbortSignal): Promise<T> {
    signal.throwIfAborted();
    let placed = true;
    if (this.#running < this.#max) this.#running++;
    else placed = await this.#turn(signal);
    try {
      return await task();
    } finally {
      if (placed) {
        // The place goes to the next waiter as it is; otherwise it is free.
        const next = this.#waiting.shift();
        if (next) next();
        else this.#running--;
      }
    }
  }

  /** Resolves true with a place handed over, false when the wait ran out. */
  #turn(signal: AbortSignal): Promise<boolean> {
    return new Promise((resolve, reject) => {
      const settle = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
      };
      const go = () => {
        settle();
        resolve(true);
      };
      const leave = () => {
        this.#waiting.splice(this.#waiting.indexOf(go), 1);
        settle();
      };
      const onAbort = () => {
        leave();
        reject(signal.reason);
      };
      const timer = setTimeout(() => {
        leave();
        resolve(false);
      }, this.#maxWaitMs);
      signal.addEventListener("abort", onAbort, { once: true });
      this.#waiting.push(go);
    });
  }
}
