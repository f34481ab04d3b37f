/**
 * Read positions: per container, the last engine timestamp sent and how many messages carried
 * exactly that timestamp. A re-attach asks the engine for `since=<timestamp>` (inclusive) and
 * skips that many messages at the timestamp, so nothing is sent twice and nothing is missed.
 * @module
 */
import { compareTimestamps } from "./time.ts";

/** Where a container's stream was when it was last read. */
export interface Position {
  /** Engine timestamp (RFC 3339, 9 fractional digits) of the newest message sent. */
  ts: string;
  /** Messages sent with exactly that timestamp. */
  count: number;
}

/**
 * Advances a position by one message at `ts`; returns the message's count at that timestamp
 * (1-based). A timestamp older than the position (stdout and stderr are not ordered against each
 * other) leaves it unchanged.
 */
export function advance(pos: Position, ts: string): number {
  const c = pos.ts === "" ? 1 : compareTimestamps(ts, pos.ts);
  if (c > 0) {
    pos.ts = ts;
    pos.count = 1;
    return 1;
  }
  if (c === 0) return ++pos.count;
  return 0;
}
