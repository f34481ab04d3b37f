/**
 * A signal tied to longer-lived parents that lets go of them when its work is done.
 *
 * `AbortSignal.any([parent, ...])` registers the new signal with each parent; a dependent signal
 * that still has abort listeners stays reachable from its parents until they abort. Combined per
 * request or per container with the daemon's root signal, each one is kept for the daemon's
 * life. A `ChildSignal` holds one listener on each parent and removes it on `dispose()`.
 * @module
 */

/**
 * Aborts when a parent aborts (with its reason), when `abort()` is called, or when its timeout
 * (`abortAfter`) runs out; `dispose()` (also on abort) removes its listener from every parent
 * and clears its timer.
 *
 * @example
 * ```ts
 * const child = new ChildSignal([root]);
 * child.abortAfter(15_000, () => new DOMException("no headers", "TimeoutError"));
 * try {
 *   await work(child.signal);
 * } finally {
 *   child.dispose();
 * }
 * ```
 */
export class ChildSignal {
  readonly #controller = new AbortController();
  readonly #parents: readonly AbortSignal[];
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #onParentAbort = (event: Event): void => {
    this.abort((event.target as AbortSignal).reason);
  };

  /** Follows `parents`; aborts at once when one has aborted already. */
  constructor(parents: readonly AbortSignal[]) {
    this.#parents = parents;
    const aborted = parents.find((p) => p.aborted);
    if (aborted !== undefined) {
      this.#controller.abort(aborted.reason);
      return;
    }
    for (const p of parents) p.addEventListener("abort", this.#onParentAbort, { once: true });
  }

  /** The signal to pass on. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Aborts with `reason` (once), then lets go of the parents. */
  abort(reason?: unknown): void {
    if (!this.#controller.signal.aborted) this.#controller.abort(reason);
    this.dispose();
  }

  /** Aborts with `reason()` after `ms`, unless aborted or disposed first. Replaces any earlier one. */
  abortAfter(ms: number, reason: () => unknown): void {
    clearTimeout(this.#timer);
    if (this.#controller.signal.aborted) return;
    this.#timer = setTimeout(() => this.abort(reason()), ms);
  }

  /** Removes its listener from every parent and clears its timer; the signal stays as it is. */
  dispose(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const p of this.#parents) p.removeEventListener("abort", this.#onParentAbort);
  }
}
