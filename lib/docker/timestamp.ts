/**
 * RFC 3339 timestamps as Docker writes them (`2026-11-25T20:24:44.123456789Z`): to nanoseconds,
 * to the `since` query parameter, and found as the prefix of a log entry.
 * @module
 */

const NANOS_PER_SECOND = 1_000_000_000n;
const SPACE = 32;
/** Longest timestamp prefix scanned, space included. */
const PREFIX_SCAN = 41;
const codes: number[] = [];

/**
 * Nanoseconds since the Unix epoch of an RFC 3339 timestamp: `YYYY-MM-DDTHH:MM:SS`, optional
 * `.` and 1–9 fractional digits, then `Z` or `±HH:MM`. Throws `SyntaxError` for anything else.
 */
export function timestampToNanos(ts: string): bigint {
  const p = parse(ts);
  return BigInt(p.seconds) * NANOS_PER_SECOND + BigInt(p.nanos);
}

/** Docker's `since`/`until` form of a timestamp: `seconds.nanoseconds`, 9 digits after the dot. */
export function toSinceParam(ts: string): string {
  const p = parse(ts);
  return `${p.seconds}.${String(p.nanos).padStart(9, "0")}`;
}

/** Orders two timestamps by the instant they name: negative, zero or positive. */
export function compareTimestamps(a: string, b: string): number {
  const x = parse(a);
  const y = parse(b);
  if (x.seconds !== y.seconds) return x.seconds < y.seconds ? -1 : 1;
  return x.nanos === y.nanos ? 0 : x.nanos < y.nanos ? -1 : 1;
}

/** Whole seconds since the epoch (floored) and the nanoseconds past them (0 ≤ nanos < 1e9). */
interface Instant {
  seconds: number;
  nanos: number;
}

function fail(ts: string): never {
  throw new SyntaxError(`Cannot parse timestamp: current value is ${JSON.stringify(ts)}`);
}

/** Reads `count` decimal digits at `at`, or returns -1. */
function digits(ts: string, at: number, count: number): number {
  if (at + count > ts.length) return -1;
  let v = 0;
  for (let i = at; i < at + count; i++) {
    const c = ts.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

function parse(ts: string): Instant {
  const year = digits(ts, 0, 4);
  const month = digits(ts, 5, 2);
  const day = digits(ts, 8, 2);
  const hour = digits(ts, 11, 2);
  const minute = digits(ts, 14, 2);
  const second = digits(ts, 17, 2);
  const t = ts.charCodeAt(10);
  if (
    year < 0 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month) ||
    hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59 ||
    ts.charCodeAt(4) !== 45 || ts.charCodeAt(7) !== 45 || (t !== 84 && t !== 116) ||
    ts.charCodeAt(13) !== 58 || ts.charCodeAt(16) !== 58
  ) {
    return fail(ts);
  }
  let i = 19;
  let nanos = 0;
  if (ts.charCodeAt(i) === 46) {
    let n = 0;
    for (i++; n < 10; i++, n++) {
      const c = ts.charCodeAt(i) - 48;
      if (!(c >= 0 && c <= 9)) break;
      nanos = nanos * 10 + c;
    }
    if (n === 0 || n > 9) return fail(ts);
    for (; n < 9; n++) nanos *= 10;
  }
  let offset = 0;
  const z = ts.charCodeAt(i);
  if (z === 90 || z === 122) {
    i++;
  } else if (z === 43 || z === 45) {
    const oh = digits(ts, i + 1, 2);
    const om = digits(ts, i + 4, 2);
    if (oh < 0 || oh > 23 || om < 0 || om > 59 || ts.charCodeAt(i + 3) !== 58) return fail(ts);
    offset = (z === 43 ? 1 : -1) * (oh * 3600 + om * 60);
    i += 6;
  } else {
    return fail(ts);
  }
  if (i !== ts.length) return fail(ts);
  const seconds = daysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second -
    offset;
  return { seconds, nanos };
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) {
    return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  }
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** Days from 1970-01-01 to a proleptic Gregorian date. */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/**
 * Index of the space ending a timestamp prefix in `b[start..end)`: the first space, 20–40 bytes
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
