/**
 * Read positions: per container, the last engine timestamp sent and how many messages carried
 * exactly that timestamp. A re-attach asks the engine for `since=<timestamp>` (inclusive) and
 * skips that many messages at the timestamp, so nothing is sent twice and nothing is missed.
 * @module
 */

/** Where a container's stream was when it was last read. */
export interface Position {
  /** Engine timestamp (RFC 3339, 9 fractional digits) of the newest message sent. */
  ts: string;
  /** Messages sent with exactly that timestamp. */
  count: number;
}

/**
 * Orders two engine timestamps. The engine writes UTC with 9 fixed digits, where text order is
 * time order; other forms fall back to `Date.parse` plus the fraction.
 */
export function compareTs(a: string, b: string): number {
  if (a.length === b.length && a.endsWith("Z") && b.endsWith("Z")) {
    return a < b ? -1 : a > b ? 1 : 0;
  }
  const na = tsNanos(a);
  const nb = tsNanos(b);
  return na < nb ? -1 : na > nb ? 1 : 0;
}

function tsNanos(ts: string): bigint {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(ts);
  if (!m) return 0n;
  const ms = Date.parse(m[1] + m[3]);
  if (Number.isNaN(ms)) return 0n;
  return BigInt(ms) * 1_000_000n + BigInt((m[2] ?? "").padEnd(9, "0").slice(0, 9) || "0");
}

/**
 * Advances a position by one message at `ts`; returns the message's count at that timestamp
 * (1-based). A timestamp older than the position (stdout and stderr are not ordered against each
 * other) leaves it unchanged.
 */
export function advance(pos: Position, ts: string): number {
  const c = compareTs(ts, pos.ts);
  if (c > 0) {
    pos.ts = ts;
    pos.count = 1;
    return 1;
  }
  if (c === 0) return ++pos.count;
  return 0;
}
