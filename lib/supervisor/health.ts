/**
 * Pings the engine every interval; after too many consecutive failures the daemon must exit so
 * that its supervisor (systemd) restarts it from a clean state.
 * @module
 */
import { sleep } from "../async/delay.ts";
import type { Tuning } from "../config.ts";
import type { DockerClient } from "../docker/api.ts";
import { describe } from "../errors.ts";
import type { Logger } from "../log.ts";

/**
 * Resolves when the signal aborts; calls `onFailure` after each failed ping, `onSuccess` after
 * each answered one, and `onDead` after `pingFailuresToExit` failures in a row.
 */
export async function watchHealth(
  docker: DockerClient,
  tuning: Tuning,
  log: Logger,
  onFailure: () => void,
  onDead: () => void,
  signal: AbortSignal,
  onSuccess: () => void = () => {},
): Promise<void> {
  let failures = 0;
  while (!signal.aborted) {
    if (!await sleep(tuning.pingIntervalMs, signal)) return;
    try {
      const timeout = AbortSignal.any([signal, AbortSignal.timeout(tuning.headerTimeoutMs)]);
      await docker.ping(timeout);
      onSuccess();
      if (failures > 0) log.info("ping_recovered", { after_failures: failures });
      failures = 0;
    } catch (err) {
      if (signal.aborted) return;
      failures++;
      onFailure();
      log.warn("ping_failed", {
        failures,
        limit: tuning.pingFailuresToExit,
        error: describe(err),
      });
      if (failures >= tuning.pingFailuresToExit) {
        onDead();
        return;
      }
    }
  }
}
