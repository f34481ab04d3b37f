/**
 * Follows the engine's container events, reconnecting with backoff, and restarting the stream
 * when it has been silent for the watchdog period (a stream can hang without closing).
 * @module
 */
import { backoff } from "../async/backoff.ts";
import { delay } from "../async/delay.ts";
import { watchdog } from "../async/watchdog.ts";
import type { Tuning } from "../config.ts";
import type { DockerClient, DockerEvent } from "../docker/api.ts";
import { describe } from "../errors.ts";
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
  docker: DockerClient,
  sink: EventsSink,
  tuning: Tuning,
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  const policy = { initialMs: tuning.reattachBackoffInitialMs, maxMs: tuning.reattachBackoffMaxMs };
  let attempt = 0;
  while (!signal.aborted) {
    const dog = watchdog(tuning.eventsWatchdogMs, signal);
    try {
      const res = await docker.events(dog.signal);
      attempt = 0;
      log.info("events_connected");
      sink.connected();
      const decoder = new TextDecoder();
      let text = "";
      for await (const piece of res.body()) {
        dog.kick();
        text += decoder.decode(piece, { stream: true });
        let nl: number;
        while ((nl = text.indexOf("\n")) >= 0) {
          const line = text.slice(0, nl).trim();
          text = text.slice(nl + 1);
          if (line !== "") parseEvent(line, sink, log);
        }
      }
      log.warn("events_stream_ended");
    } catch (err) {
      if (signal.aborted) break;
      if (dog.signal.aborted) {
        log.warn("events_silent", { after_ms: tuning.eventsWatchdogMs });
      } else {
        log.warn("events_failed", { error: describe(err), attempt });
      }
    } finally {
      dog.stop();
    }
    try {
      await delay(backoff(policy, attempt++), { signal });
    } catch {
      break;
    }
  }
}

function parseEvent(line: string, sink: EventsSink, log: Logger): void {
  let ev: unknown;
  try {
    ev = JSON.parse(line);
  } catch {
    log.warn("event_unparsable", { sample: line.slice(0, 120) });
    return;
  }
  if (ev && typeof ev === "object") sink.event(ev as DockerEvent);
}
