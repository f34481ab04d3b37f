import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { messageIdOf } from "../../lib/amqp/publisher.ts";
import type { OutMessage } from "../../lib/queue.ts";

const msg = (timestamp: string, seq: number): OutMessage => ({
  routingKey: "p.s.stdout",
  body: Buffer.from("{}"),
  containerId: "0123456789abcdef".repeat(4),
  timestamp,
  seq,
});

Deno.test("messageIdOf is compact, deterministic and distinct per line", () => {
  const a = messageIdOf(msg("2026-11-25T20:24:44.123456789Z", 1));
  assert.equal(a, messageIdOf(msg("2026-11-25T20:24:44.123456789Z", 1)));
  assert.match(a, /^0123456789ab[0-9a-z]{13}1$/);
  assert.ok(a.length <= 32, a);
  assert.notEqual(a, messageIdOf(msg("2026-11-25T20:24:44.123456789Z", 2)));
  assert.notEqual(a, messageIdOf(msg("2026-11-25T20:24:44.123456790Z", 1)));
  // The same instant written with an offset is the same line.
  assert.equal(a, messageIdOf(msg("2026-11-25T21:24:44.123456789+01:00", 1)));
});
