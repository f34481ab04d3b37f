/**
 * Lists the running containers periodically and whenever poked (events stream reconnected), so
 * that events the engine dropped cannot leave a container unattached.
 * @module
 */
import { backoff, reattachBackoff } from "../async/backoff.ts";
import { sleep } from "../async/delay.ts";
import type { Tuning } from "../config.ts";
import type { ContainerSummary, DockerClient } from "../docker/api.ts";
import { describe } from "../errors.ts";
import type { Logger } from "../log.ts";

/** Periodic and on-demand listing of running containers. */
export class Reconciler {
  #wake: AbortController = new AbortController();

  /** Lists again as soon as possible. */
  poke(): void {
    this.#wake.abort();
  }

  /**
   * Calls `onList` with every successful listing until the signal aborts, and the
   * `performance.now()` at which it was asked for: a container attached after that may be
   * missing from it without being gone.
   */
  async run(
    docker: Pick<DockerClient, "listRunning">,
    onList: (running: ContainerSummary[], requestedAt: number) => void,
    tuning: Tuning,
    log: Logger,
    signal: AbortSignal,
  ): Promise<void> {
    const policy = reattachBackoff(tuning);
    let failures = 0;
    while (!signal.aborted) {
      let wait = tuning.reconcileIntervalMs;
      try {
        const requestedAt = performance.now();
        onList(await docker.listRunning(signal), requestedAt);
        failures = 0;
      } catch (err) {
        if (signal.aborted) return;
        log.warn("list_failed", { error: describe(err), failures: ++failures });
        wait = backoff(policy, failures - 1);
      }
      // A poke during the listing counts: list again at once.
      const wake = this.#wake;
      if (wake.signal.aborted) {
        this.#wake = new AbortController();
        continue;
      }
      await sleep(wait, AbortSignal.any([signal, wake.signal]));
      if (signal.aborted) return;
      if (wake.signal.aborted) this.#wake = new AbortController();
    }
  }
}
