/**
 * Periodic report of the lines the full buffer refused.
 * @module
 */
import { delay } from "./async/delay.ts";
import type { Logger } from "./log.ts";
import type { MessageQueue } from "./queue.ts";

/**
 * Every `intervalMs` until `signal` aborts: when `queue.takeDropped()` counted anything, logs
 * `warn dropped lines=N full=N blocked=N`. On abort, reports what is left, then resolves.
 */
export async function startDropReporter(
  queue: MessageQueue,
  intervalMs: number,
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  while (!signal.aborted) {
    try {
      await delay(intervalMs, { signal });
    } catch (err) {
      if (!signal.aborted) throw err;
    }
    const { full, blocked } = queue.takeDropped();
    if (full + blocked > 0) log.warn("dropped", { lines: full + blocked, full, blocked });
  }
}
