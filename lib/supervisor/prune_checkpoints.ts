/**
 * Forgets the checkpoints of containers the engine no longer has (removed while karotten was
 * not running, so no `destroy` event told it): one inspect per checkpoint, once at start.
 * @module
 */
import type { CheckpointStore } from "../checkpoints.ts";
import type { DockerClient } from "../docker/api.ts";
import { describe, DockerApiError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Position } from "../positions.ts";
import { shortId } from "../short_id.ts";

/** Prunes; a failure other than "no such container" stops it with one warning (kept: harmless). */
export async function pruneCheckpoints(
  docker: DockerClient,
  checkpoints: CheckpointStore,
  positions: Map<string, Position>,
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  let pruned = 0;
  for (const id of checkpoints.ids()) {
    if (signal.aborted) return;
    try {
      await docker.inspect(id, signal);
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof DockerApiError && err.status === 404) {
        checkpoints.forget(id);
        positions.delete(id);
        pruned++;
        continue;
      }
      log.warn("checkpoints_prune_failed", { id: shortId(id), error: describe(err) });
      break;
    }
  }
  if (pruned > 0) log.info("checkpoints_pruned", { containers: pruned });
}
