/**
 * Body slabs: a slab is written over only once every body cut from it was released, a body held
 * keeps its bytes however many bodies come after it, and the queue releases a body exactly when
 * it lets go of the message (confirmed, or refused in drop mode).
 * @module
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  BODY_SLAB_BYTES,
  bodyBuffer,
  liveBodies,
  releaseBody,
  SLAB_BODY_MAX,
} from "../lib/body_slabs.ts";
import { MessageQueue, type OutMessage } from "../lib/queue.ts";

function filled(size: number, seed: number): Buffer {
  const b = bodyBuffer(size);
  for (let i = 0; i < size; i++) b[i] = (seed + i * 7) & 0xff;
  return b;
}

function intact(b: Uint8Array, seed: number): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== ((seed + i * 7) & 0xff)) return false;
  return true;
}

Deno.test("body slabs: a held body keeps its bytes while released ones' room is used again", () => {
  const before = liveBodies();
  const held: { body: Buffer; seed: number }[] = [];
  let seed = 0;
  // Several slabs' worth; every 97th body is held, the rest released at once or a little later.
  let recent: Buffer[] = [];
  for (let i = 0; i < 5000; i++) {
    const body = filled(50 + (i % 300), ++seed);
    if (i % 97 === 0) held.push({ body, seed });
    else recent.push(body);
    if (recent.length > 40) {
      for (const b of recent) releaseBody(b);
      recent = [];
    }
  }
  for (const h of held) assert.ok(intact(h.body, h.seed), "a held body was written over");
  for (const b of recent) releaseBody(b);
  for (const h of held) releaseBody(h.body);
  assert.equal(liveBodies(), before);
});

Deno.test("body slabs: once all its bodies are released, the current slab is used from its start", () => {
  const a = bodyBuffer(100);
  const b = bodyBuffer(100);
  releaseBody(a);
  const c = bodyBuffer(100);
  assert.equal(c.buffer, a.buffer);
  assert.notEqual(c.byteOffset, a.byteOffset, "b still holds the slab: c comes after it");
  releaseBody(b);
  releaseBody(c);
  const d = bodyBuffer(100);
  assert.equal(d.buffer, a.buffer);
  assert.equal(d.byteOffset, 0);
  releaseBody(d);
});

Deno.test("body slabs: large and foreign bodies are not counted", () => {
  const before = liveBodies();
  const big = bodyBuffer(SLAB_BODY_MAX + 1);
  assert.equal(big.length, SLAB_BODY_MAX + 1);
  assert.notEqual(big.buffer.byteLength, BODY_SLAB_BYTES);
  assert.equal(liveBodies(), before);
  releaseBody(big);
  releaseBody(Buffer.from("foreign"));
  assert.equal(liveBodies(), before);
});

function message(seq: number): OutMessage {
  return {
    routingKey: "p.s.stdout",
    body: bodyBuffer(200),
    containerId: "c".repeat(64),
    timestamp: "2026-01-01T00:00:00.000000000Z",
    seq,
    messageId: `m${seq}`,
  };
}

Deno.test("body slabs: the queue releases a body when confirmed or refused, not before", () => {
  const before = liveBodies();
  const q = new MessageQueue(4);
  for (let i = 1; i <= 4; i++) assert.equal(q.offer(message(i)), true);
  assert.equal(liveBodies(), before + 4);
  assert.equal(q.offer(message(5)), false, "full: refused");
  assert.equal(liveBodies(), before + 4, "the refused body is released");
  const positions: number[] = [];
  for (let m = q.next(); m !== undefined; m = q.next()) positions.push(q.markPublished());
  assert.equal(liveBodies(), before + 4, "published, unconfirmed: still held");
  q.nack(positions[0]);
  q.confirm(positions[1]);
  assert.equal(liveBodies(), before + 4, "confirmed behind an unconfirmed one: still held");
  q.confirm(q.markPublished());
  assert.equal(liveBodies(), before + 2);
  q.confirm(positions[2]);
  q.confirm(positions[3]);
  assert.equal(liveBodies(), before);
});
