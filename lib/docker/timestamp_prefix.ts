/**
 * The timestamp prefix of a log entry read with `timestamps=1` (`<RFC 3339> <content>`): found
 * and decoded from bytes, without parsing the time (that is `lib/time.ts`).
 * @module
 */

const SPACE = 32;
/** Longest timestamp prefix scanned, space included. */
export const PREFIX_SCAN = 41;
const codes: number[] = [];

/**
 * Index of the space ending a timestamp prefix in `b[start..end)`: the first space, 20-40 bytes
 * after `start`, which begins with 4 digits and '-'. -1 when there is none.
 */
export function timestampPrefixEnd(b: Uint8Array, start: number, end: number): number {
  const lim = Math.min(end, start + PREFIX_SCAN);
  for (let i = start; i < lim; i++) {
    if (b[i] === SPACE) return isTimestampPrefix(b, start, i) ? i : -1;
  }
  return -1;
}

/** Whether `b[start..sp)`, followed by the first space at `sp`, is a timestamp prefix. */
export function isTimestampPrefix(b: Uint8Array, start: number, sp: number): boolean {
  const len = sp - start;
  if (len < 20 || len > 40 || b[start + 4] !== 45) return false;
  for (let i = start; i < start + 4; i++) {
    if (b[i] < 48 || b[i] > 57) return false;
  }
  return true;
}

/** Decodes `b[s..end)` as Latin-1 (timestamps are ASCII); fast for Docker's 30-byte form. */
export function decodeTimestamp(b: Uint8Array, s: number, end: number): string {
  if (end - s === 30) {
    // One call, one flat string: the common `2026-11-25T20:24:44.123456789Z`.
    // deno-fmt-ignore
    return String.fromCharCode(
      b[s], b[s + 1], b[s + 2], b[s + 3], b[s + 4], b[s + 5], b[s + 6], b[s + 7], b[s + 8],
      b[s + 9], b[s + 10], b[s + 11], b[s + 12], b[s + 13], b[s + 14], b[s + 15], b[s + 16],
      b[s + 17], b[s + 18], b[s + 19], b[s + 20], b[s + 21], b[s + 22], b[s + 23], b[s + 24],
      b[s + 25], b[s + 26], b[s + 27], b[s + 28], b[s + 29],
    );
  }
  codes.length = end - s;
  for (let i = s; i < end; i++) codes[i - s] = b[i];
  return String.fromCharCode.apply(null, codes);
}
