/**
 * Follows the engine's container events, reconnecting with backoff, and restarting the stream
 * when it has been silent for the watchdog period (a stream can hang without closing).
 * @module
 */
import { backoff, reattachBackoff } from "../async/backoff.ts";
import { sleep } from "../async/delay.ts";
import { watchdog } from "../async/watchdog.ts";
import type { Tuning } from "../config.ts";
import type { DockerClient, DockerEvent } from "../docker/api.ts";
import { describe, STREAM_CUT, StreamCutError } from "../errors.ts";
import type { Logger } from "../log.ts";

/** What the events loop reports. */
export interface EventsSink {
  /** The stream is (re)connected: time to reconcile, events may have been missed. */
  connected(): void;
  /** One container event. */
  event(ev: DockerEvent): void;
}

/** Runs until the signal aborts. */
export async function followEvents(
  docker: Pick<DockerClient, "events">,
  sink: EventsSink,
  tuning: Tuning,
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  const policy = reattachBackoff(tuning);
  const handlers = {
    onUnparsable: (sample: string) => log.warn("event_unparsable", { sample }),
    onInvalid: (problem: string, sample: string) =>
      log.warn("event_invalid", { error: problem, sample }),
  };
  let attempt = 0;
  while (!signal.aborted) {
    const dog = watchdog(tuning.eventsWatchdogMs, signal);
    // The backoff starts over only after a stream that worked: it sent a whole line, or stayed
    // quietly open until the watchdog (an idle engine). One that fails at once (a line without
    // end, an immediate close) waits longer each time.
    let worked = false;
    try {
      const events = await docker.events(dog.signal, handlers);
      log.info("events_connected");
      sink.connected();
      for await (const batch of events) {
        worked = true;
        dog.kick();
        for (const ev of batch) sink.event(ev);
      }
      log.warn("events_stream_ended");
    } catch (err) {
      if (signal.aborted) break;
      if (dog.signal.aborted) {
        worked = true;
        log.warn("events_silent", { after_ms: tuning.eventsWatchdogMs });
      } else if (err instanceof StreamCutError) {
        // Podman cuts its streams so when its service stops or restarts.
        log.warn("events_stream_ended", { reason: STREAM_CUT });
      } else {
        log.warn("events_failed", { error: describe(err), attempt });
      }
    } finally {
      dog.stop();
    }
    if (worked) attempt = 0;
    if (!await sleep(backoff(policy, attempt++), signal)) break;
  }
}
