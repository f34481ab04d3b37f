/**
 * Proves that a follow stream's engine still followed when lines were read: an inspect asked
 * after a line was read that finds the same run still running shows no entry before that line
 * was dropped (Podman 4.3, see `held_lines.ts`). One per follow stream, shared by everything that
 * waits for such a proof (`HeldLines`, `SentLines`): at most one inspect in flight, at most one
 * started per `RUN_PROOF_INTERVAL_MS`, and each inspect's answer serves every party at once.
 *
 * Each party is told when an inspect starts (`marked`: what it read so far is what the answer
 * covers) and what that inspect found (`found`); one inspect is in flight at a time, so each
 * answer belongs to the last mark.
 * @module
 */
import { sleep } from "../async/delay.ts";

/** Least time between the starts of two inspects that prove lines. */
export const RUN_PROOF_INTERVAL_MS = 250;

/**
 * Asks the engine whether the run being followed still runs (an inspect): true, false (stopped,
 * or restarted meanwhile), or undefined when the engine could not tell. Rejects only once
 * `signal` aborted.
 */
export type RunningCheck = (signal: AbortSignal) => Promise<boolean | undefined>;

/**
 * What one inspect found: the run still runs, it stopped (for good: no more inspects), or the
 * engine could not tell; "closed": the proof's signal aborted.
 */
export type RunAnswer = "running" | "stopped" | "unknown" | "closed";

/** Lines read that an inspect can prove (see the module doc). */
export interface ProofParty {
  /** An inspect starts: the lines read so far are those its answer covers. */
  marked(): void;
  /** The inspect last marked found the run running (its lines are proven) or stopped. */
  found(running: boolean): void;
}

/** See the module doc. */
export class RunProof {
  readonly #check: RunningCheck;
  readonly #signal: AbortSignal;
  readonly #intervalMs: number;
  readonly #parties: ProofParty[] = [];
  #lastStart = -Infinity;
  #stopped = false;
  /** The inspect in flight (or waiting for its turn). */
  #flight: Promise<RunAnswer> | undefined;
  /** A check that rejected without its signal aborted: every later `next()` rejects with it. */
  #failure: { error: unknown } | undefined;

  /** `check`: see {@link RunningCheck}; `signal` ends the proving (and every wait). */
  constructor(check: RunningCheck, signal: AbortSignal, intervalMs = RUN_PROOF_INTERVAL_MS) {
    this.#check = check;
    this.#signal = signal;
    this.#intervalMs = intervalMs;
  }

  /** Aborts when the proving ends. */
  get signal(): AbortSignal {
    return this.#signal;
  }

  /** Whether an inspect found the run stopped: nothing more is proven. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Tells `party` of every inspect from now on. */
  join(party: ProofParty): void {
    this.#parties.push(party);
  }

  /**
   * Starts an inspect if none is in flight and the last one started at least the interval ago;
   * else nothing (the answer serves anyway). Cheap enough to call for every line.
   */
  ask(): void {
    if (this.#flight !== undefined || this.#stopped || this.#signal.aborted) return;
    if (performance.now() - this.#lastStart < this.#intervalMs) return;
    this.#fly().catch(this.#failed);
  }

  /**
   * The answer of the inspect in flight, or of one started now (or once the interval since the
   * last one passed). "stopped" at once once stopped, "closed" once the signal aborted.
   */
  next(): Promise<RunAnswer> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure.error);
    if (this.#signal.aborted) return Promise.resolve("closed");
    if (this.#stopped) return Promise.resolve("stopped");
    return this.#fly();
  }

  #fly(): Promise<RunAnswer> {
    return this.#flight ??= this.#inspect().finally(() => this.#flight = undefined);
  }

  #failed = (error: unknown): void => {
    this.#failure ??= { error };
  };

  async #inspect(): Promise<RunAnswer> {
    const signal = this.#signal;
    const wait = this.#lastStart + this.#intervalMs - performance.now();
    if (wait > 0 && !await sleep(wait, signal)) return "closed";
    if (signal.aborted) return "closed";
    this.#lastStart = performance.now();
    for (const party of this.#parties) party.marked();
    let running: boolean | undefined;
    try {
      running = await this.#check(signal);
    } catch (err) {
      if (signal.aborted) return "closed";
      throw err;
    }
    if (signal.aborted) return "closed";
    if (running === undefined) return "unknown";
    if (!running) this.#stopped = true;
    for (const party of this.#parties) party.found(running);
    return running ? "running" : "stopped";
  }
}
