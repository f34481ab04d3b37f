/**
 * An unbounded single-consumer channel: producers `send`, one loop `receive`s in order. A received
 * item is no longer held by the channel.
 * @module
 */

/** Messages in order, to one consumer. */
export class Channel<T> {
  #items: (T | undefined)[] = [];
  #head = 0;
  #waiter: (() => void) | undefined;

  /** Queues an item; never waits. */
  send(item: T): void {
    this.#items.push(item);
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }

  /** The next item; rejects with the signal's reason when it aborts first. */
  async receive(signal: AbortSignal): Promise<T> {
    while (this.#head >= this.#items.length) {
      signal.throwIfAborted();
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          this.#waiter = undefined;
          reject(signal.reason);
        };
        this.#waiter = () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        };
        signal.addEventListener("abort", onAbort, { once: true });
      });
    }
    // Let go of the item at once: the array is compacted only now and then, and what the
    // supervisor sends (a tail and its state, an engine event) must not outlive its handling.
    const item = this.#items[this.#head] as T;
    this.#items[this.#head++] = undefined;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }
}
