/**
 * One container's hand-off of decoded messages to the buffer, by the `OVERFLOW` policy: `drop`
 * offers each message (a refused one is counted by the queue); `pause` adds each message and,
 * when there is no room, waits for its turn (`Turns`) before it reads on. The lag of the line
 * being handed off is checked once per batch, and every second while waiting.
 * @module
 */
import { awaitTicking } from "../async/ticking.ts";
import type { OverflowPolicy } from "../config.ts";
import type { LagWatch } from "../lag.ts";
import type { MessageQueue, OutMessage } from "../queue.ts";
import { Lane } from "../turns.ts";

/** See the module doc; one per container tail. */
export class Handoff {
  readonly #queue: MessageQueue;
  readonly #pause: boolean;
  readonly #lag: LagWatch;
  readonly #lane = new Lane();
  /** True once a hand-off had to wait for room; the tail resets it per stream. */
  paused = false;
  /** Told when a wait for room starts (true) and ends (false). */
  onWait: ((waiting: boolean) => void) | undefined = undefined;

  constructor(queue: MessageQueue, overflow: OverflowPolicy, lag: LagWatch) {
    this.#queue = queue;
    this.#pause = overflow === "pause";
    this.#lag = lag;
  }

  /** Hands `batch` to the buffer, in order; in pause mode resolves once all of it is in. */
  async deliver(batch: readonly OutMessage[], signal: AbortSignal): Promise<void> {
    const n = batch.length;
    if (n === 0) return;
    this.#lag.maybeCheck(batch[n - 1].timestamp);
    const queue = this.#queue;
    if (!this.#pause) {
      for (let i = 0; i < n; i++) queue.offer(batch[i]);
      return;
    }
    const lane = this.#lane;
    try {
      for (let i = 0; i < n; i++) {
        if (!queue.add(batch[i], lane)) {
          await this.#waitForTurn(batch[i], signal);
          i--;
        }
      }
    } finally {
      queue.endTurn(lane);
    }
  }

  async #waitForTurn(msg: OutMessage, signal: AbortSignal): Promise<void> {
    this.paused = true;
    this.onWait?.(true);
    try {
      const turn = this.#queue.waitForTurn(this.#lane, msg.body.length, signal);
      await awaitTicking(turn, this.#lag.intervalMs, () => this.#lag.check(msg.timestamp));
    } finally {
      this.onWait?.(false);
    }
  }
}
