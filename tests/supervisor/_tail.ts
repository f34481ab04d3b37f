/**
 * One tail on a scripted engine for the tail tests: `tailContainer` for container `id`, attached
 * from the beginning, never told it died, never aborted, logging to a `CaptureLog`; and a follow
 * stream that sends what a channel is given.
 * @module
 */
import type { Channel } from "../../lib/async/channel.ts";
import type { Config } from "../../lib/config.ts";
import type { LogsStart } from "../../lib/docker/api.ts";
import { LogStream, type LogStreamOptions } from "../../lib/docker/log_stream.ts";
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

/**
 * A `logs` answer whose follow stream sends each piece `follow` is given, in order, and ends at
 * `null` (or when the tail's signal aborts).
 */
export function followChannelLogs(
  follow: Channel<Uint8Array | null>,
): (
  id: string,
  start: LogsStart,
  opts: LogStreamOptions,
  signal: AbortSignal,
) => Promise<LogStream> {
  return (_id, _start, opts, signal) => {
    async function* body() {
      for (;;) {
        const piece = await follow.receive(signal);
        if (piece === null) return;
        yield piece;
      }
    }
    return Promise.resolve(new LogStream(body(), opts, true));
  };
}
