/**
 * One tail on a scripted engine for the tail tests: `tailContainer` for container `id`, attached
 * from the beginning, never told it died, never aborted, logging to a `CaptureLog`.
 * @module
 */
import type { Config } from "../../lib/config.ts";
import { DEFAULT_TUNING } from "../../lib/config.ts";
import { compileFilter } from "../../lib/filter.ts";
import type { MessageQueue } from "../../lib/queue.ts";
import { tailContainer, type TailEngine, type TailResult } from "../../lib/supervisor/tail.ts";
import {
  type ContainerCounters,
  newContainerCounters,
} from "../../lib/telemetry/container_counters.ts";
import { CaptureLog } from "../amqp/_broker.ts";

/** A signal that never aborts: the tail is never told its container died, nor stopped. */
const NEVER = new AbortController().signal;

/** Runs a tail of `id` on `docker` into `queue` with `config` (its tuning the default). */
export function startTail(
  docker: TailEngine,
  queue: MessageQueue,
  config: Config,
  id: string,
  counters: ContainerCounters = newContainerCounters(),
): Promise<TailResult> {
  return tailContainer(
    {
      docker,
      queue,
      log: new CaptureLog(),
      config: { ...config, tuning: DEFAULT_TUNING },
      filter: compileFilter(config.filters),
    },
    { id, start: { kind: "beginning" }, died: () => NEVER, counters },
    NEVER,
  );
}
