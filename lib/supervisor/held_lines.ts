/**
 * The lines of a follow stream that may be wrong until the engine is shown to have still been
 * following when they were read: from the first line joined from several entries on, in order.
 *
 * Why: Podman 4.3 stops its log tailer 250 ms after a container died, and from then on drops
 * every log entry its reader does not take at once. Each piece of a line it split (at its read
 * buffer, or 8192 bytes) is an entry of its own, so a line joined after a dropped piece is cut or
 * mixed from two lines, and once sent it cannot be taken back. A line of one entry is never wrong
 * (the lines dropped are found by the complete read of `sent_lines.ts`). Podman writes the `died`
 * event only after the state its inspect syncs says exited, so an inspect asked after a line was
 * read that finds the same run still running (not restarted meanwhile) shows the tailer still
 * followed: no entry before that line was dropped. Once an inspect finds it stopped, nothing held is sent: the stream ends soon,
 * and its lines are read again (completed when it stopped, re-attached when it runs again).
 * @module
 */
import { sleep } from "../async/delay.ts";
import type { LogEntry } from "../docker/log_stream.ts";

/** Least time between two inspects that prove held lines. */
export const HELD_PROOF_INTERVAL_MS = 250;
/** Bytes held before the reader waits for the next proof instead of reading on. */
export const HELD_MAX_BYTES = 8 * 1024 * 1024;

/**
 * What a proof found: lines to release, the container stopped (nothing held is sent), or the
 * hold was closed (its signal aborted).
 */
export type ProofResult = "proven" | "stopped" | "closed";

/**
 * Asks the engine whether the container runs (an inspect): true, false, or undefined when the
 * engine could not tell (tried again after `HELD_PROOF_INTERVAL_MS`).
 */
export type RunningCheck = (signal: AbortSignal) => Promise<boolean | undefined>;

/** See the module doc; one per follow stream of an engine that may drop entries. */
export class HeldLines {
  readonly #check: RunningCheck;
  readonly #intervalMs: number;
  readonly #closed = new AbortController();
  #lines: LogEntry[] = [];
  #bytes = 0;
  /** Leading held lines proven. */
  #proven = 0;
  #stopped = false;
  #lastCheck = -Infinity;
  #proof: Promise<ProofResult> | undefined;

  /** `check`: see {@link RunningCheck}; `signal` ends every wait. */
  constructor(check: RunningCheck, signal: AbortSignal, intervalMs = HELD_PROOF_INTERVAL_MS) {
    this.#check = check;
    this.#intervalMs = intervalMs;
    if (signal.aborted) this.#closed.abort();
    else signal.addEventListener("abort", this.close, { once: true, signal: this.#closed.signal });
  }

  /** Lines held. */
  get size(): number {
    return this.#lines.length;
  }

  /** Whether the reader should wait for a proof before it reads on. */
  get full(): boolean {
    return this.#bytes > HELD_MAX_BYTES && !this.#stopped;
  }

  /** Whether an inspect found the container stopped: held lines will never be sent. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /**
   * Takes `entry` when it must wait (something is held already, or it was joined); false: send
   * it now. The entry is copied (the stream reuses its batch). Once stopped, taken and dropped;
   * once closed, never taken.
   */
  take(entry: LogEntry): boolean {
    if (this.#stopped) return true;
    if (this.#closed.signal.aborted) return false;
    if (this.#lines.length === 0 && entry.joined !== true) return false;
    this.#lines.push({ ...entry, message: entry.message.slice() });
    this.#bytes += entry.message.length;
    return true;
  }

  /** Removes and returns the proven lines, oldest first. */
  release(): LogEntry[] {
    const n = this.#proven;
    if (n === 0) return [];
    const out = this.#lines.splice(0, n);
    for (const e of out) this.#bytes -= e.message.length;
    this.#proven = 0;
    return out;
  }

  /**
   * Resolves once some held lines are proven ("proven": take them with `release()`), the
   * container was found stopped, or the hold closed; starts an inspect when due. Never resolves
   * while nothing is held or once stopped.
   */
  proof(): Promise<ProofResult> {
    if (this.#closed.signal.aborted) return Promise.resolve("closed");
    if (this.#lines.length === 0 || this.#stopped) return new Promise(() => {});
    if (this.#proven > 0) return Promise.resolve("proven");
    this.#proof ??= this.#prove().finally(() => this.#proof = undefined);
    return this.#proof;
  }

  /** Drops every held line (the stream ended: they are read again) and stops proving. */
  close = (): void => {
    this.#lines = [];
    this.#bytes = 0;
    this.#proven = 0;
    this.#closed.abort();
  };

  async #prove(): Promise<ProofResult> {
    const signal = this.#closed.signal;
    for (;;) {
      const wait = this.#lastCheck + this.#intervalMs - performance.now();
      if (wait > 0 && !await sleep(wait, signal)) return "closed";
      this.#lastCheck = performance.now();
      const mark = this.#lines.length;
      let running: boolean | undefined;
      try {
        running = await this.#check(signal);
      } catch (err) {
        if (signal.aborted) return "closed";
        throw err;
      }
      if (signal.aborted) return "closed";
      if (running === false) {
        this.#stopped = true;
        this.#lines = [];
        this.#bytes = 0;
        this.#proven = 0;
        return "stopped";
      }
      if (running === true && mark > 0) {
        this.#proven = Math.max(this.#proven, mark);
        return "proven";
      }
    }
  }
}
