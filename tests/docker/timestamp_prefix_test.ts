import assert from "node:assert/strict";
import { decodeTimestamp, timestampPrefixEnd } from "../../lib/docker/timestamp_prefix.ts";
import { bytes } from "./_split.ts";

Deno.test("timestampPrefixEnd finds the space after a 20-40 byte timestamp prefix", () => {
  const find = (s: string) => timestampPrefixEnd(bytes(s), 0, s.length);
  assert.equal(find("2026-11-25T20:24:44.123456789Z hello"), 30);
  assert.equal(find("2026-11-25T20:24:44.123456789+01:00 hello"), 35);
  assert.equal(find("2026-11-25T20:24:44Z x"), 20);
  assert.equal(find("2026-11-25T20:24:4Z x"), -1); // 19 bytes
  assert.equal(find(`2026-${"x".repeat(35)} x`), 40);
  assert.equal(find(`2026-${"x".repeat(36)} x`), -1); // 41 bytes
  assert.equal(find("hello world, this is not a timestamp"), -1);
  assert.equal(find("2026-11-25T20:24:44.123456789Z"), -1); // no space
  assert.equal(find("2026 11-25T20:24:44.123456789Z x"), -1);
  assert.equal(find("x2026-11-25T20:24:44.123456789Z x"), -1);
  const b = bytes("..2026-11-25T20:24:44.123456789Z x");
  assert.equal(timestampPrefixEnd(b, 2, b.length), 32);
  assert.equal(timestampPrefixEnd(b, 2, 31), -1);
});

Deno.test("decodeTimestamp decodes the prefix bytes", () => {
  const s = "..2026-11-25T20:24:44.123456789Z x";
  assert.equal(decodeTimestamp(bytes(s), 2, 32), "2026-11-25T20:24:44.123456789Z");
  assert.equal(decodeTimestamp(bytes(s), 2, 22), "2026-11-25T20:24:44.");
});
