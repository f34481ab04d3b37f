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
 * followed: no entry before that line was dropped (asked by `run_proof.ts`). Once an inspect
 * finds it stopped, nothing held is sent: the stream ends soon, and its lines are read again
 * (completed when it stopped, re-attached when it runs again).
 * @module
 */
import type { LogEntry } from "../docker/log_stream.ts";
import type { ProofParty, RunProof } from "./run_proof.ts";

/** Bytes held before the reader waits for the next proof instead of reading on. */
export const HELD_MAX_BYTES = 8 * 1024 * 1024;

/**
 * What a proof found: lines to release, the container stopped (nothing held is sent), or the
 * hold was closed (its proof's signal aborted).
 */
export type ProofResult = "proven" | "stopped" | "closed";

/** See the module doc; one per follow stream of an engine that may drop entries. */
export class HeldLines implements ProofParty {
  readonly #run: RunProof;
  #lines: LogEntry[] = [];
  #bytes = 0;
  /** Leading held lines proven. */
  #proven = 0;
  /** Lines held when the inspect in flight started. */
  #mark = 0;
  #proof: Promise<ProofResult> | undefined;

  /** `run`: the stream's proof (shared); the hold closes, dropping its lines, when it ends. */
  constructor(run: RunProof) {
    this.#run = run;
    run.join(this);
    if (!run.signal.aborted) {
      run.signal.addEventListener("abort", this.#drop, { once: true });
    }
  }

  /** Lines held. */
  get size(): number {
    return this.#lines.length;
  }

  /** Whether the reader should wait for a proof before it reads on. */
  get full(): boolean {
    return this.#bytes > HELD_MAX_BYTES && !this.#run.stopped;
  }

  /** Whether an inspect found the container stopped: held lines will never be sent. */
  get stopped(): boolean {
    return this.#run.stopped;
  }

  /**
   * Takes `entry` when it must wait (something is held already, or it was joined); false: send
   * it now. The entry is copied (the stream reuses its batch). Once stopped, taken and dropped;
   * once closed, never taken.
   */
  take(entry: LogEntry): boolean {
    if (this.#run.stopped) return true;
    if (this.#run.signal.aborted) return false;
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
    this.#mark = Math.max(0, this.#mark - n);
    return out;
  }

  /**
   * Resolves once some held lines are proven ("proven": take them with `release()`), the
   * container was found stopped, or the hold closed; asks for an inspect when due. Never
   * resolves while nothing is held or once stopped.
   */
  proof(): Promise<ProofResult> {
    if (this.#run.signal.aborted) return Promise.resolve("closed");
    if (this.#lines.length === 0 || this.#run.stopped) return new Promise(() => {});
    if (this.#proven > 0) return Promise.resolve("proven");
    this.#proof ??= this.#prove().finally(() => this.#proof = undefined);
    return this.#proof;
  }

  /** For the proof: an inspect starts. */
  marked(): void {
    this.#mark = this.#lines.length;
  }

  /** For the proof: the lines held when the inspect started are proven, or none ever will be. */
  found(running: boolean): void {
    if (running) this.#proven = Math.max(this.#proven, this.#mark);
    else this.#drop();
  }

  async #prove(): Promise<ProofResult> {
    for (;;) {
      const answer = await this.#run.next();
      if (answer === "closed" || answer === "stopped") return answer;
      if (this.#proven > 0) return "proven";
    }
  }

  /** Drops every held line (the stream ended, or its run: they are read again). */
  #drop = (): void => {
    this.#lines = [];
    this.#bytes = 0;
    this.#proven = 0;
    this.#mark = 0;
  };
}
