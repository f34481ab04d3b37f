/**
 * The one-line stats summary, logged at info level every interval:
 * `info stats containers=3 lines_read=1200 published=1200 confirmed=1200 dropped_full=0
 * dropped_blocked=0 buffer=0 buffer_bytes=0 oldest_unconfirmed_s=0 reconnects=0`.
 * @module
 */
import { delay } from "../async/delay.ts";
import type { Fields, Logger } from "../log.ts";
import type { Snapshot } from "./snapshot.ts";

/** The fields of the stats line. */
export function statsFields(s: Snapshot): Fields {
  return {
    containers: s.containersAttached,
    lines_read: s.linesRead,
    published: s.published,
    confirmed: s.confirmed,
    dropped_full: s.droppedFull,
    dropped_blocked: s.droppedBlocked,
    buffer: s.bufferMessages,
    buffer_bytes: s.bufferBytes,
    oldest_unconfirmed_s: Math.round(s.oldestUnconfirmedSeconds * 10) / 10,
    reconnects: s.brokerReconnects,
  };
}

/** Logs `info stats ...` every `intervalMs` until `signal` aborts. */
export async function reportStats(
  snapshot: () => Snapshot,
  intervalMs: number,
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  while (!signal.aborted) {
    try {
      await delay(intervalMs, { signal });
    } catch (err) {
      if (signal.aborted) return;
      throw err;
    }
    log.info("stats", statsFields(snapshot()));
  }
}
