/**
 * Engine time, in one place: RFC 3339 timestamps as Docker writes them
 * (`2026-11-25T20:24:44.123456789Z`) parsed, compared, turned into nanoseconds and into the
 * `since` query parameter; the engine's zero time; and the clock, for lines without a timestamp.
 * @module
 */

const NANOS_PER_SECOND = 1_000_000_000n;

/**
 * Nanoseconds since the Unix epoch of an RFC 3339 timestamp: `YYYY-MM-DDTHH:MM:SS`, optional
 * `.` and 1-9 fractional digits, then `Z` or `+/-HH:MM`. Throws `SyntaxError` for anything else.
 */
export function timestampToNanos(ts: string): bigint {
  const p = parse(ts);
  return BigInt(p.seconds) * NANOS_PER_SECOND + BigInt(p.nanos);
}

/**
 * Whole seconds since the Unix epoch (floored) and the nanoseconds past them of an RFC 3339
 * timestamp: `timestampToNanos` without a `BigInt`. Throws `SyntaxError` like it.
 */
export function timestampInstant(ts: string): Instant {
  return parse(ts);
}

/** Docker's `since`/`until` form of a timestamp: `seconds.nanoseconds`, 9 digits after the dot. */
export function toSinceParam(ts: string): string {
  const p = parse(ts);
  return `${p.seconds}.${String(p.nanos).padStart(9, "0")}`;
}

/** Docker's `since` form of an instant in nanoseconds since the epoch. */
export function nanosToSince(nanos: bigint): string {
  let s = nanos / NANOS_PER_SECOND;
  let ns = nanos % NANOS_PER_SECOND;
  if (ns < 0n) {
    s -= 1n;
    ns += NANOS_PER_SECOND;
  }
  return `${s}.${ns.toString().padStart(9, "0")}`;
}

/**
 * Orders two timestamps by the instant they name: negative, zero or positive. The engine writes
 * UTC with 9 fixed digits, where text order is time order (the per-line fast path); other forms
 * are compared by their instants.
 */
export function compareTimestamps(a: string, b: string): number {
  if (a.length === b.length && a.endsWith("Z") && b.endsWith("Z")) {
    return a < b ? -1 : a > b ? 1 : 0;
  }
  return compareInstants(a, b);
}

/** The slow path of {@link compareTimestamps}, apart so that the fast one stays small. */
function compareInstants(a: string, b: string): number {
  const x = parse(a);
  const y = parse(b);
  if (x.seconds !== y.seconds) return x.seconds < y.seconds ? -1 : 1;
  return x.nanos === y.nanos ? 0 : x.nanos < y.nanos ? -1 : 1;
}

/** Whole seconds since the epoch (floored) and the nanoseconds past them (0 <= nanos < 1e9). */
export interface Instant {
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

/** The date and time to the second of the last engine-form timestamp parsed, and its seconds. */
let lastSecond = "";
let lastSeconds = 0;
/** Length of Docker's own form, `2026-11-25T20:24:44.123456789Z`. */
const ENGINE_FORM_LENGTH = 30;
/** Length of its part up to the second, `2026-11-25T20:24:44`. */
const SECOND_LENGTH = 19;

function parse(ts: string): Instant {
  // Lines come many to a second: the engine's form in the same second as the last one parsed
  // only needs its fraction read.
  if (
    ts.length === ENGINE_FORM_LENGTH && ts.charCodeAt(29) === 90 && ts.charCodeAt(19) === 46 &&
    lastSecond !== "" && ts.startsWith(lastSecond)
  ) {
    const nanos = digits(ts, 20, 9);
    if (nanos >= 0) return { seconds: lastSeconds, nanos };
  }
  const instant = parseFull(ts);
  if (ts.length === ENGINE_FORM_LENGTH && ts.charCodeAt(29) === 90) {
    lastSecond = ts.slice(0, SECOND_LENGTH);
    lastSeconds = instant.seconds;
  }
  return instant;
}

function parseFull(ts: string): Instant {
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

let lastRaw = "";
let lastNormal = "";

/**
 * A timestamp in the engine form karotten sends and compares: UTC, 9 fractional digits
 * (`2026-12-01T20:33:30.000000000Z` for Podman's `2026-12-01T20:33:30Z`). Throws `SyntaxError`
 * like `timestampToNanos`.
 */
export function normalizeTimestamp(ts: string): string {
  if (ts.length === ENGINE_FORM_LENGTH && ts.charCodeAt(29) === 90 && ts.charCodeAt(19) === 46) {
    return ts;
  }
  // Lines come many to a second, each with the same text.
  if (ts === lastRaw) return lastNormal;
  const p = parse(ts);
  const normal = new Date(p.seconds * 1000).toISOString().slice(0, SECOND_LENGTH) + "." +
    String(p.nanos).padStart(9, "0") + "Z";
  lastRaw = ts;
  lastNormal = normal;
  return normal;
}

/** Whether a state timestamp is the engine's zero time (`0001-01-01T00:00:00Z`: never happened). */
export function isZeroTime(ts: string | undefined): boolean {
  return ts === undefined || ts === "" || ts.startsWith("0001-");
}

/** The current time as RFC 3339 with 9 fractional digits (for lines the engine sent without one). */
export function nowRfc3339Nano(): string {
  return new Date().toISOString().replace(/\.(\d{3})Z$/, ".$1000000Z");
}
