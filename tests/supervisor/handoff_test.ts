import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { Handoff } from "../../lib/supervisor/handoff.ts";
import { LagWatch } from "../../lib/lag.ts";
import type { Fields, Logger } from "../../lib/log.ts";
import { MessageQueue, type OutMessage } from "../../lib/queue.ts";

function recorder(): { log: Logger; events: string[] } {
  const events: string[] = [];
  const at = (event: string, _fields?: Fields) => events.push(event);
  return { events, log: { debug: at, info: at, warn: at, error: at } };
}

function msg(container: string, seq: number, timestamp = new Date().toISOString()): OutMessage {
  return {
    routingKey: `${container}.stdout`,
    body: Buffer.from(`${container} ${seq}`),
    containerId: container.repeat(64),
    timestamp,
    seq,
    messageId: `${container}-${seq}`,
  };
}

/** Publishes and confirms everything held, returning the bodies in queue order. */
function drain(q: MessageQueue): string[] {
  const out: string[] = [];
  for (let m = q.next(); m !== undefined; m = q.next()) {
    out.push(m.body.toString());
    q.confirm(q.markPublished());
  }
  return out;
}

Deno.test("Handoff in drop mode never waits and lets the queue count what does not fit", async () => {
  const q = new MessageQueue(2);
  const { log } = recorder();
  const h = new Handoff(q, "drop", new LagWatch("a".repeat(64), "a", 60_000, log));
  await h.deliver([msg("a", 1), msg("a", 2), msg("a", 3)], new AbortController().signal);
  assert.equal(q.size, 2);
  assert.equal(h.paused, false);
  assert.equal(q.takeDropped().full, 1);
});

Deno.test("Handoff in pause mode waits for room, loses nothing and keeps order", async () => {
  const q = new MessageQueue(2);
  const { log } = recorder();
  const h = new Handoff(q, "pause", new LagWatch("a".repeat(64), "a", 60_000, log));
  const waits: boolean[] = [];
  h.onWait = (w) => waits.push(w);
  const batch = [1, 2, 3, 4, 5].map((i) => msg("a", i));
  const delivering = h.deliver(batch, new AbortController().signal);
  const got: string[] = [];
  while (got.length < 5) {
    got.push(...drain(q));
    await Promise.resolve();
    await new Promise((r) => setTimeout(r, 0));
  }
  await delivering;
  assert.deepEqual(got, ["a 1", "a 2", "a 3", "a 4", "a 5"]);
  assert.equal(h.paused, true);
  assert.deepEqual(waits.slice(0, 2), [true, false]);
  assert.equal(q.takeDropped().full, 0);
});

Deno.test("Handoff warns of a container's lag while it waits for room", async () => {
  const q = new MessageQueue(1);
  const { log, events } = recorder();
  const h = new Handoff(q, "pause", new LagWatch("a".repeat(64), "a", 20, log));
  const old = new Date(Date.now() - 1_000).toISOString();
  const ctl = new AbortController();
  const delivering = h.deliver([msg("a", 1, old), msg("a", 2, old)], ctl.signal);
  while (!events.includes("lagging")) await new Promise((r) => setTimeout(r, 5));
  ctl.abort(new Error("stop"));
  await assert.rejects(delivering, /stop/);
  assert.equal(q.size, 1);
});

Deno.test("Handoff gives a quiet container its turn while a burst waits", async () => {
  const q = new MessageQueue(64);
  const { log } = recorder();
  const lag = (c: string) => new LagWatch(c.repeat(64), c, 60_000, log);
  const noisy = new Handoff(q, "pause", lag("n"));
  const quiet = new Handoff(q, "pause", lag("q"));
  const signal = new AbortController().signal;
  const burst = noisy.deliver(Array.from({ length: 2_000 }, (_, i) => msg("n", i + 1)), signal);
  const line = quiet.deliver([msg("q", 1)], signal);
  const order: string[] = [];
  let quietDone = false;
  line.then(() => quietDone = true);
  while (!quietDone) {
    order.push(...drain(q));
    await new Promise((r) => setTimeout(r, 0));
  }
  order.push(...drain(q));
  const at = order.indexOf("q 1");
  assert.ok(at >= 0 && at <= 64 + 256, `the quiet line came after ${at} burst lines`);
  while (order.length < 2_001) {
    order.push(...drain(q));
    await new Promise((r) => setTimeout(r, 0));
  }
  await burst;
});
