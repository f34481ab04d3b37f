/**
 * The delivery tags of one confirm-mode channel, mapped to queue positions.
 * @module
 */

const SETTLED = -1;

/**
 * A ring of the positions published on one channel, indexed by delivery tag (1, 2, ... in publish
 * order, as the broker numbers them). Settles single and `multiple` acks/nacks in any order; only
 * the lowest unsettled tag bounds the window, so `count` can overstate by out-of-order settles.
 */
export class InFlight {
  #positions: Float64Array;
  #mask: number;
  /** Lowest tag not yet settled. */
  #lowest = 1;
  /** Tag the next publish gets. */
  #next = 1;

  /** `window`: the most tags in flight at once (the caller keeps `count < window`). */
  constructor(window: number) {
    let size = 1;
    while (size < window) size *= 2;
    this.#positions = new Float64Array(size);
    this.#mask = size - 1;
  }

  /** Tags published and not settled (from the lowest unsettled one). */
  get count(): number {
    return this.#next - this.#lowest;
  }

  /** Records that queue position `pos` was just published (it gets the next tag). */
  add(pos: number): void {
    this.#positions[this.#next & this.#mask] = pos;
    this.#next++;
  }

  /**
   * Settles `tag` (and every lower tag when `multiple`), calling `each` with the queue position of
   * each message not settled before, lowest tag first. Unknown or repeated tags are ignored.
   */
  settle(tag: number, multiple: boolean, each: (pos: number) => void): void {
    const positions = this.#positions;
    const mask = this.#mask;
    if (tag < this.#lowest || tag >= this.#next) return;
    if (multiple) {
      for (let t = this.#lowest; t <= tag; t++) {
        const pos = positions[t & mask];
        if (pos !== SETTLED) each(pos);
      }
      this.#lowest = tag + 1;
    } else {
      const pos = positions[tag & mask];
      if (pos === SETTLED) return;
      positions[tag & mask] = SETTLED;
      each(pos);
    }
    while (this.#lowest < this.#next && positions[this.#lowest & mask] === SETTLED) {
      this.#lowest++;
    }
  }

  /** Forgets everything: a new channel starts again at tag 1. */
  reset(): void {
    this.#lowest = 1;
    this.#next = 1;
  }
}
