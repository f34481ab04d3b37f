import assert from "node:assert/strict";
import { advance, type Position } from "../lib/positions.ts";
import { backoff } from "../lib/async/backoff.ts";

Deno.test("advance counts messages at one timestamp and ignores older ones", () => {
  const pos: Position = { ts: "", count: 0 };
  assert.equal(advance(pos, "2026-01-01T00:00:00.000000001Z"), 1);
  assert.equal(advance(pos, "2026-01-01T00:00:00.000000001Z"), 2);
  assert.equal(advance(pos, "2026-01-01T00:00:00.000000000Z"), 0);
  assert.deepEqual(pos, { ts: "2026-01-01T00:00:00.000000001Z", count: 2 });
  assert.equal(advance(pos, "2026-01-01T00:00:00.000000003Z"), 1);
});

Deno.test("backoff grows, caps and jitters", () => {
  const p = { initialMs: 100, maxMs: 1000 };
  assert.equal(backoff(p, 0, () => 0), 50);
  assert.equal(backoff(p, 0, () => 0.999999), 100);
  assert.equal(backoff(p, 3, () => 0.999999), 800);
  assert.equal(backoff(p, 50, () => 0.999999), 1000);
});

Deno.test("advance lets the first line after an instant take it, whole-second timestamps too", () => {
  // Attached at "now" (an instant, no line yet); Podman prints a later line with its second.
  const pos: Position = { ts: "2026-12-01T20:33:30.512000000Z", count: 0 };
  assert.equal(advance(pos, "2026-12-01T20:33:30.000000000Z"), 1);
  assert.equal(advance(pos, "2026-12-01T20:33:30.000000000Z"), 2);
  assert.deepEqual(pos, { ts: "2026-12-01T20:33:30.000000000Z", count: 2 });
});
