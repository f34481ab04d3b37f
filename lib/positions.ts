/**
 * Read positions: per container, the last engine timestamp sent and how many messages carried
 * exactly that timestamp. A re-attach asks the engine for `since=<timestamp>` (inclusive) and
 * skips that many messages at the timestamp, so nothing is sent twice and nothing is missed.
 * @module
 */
import { compareTimestamps } from "./time.ts";

/** Where a container's stream was when it was last read. */
export interface Position {
  /**
   * Engine timestamp (RFC 3339, 9 fractional digits) of the newest message sent; with `count`
   * 0, the instant reading started from (attached at "now"), before any line.
   */
  ts: string;
  /** Messages sent with exactly that timestamp. */
  count: number;
}

/**
 * Advances a position by one message at `ts`; returns the message's count at that timestamp
 * (1-based). A timestamp older than the position (stdout and stderr are not ordered against each
 * other) leaves it unchanged. The first line after an instant always takes its place: an engine
 * with whole-second timestamps (Podman) prints a line read after the instant with the second
 * that holds it, which compares older.
 */
export function advance(pos: Position, ts: string): number {
  const c = pos.count === 0 ? 1 : compareTimestamps(ts, pos.ts);
  if (c > 0) {
    pos.ts = ts;
    pos.count = 1;
    return 1;
  }
  if (c === 0) return ++pos.count;
  return 0;
}

/**
 * Raises a position to a message sent with a known count at `ts` (a line found missing and sent
 * after later ones): the position stays the newest timestamp sent and its highest count.
 */
export function raise(pos: Position, ts: string, count: number): void {
  const c = pos.count === 0 ? 1 : compareTimestamps(ts, pos.ts);
  if (c > 0) {
    pos.ts = ts;
    pos.count = count;
  } else if (c === 0 && count > pos.count) pos.count = count;
}
