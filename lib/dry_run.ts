/**
 * `--dry-run`: instead of publishing, every buffered message is printed to stdout as one line,
 * `<routing key> <envelope JSON>`, and released at once. It takes the publisher's place.
 * @module
 */
import { concatBytes } from "./bytes.ts";
import type { MessageQueue } from "./queue.ts";

const encoder = new TextEncoder();
const SPACE = encoder.encode(" ");
const NEWLINE = encoder.encode("\n");

/** Where printed lines go; stdout in the daemon. */
export type ByteWriter = { write(p: Uint8Array): Promise<number> };

/** Prints the queue's messages; the same lifetime methods as `Publisher`. */
export class StdoutPrinter {
  readonly #queue: MessageQueue;
  readonly #out: ByteWriter;
  readonly #stop = new AbortController();
  #finished: Promise<void> = Promise.resolve();

  constructor(queue: MessageQueue, out: ByteWriter = Deno.stdout) {
    this.#queue = queue;
    this.#out = out;
  }

  /** Always true: there is no broker to lose. */
  get connected(): boolean {
    return true;
  }

  /** Always 0. */
  get reconnects(): number {
    return 0;
  }

  /** Resolves at once: nothing to connect to. */
  firstConnect(): Promise<void> {
    return Promise.resolve();
  }

  /** Prints until `signal` aborts or `drain()` finishes. */
  run(signal: AbortSignal): Promise<void> {
    this.#finished = this.#loop(AbortSignal.any([signal, this.#stop.signal]));
    return this.#finished;
  }

  /** Prints what is buffered (for up to `graceMs`), then stops; returns what is left. */
  async drain(graceMs: number): Promise<number> {
    try {
      await this.#queue.waitForEmpty(AbortSignal.timeout(graceMs));
    } catch (err) {
      if (!(err instanceof DOMException && err.name === "TimeoutError")) throw err;
    }
    this.#stop.abort();
    await this.#finished;
    return this.#queue.size;
  }

  async #loop(signal: AbortSignal): Promise<void> {
    const queue = this.#queue;
    while (!signal.aborted) {
      try {
        await queue.waitForMessage(signal);
      } catch (err) {
        if (signal.aborted) return;
        throw err;
      }
      const parts: Uint8Array[] = [];
      const positions: number[] = [];
      for (let msg = queue.next(); msg !== undefined; msg = queue.next()) {
        positions.push(queue.markPublished());
        parts.push(encoder.encode(msg.routingKey), SPACE, msg.body, NEWLINE);
      }
      await writeAll(this.#out, concatBytes(parts));
      for (const pos of positions) queue.confirm(pos);
    }
  }
}

async function writeAll(out: ByteWriter, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await out.write(bytes.subarray(off));
}
