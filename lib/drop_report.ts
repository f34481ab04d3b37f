/**
 * Periodic report of the lines the full buffer refused.
 * @module
 */
import { sleep } from "./async/delay.ts";
import type { Logger } from "./log.ts";
import { shortId } from "./short_id.ts";
import type { MessageQueue } from "./queue.ts";

/**
 * Every `intervalMs` until `signal` aborts: when `queue.takeDropped()` counted anything, logs
 * `warn dropped lines=N full=N blocked=N containers=N`, then for each container that lost lines
 * `warn dropped_container id=<12> lines=N full=N blocked=N key=<routing key>`. On abort, reports
 * what is left, then resolves.
 */
export async function startDropReporter(
  queue: MessageQueue,
  intervalMs: number,
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  while (!signal.aborted) {
    await sleep(intervalMs, signal);
    const { full, blocked, containers } = queue.takeDropped();
    if (full + blocked === 0) continue;
    log.warn("dropped", { lines: full + blocked, full, blocked, containers: containers.size });
    for (const [id, c] of containers) {
      log.warn("dropped_container", {
        id: shortId(id),
        lines: c.full + c.blocked,
        full: c.full,
        blocked: c.blocked,
        key: c.key,
      });
    }
  }
}
