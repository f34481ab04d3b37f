/**
 * A running check (`run_proof.ts`) answered by the test, for the proof's and the hold's unit
 * tests: each call waits until the test answers it, or rejects once its signal aborts (as an
 * inspect does).
 * @module
 */
import type { RunningCheck } from "../../lib/supervisor/run_proof.ts";
import { withDeadline } from "../helpers/deadline.ts";

/** A scripted check: `check` for the proof, `calls` made so far, `answer` for the last one. */
export interface ScriptedCheck {
  /** The check to give the proof. */
  check: RunningCheck;
  /** Every call so far, each with the signal it was given. */
  calls: (PromiseWithResolvers<boolean | undefined> & { signal: AbortSignal })[];
  /** Waits for the next check (one not answered yet), then answers it. */
  answer(running: boolean | undefined): Promise<void>;
}

/** See the module doc. */
export function scriptedCheck(): ScriptedCheck {
  const calls: ScriptedCheck["calls"] = [];
  let asked = Promise.withResolvers<void>();
  return {
    check: (signal) => {
      const call = { ...Promise.withResolvers<boolean | undefined>(), signal };
      signal.addEventListener("abort", () => call.reject(signal.reason), { once: true });
      calls.push(call);
      asked.resolve();
      return call.promise;
    },
    calls,
    async answer(running) {
      await withDeadline(asked.promise, 2_000, "a running check");
      asked = Promise.withResolvers<void>();
      calls.at(-1)!.resolve(running);
    },
  };
}
