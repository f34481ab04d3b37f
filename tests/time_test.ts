import assert from "node:assert/strict";
import {
  compareTimestamps,
  isZeroTime,
  nanosToSince,
  normalizeTimestamp,
  timestampToNanos,
  toSinceParam,
} from "../lib/time.ts";
import { random, RUN_SEED } from "./docker/_split.ts";

Deno.test("toSinceParam turns a Docker timestamp into seconds.nanoseconds", () => {
  assert.equal(toSinceParam("2026-11-25T20:24:44.123456789Z"), "1795638284.123456789");
  assert.equal(toSinceParam("2026-11-25T20:24:44.000000001z"), "1795638284.000000001");
  assert.equal(toSinceParam("1970-01-01T00:00:00Z"), "0.000000000");
});

Deno.test("toSinceParam applies offsets", () => {
  assert.equal(toSinceParam("2026-11-25T21:24:44.123456789+01:00"), "1795638284.123456789");
  assert.equal(toSinceParam("2026-11-25T14:54:44.123456789-05:30"), "1795638284.123456789");
  assert.equal(toSinceParam("2026-11-26T00:24:44.5+04:00"), "1795638284.500000000");
});

Deno.test("toSinceParam pads fewer fractional digits to 9", () => {
  assert.equal(toSinceParam("2026-11-25T20:24:44.5Z"), "1795638284.500000000");
  assert.equal(toSinceParam("2026-11-25T20:24:44.0123Z"), "1795638284.012300000");
  assert.equal(toSinceParam("2026-11-25t20:24:44Z"), "1795638284.000000000");
});

Deno.test("toSinceParam floors instants before 1970", () => {
  assert.equal(toSinceParam("1969-12-31T23:59:59.5Z"), "-1.500000000");
  assert.equal(timestampToNanos("1969-12-31T23:59:59.5Z"), -500_000_000n);
});

Deno.test("timestampToNanos agrees with Date.UTC on random dates", () => {
  const next = random(RUN_SEED);
  for (let n = 0; n < 2000; n++) {
    const ms = Math.floor(next() * Date.UTC(2400, 0, 1));
    const nanos = Math.floor(next() * 1e6);
    const iso = new Date(ms).toISOString(); // 2026-11-25T20:24:44.123Z
    const ts = `${iso.slice(0, 23)}${String(nanos).padStart(6, "0")}Z`;
    const want = BigInt(ms) * 1_000_000n + BigInt(nanos);
    assert.equal(timestampToNanos(ts), want, `${ts} (seed ${RUN_SEED})`);
  }
});

Deno.test("timestampToNanos knows leap years", () => {
  assert.equal(
    timestampToNanos("2024-02-29T00:00:00Z"),
    BigInt(Date.UTC(2024, 1, 29)) * 1_000_000n,
  );
  assert.equal(
    timestampToNanos("2000-02-29T00:00:00Z"),
    BigInt(Date.UTC(2000, 1, 29)) * 1_000_000n,
  );
  assert.throws(() => timestampToNanos("1900-02-29T00:00:00Z"), SyntaxError);
  assert.throws(() => timestampToNanos("2026-02-29T00:00:00Z"), SyntaxError);
  assert.throws(() => timestampToNanos("2026-04-31T00:00:00Z"), SyntaxError);
});

Deno.test("compareTimestamps orders by instant across offsets and precisions", () => {
  const a = "2026-11-25T20:24:44.123456789Z";
  assert.equal(compareTimestamps(a, a), 0);
  assert.equal(compareTimestamps(a, "2026-11-25T21:24:44.123456789+01:00"), 0);
  assert.equal(compareTimestamps("2026-11-25T20:24:44.1Z", "2026-11-25T20:24:44.100000000Z"), 0);
  assert.ok(compareTimestamps(a, "2026-11-25T20:24:44.12345679Z") < 0);
  assert.ok(compareTimestamps("2026-11-25T20:24:45Z", a) > 0);
  assert.ok(compareTimestamps("2026-11-25T20:24:44.9Z", "2026-11-25T20:24:44.123+00:00") > 0);
  assert.ok(compareTimestamps("2026-11-25T21:00:00+02:00", "2026-11-25T20:00:00Z") < 0);
  const sorted = [
    "2026-11-25T20:24:44.000000002Z",
    "2026-11-25T20:24:44.000000001Z",
    "2026-11-25T19:24:44.000000001-01:00",
  ].sort(compareTimestamps);
  assert.deepEqual(sorted, [
    "2026-11-25T20:24:44.000000001Z",
    "2026-11-25T19:24:44.000000001-01:00",
    "2026-11-25T20:24:44.000000002Z",
  ]);
});

Deno.test("timestampToNanos throws SyntaxError for junk", () => {
  for (
    const junk of [
      "",
      "junk",
      "2026-11-25",
      "2026-11-25T20:24:44",
      "2026-11-25T20:24:44.Z",
      "2026-11-25T20:24:44.1234567890Z",
      "2026-11-25T20:24:44.123456789Zjunk",
      "2026-11-25 20:24:44Z",
      "2026/11/25T20:24:44Z",
      "2026-13-25T20:24:44Z",
      "2026-00-25T20:24:44Z",
      "2026-11-00T20:24:44Z",
      "2026-11-25T24:00:00Z",
      "2026-11-25T20:60:44Z",
      "2026-11-25T20:24:60Z",
      "2026-11-25T20:24:44+1:00",
      "2026-11-25T20:24:44+01:60",
      "2026-11-25T20:24:44+0100",
      "+2026-11-25T20:24:44Z",
      "２026-11-25T20:24:44Z",
    ]
  ) {
    for (
      const f of [
        timestampToNanos,
        toSinceParam,
        (s: string) => compareTimestamps(s, "2026-11-25T20:24:44+00:00"),
      ]
    ) {
      assert.throws(() => f(junk), (err: unknown) => {
        assert.ok(err instanceof SyntaxError, `${junk}: ${err}`);
        assert.equal(
          err.message,
          `Cannot parse timestamp: current value is ${JSON.stringify(junk)}`,
        );
        return true;
      });
    }
  }
});

Deno.test("compareTimestamps orders engine timestamps, offsets included", () => {
  assert.equal(
    compareTimestamps("2026-01-01T00:00:00.000000001Z", "2026-01-01T00:00:00.000000002Z"),
    -1,
  );
  assert.equal(
    compareTimestamps("2026-01-01T01:00:00.5+01:00", "2026-01-01T00:00:00.500000000Z"),
    0,
  );
});

Deno.test("nanosToSince agrees with toSinceParam", () => {
  for (
    const ts of ["2026-11-25T20:24:44.123456789Z", "1970-01-01T00:00:00Z", "1969-12-31T23:59:59.5Z"]
  ) {
    assert.equal(nanosToSince(timestampToNanos(ts)), toSinceParam(ts));
  }
});

Deno.test("isZeroTime knows the engine's zero time", () => {
  assert.equal(isZeroTime("0001-01-01T00:00:00Z"), true);
  assert.equal(isZeroTime(""), true);
  assert.equal(isZeroTime(undefined), true);
  assert.equal(isZeroTime("2026-11-25T20:24:44.123456789Z"), false);
});

Deno.test("normalizeTimestamp writes every timestamp as UTC with 9 fractional digits", () => {
  const engine = "2026-12-01T20:33:30.123456789Z";
  assert.equal(normalizeTimestamp(engine), engine);
  for (
    const [raw, normal] of [
      ["2026-12-01T20:33:30Z", "2026-12-01T20:33:30.000000000Z"],
      ["2026-12-01T20:33:30Z", "2026-12-01T20:33:30.000000000Z"],
      ["2026-12-01T20:33:30.5Z", "2026-12-01T20:33:30.500000000Z"],
      ["2026-12-01T21:33:30.000000001+01:00", "2026-12-01T20:33:30.000000001Z"],
      ["1969-12-31T23:59:59.25Z", "1969-12-31T23:59:59.250000000Z"],
    ]
  ) {
    assert.equal(normalizeTimestamp(raw), normal, raw);
    assert.equal(timestampToNanos(normalizeTimestamp(raw)), timestampToNanos(raw));
  }
  assert.throws(() => normalizeTimestamp("2026-12-01 20:33:30Z"), SyntaxError);
});
