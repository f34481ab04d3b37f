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
    this.checkLag(batch[n - 1].timestamp);
    try {
      for (let i = 0; i < n; i++) {
        while (!this.tryAdd(batch[i])) await this.waitForTurn(batch[i], signal);
      }
    } finally {
      this.end();
    }
  }

  /**
   * Drop mode: offers `msg` (the queue counts it when it does not fit) and returns true. Pause
   * mode: adds it when there is room and it is this container's turn; false: `waitForTurn(msg)`.
   */
  tryAdd(msg: OutMessage): boolean {
    if (!this.#pause) {
      this.#queue.offer(msg);
      return true;
    }
    return this.#queue.add(msg, this.#lane);
  }

  /** Waits until this container's turn comes with room for `msg`, checking its lag meanwhile. */
  async waitForTurn(msg: OutMessage, signal: AbortSignal): Promise<void> {
    this.paused = true;
    this.onWait?.(true);
    try {
      const turn = this.#queue.waitForTurn(this.#lane, msg.body.length, signal);
      await awaitTicking(turn, this.#lag.intervalMs, () => this.#lag.check(msg.timestamp));
    } finally {
      this.onWait?.(false);
    }
  }

  /** Done with a batch: gives up the turn, if held, to the next container waiting. */
  end(): void {
    if (this.#pause) this.#queue.endTurn(this.#lane);
  }

  /** The lag of a line being handed off, measured at most once a second. */
  checkLag(ts: string): void {
    this.#lag.maybeCheck(ts);
  }
}
