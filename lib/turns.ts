/**
 * Fair turns at a full buffer (`OVERFLOW=pause`). While nobody waits, every reader adds freely;
 * once one found no room, readers take turns, oldest waiter first:
 *
 * ```
 *  reader --no room--> wait(lane) --> line [ B, C, A ] --grant() when room frees--> holder
 *                                        ^                                            |
 *                                        +-- quantum used, more to add: wait again <--+
 *                                                      batch done: end(lane) <--------+
 * ```
 *
 * One lane holds the turn at a time and may add up to `quantum` messages; a lane with more
 * goes to the back of the line. A burst therefore cannot keep a quiet container from its room:
 * the quiet one waits at most one turn of each lane ahead of it. Nothing here runs while the
 * line is empty, so the free path costs one check.
 * @module
 */

/** One reader's place in the line (one per container tail). */
export class Lane {
  /** Messages it may still add in the turn it holds. */
  quota = 0;
  /** Body bytes of the message it waits to add. */
  need = 0;
  /** Resolves its pending `wait`. */
  resolve: (() => void) | undefined = undefined;
}

/** Says whether a message of `need` body bytes fits in the buffer now. */
export type Fits = (need: number) => boolean;

/** The line of readers waiting for room; see the module doc. */
export class Turns {
  readonly #quantum: number;
  readonly #fits: Fits;
  readonly #line: Lane[] = [];
  #holder: Lane | undefined = undefined;

  /** `quantum`: messages per turn; `fits`: the buffer's room check. */
  constructor(quantum: number, fits: Fits) {
    if (!Number.isInteger(quantum) || quantum < 1) {
      throw new RangeError(
        `Cannot create turns: quantum must be a positive integer, got ${quantum}`,
      );
    }
    this.#quantum = quantum;
    this.#fits = fits;
  }

  /** True while a lane holds the turn or waits: adding then needs `take()`. */
  get contended(): boolean {
    return this.#holder !== undefined || this.#line.length > 0;
  }

  /** Lanes waiting (the holder not included). */
  get waiting(): number {
    return this.#line.length;
  }

  /** Uses one message of `lane`'s turn; false when it does not hold the turn or used it up. */
  take(lane: Lane): boolean {
    if (this.#holder !== lane || lane.quota <= 0) return false;
    lane.quota--;
    return true;
  }

  /**
   * Puts `lane` at the back of the line (giving up a turn it holds) until it is granted the
   * turn with room for `need` bytes; rejects with `signal.reason` on abort.
   */
  wait(lane: Lane, need: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.#holder === lane) this.#holder = undefined;
    const line = this.#line;
    const promise = new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const i = line.indexOf(lane);
        if (i >= 0) line.splice(i, 1);
        lane.resolve = undefined;
        if (this.#holder === lane) this.#holder = undefined;
        reject(signal.reason);
        this.grant();
      };
      signal.addEventListener("abort", onAbort, { once: true });
      lane.resolve = () => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      };
    });
    lane.need = need;
    line.push(lane);
    this.grant();
    return promise;
  }

  /** `lane` is done adding for now: it gives up the turn if it holds it. */
  end(lane: Lane): void {
    if (this.#holder !== lane) return;
    this.#holder = undefined;
    lane.quota = 0;
    this.grant();
  }

  /** Gives the turn to the oldest waiter when nobody holds it and its next message fits. */
  grant(): void {
    if (this.#holder !== undefined || this.#line.length === 0) return;
    const next = this.#line[0];
    if (!this.#fits(next.need)) return;
    this.#line.shift();
    this.#holder = next;
    next.quota = this.#quantum;
    const resolve = next.resolve;
    next.resolve = undefined;
    resolve?.();
  }
}
