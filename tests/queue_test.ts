import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { MessageQueue, type OutMessage } from "../lib/queue.ts";
import { Lane } from "../lib/turns.ts";

function msg(seq: number, bodyBytes = 0, container = "c"): OutMessage {
  return {
    routingKey: `${container}.stdout`,
    body: bodyBytes > 0 ? Buffer.alloc(bodyBytes) : Buffer.from(`{"n":${seq}}`),
    containerId: container.repeat(64),
    timestamp: "2024-01-01T00:00:00.000000000Z",
    seq,
    messageId: `m${seq}`,
  };
}

/** Publishes everything `next()` hands out; returns the seqs and their positions. */
function publishAll(q: MessageQueue): { seqs: number[]; positions: number[] } {
  const seqs: number[] = [];
  const positions: number[] = [];
  for (let m = q.next(); m !== undefined; m = q.next()) {
    seqs.push(m.seq);
    positions.push(q.markPublished());
  }
  return { seqs, positions };
}

/** True when `p` has settled after pending microtasks ran. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(() => done = true, () => done = true);
  await Promise.resolve();
  await Promise.resolve();
  return done;
}

Deno.test("MessageQueue capacity counts published-unconfirmed messages", () => {
  const q = new MessageQueue(3);
  assert.equal(q.offer(msg(1)), true);
  assert.equal(q.offer(msg(2)), true);
  assert.equal(q.offer(msg(3)), true);
  const { positions } = publishAll(q);
  assert.equal(q.size, 3);
  assert.equal(q.offer(msg(4)), false, "in-flight messages still hold their slots");
  q.confirm(positions[0]);
  assert.equal(q.size, 2);
  assert.equal(q.offer(msg(4)), true);
  assert.equal(q.offer(msg(5)), false);
});

Deno.test("MessageQueue counts drops as full or blocked and takeDropped resets them", () => {
  const q = new MessageQueue(1);
  q.offer(msg(1));
  assert.equal(q.offer(msg(2)), false);
  assert.equal(q.offer(msg(3)), false);
  q.setBlocked(true);
  assert.equal(q.offer(msg(4)), false);
  const first = q.takeDropped();
  assert.deepEqual([first.full, first.blocked], [2, 1]);
  assert.deepEqual([...first.containers], [["c".repeat(64), {
    full: 2,
    blocked: 1,
    key: "c.stdout",
  }]]);
  const second = q.takeDropped();
  assert.deepEqual([second.full, second.blocked, second.containers.size], [0, 0, 0]);
});

Deno.test("MessageQueue head advances only past confirmed messages on out-of-order confirms", () => {
  const confirmed: number[] = [];
  const q = new MessageQueue(8, { onConfirmed: (m) => confirmed.push(m.seq) });
  for (let i = 1; i <= 5; i++) q.offer(msg(i));
  const { positions } = publishAll(q);
  q.confirm(positions[2]);
  q.confirm(positions[1]);
  assert.deepEqual(confirmed, []);
  assert.equal(q.size, 5);
  q.confirm(positions[0]);
  assert.deepEqual(confirmed, [1, 2, 3]);
  assert.equal(q.size, 2);
  q.confirm(positions[4]);
  q.confirm(positions[4]); // a repeated confirm changes nothing
  assert.deepEqual(confirmed, [1, 2, 3]);
  q.confirm(positions[3]);
  assert.deepEqual(confirmed, [1, 2, 3, 4, 5]);
  assert.equal(q.size, 0);
});

Deno.test("MessageQueue nack puts messages back for republish, oldest first", () => {
  const q = new MessageQueue(8);
  for (let i = 1; i <= 6; i++) q.offer(msg(i));
  const first = publishAll(q);
  assert.deepEqual(first.seqs, [1, 2, 3, 4, 5, 6]);
  q.nack(first.positions[4]);
  q.nack(first.positions[1]);
  q.confirm(first.positions[0]);
  q.offer(msg(7));
  const second = publishAll(q);
  assert.deepEqual(second.seqs, [2, 5, 7], "nacked ones first, in queue order, then new ones");
  assert.equal(q.size, 6);
});

Deno.test("MessageQueue rewind makes every unconfirmed message unpublished, in order", () => {
  const confirmed: number[] = [];
  const q = new MessageQueue(4, { onConfirmed: (m) => confirmed.push(m.seq) });
  // Wrap the ring once so positions and slots differ.
  for (let i = 1; i <= 3; i++) q.offer(msg(i));
  for (const pos of publishAll(q).positions) q.confirm(pos);
  for (let i = 4; i <= 7; i++) q.offer(msg(i));
  assert.deepEqual(publishAll(q).seqs, [4, 5, 6, 7]);
  q.rewind();
  const again = publishAll(q);
  assert.deepEqual(again.seqs, [4, 5, 6, 7]);
  q.confirm(again.positions[1]);
  q.rewind();
  const third = publishAll(q);
  assert.deepEqual(third.seqs, [4, 6, 7], "a confirmed message is not republished");
  q.confirm(third.positions[0]);
  assert.deepEqual(confirmed, [1, 2, 3, 4, 5]);
  for (const pos of third.positions) q.confirm(pos);
  assert.deepEqual(confirmed, [1, 2, 3, 4, 5, 6, 7]);
  assert.equal(q.size, 0);
});

Deno.test("MessageQueue stale positions from before a rewind are ignored once confirmed", () => {
  const q = new MessageQueue(4);
  q.offer(msg(1));
  const [pos] = publishAll(q).positions;
  q.confirm(pos);
  q.confirm(pos);
  q.nack(pos);
  assert.equal(q.next(), undefined);
  assert.equal(q.size, 0);
});

Deno.test("MessageQueue waitForRoom resolves when a confirm frees a slot", async () => {
  const q = new MessageQueue(1);
  const ctl = new AbortController();
  await q.waitForRoom(ctl.signal); // room now: resolves at once
  q.offer(msg(1));
  const room = q.waitForRoom(ctl.signal);
  assert.equal(await settled(room), false);
  const [pos] = publishAll(q).positions;
  assert.equal(await settled(room), false);
  q.confirm(pos);
  await room;
  assert.equal(q.offer(msg(2)), true);
});

Deno.test("MessageQueue waitForRoom rejects with the signal's reason on abort", async () => {
  const q = new MessageQueue(1);
  q.offer(msg(1));
  const ctl = new AbortController();
  const room = q.waitForRoom(ctl.signal);
  ctl.abort(new Error("stop"));
  await assert.rejects(room, /stop/);
  await assert.rejects(q.waitForRoom(ctl.signal), /stop/);
});

Deno.test("MessageQueue waitForMessage resolves on offer, nack and rewind", async () => {
  const q = new MessageQueue(4);
  const ctl = new AbortController();
  const first = q.waitForMessage(ctl.signal);
  assert.equal(await settled(first), false);
  q.offer(msg(1));
  await first;

  const [pos] = publishAll(q).positions;
  const afterNack = q.waitForMessage(ctl.signal);
  assert.equal(await settled(afterNack), false);
  q.nack(pos);
  await afterNack;

  publishAll(q);
  const afterRewind = q.waitForMessage(ctl.signal);
  assert.equal(await settled(afterRewind), false);
  q.rewind();
  await afterRewind;
  assert.equal(q.next()?.seq, 1);
});

Deno.test("MessageQueue waitForMessage rejects on abort and leaves no listener", async () => {
  const q = new MessageQueue(4);
  const ctl = new AbortController();
  const waiting = q.waitForMessage(ctl.signal);
  ctl.abort(new DOMException("bye", "AbortError"));
  await assert.rejects(waiting, (err: unknown) => err instanceof DOMException);
  q.offer(msg(1)); // wakes nobody, throws nothing
  assert.equal(q.size, 1);
});

Deno.test("MessageQueue waitForEmpty resolves when the last message is confirmed", async () => {
  const q = new MessageQueue(4);
  const ctl = new AbortController();
  await q.waitForEmpty(ctl.signal);
  q.offer(msg(1));
  q.offer(msg(2));
  const empty = q.waitForEmpty(ctl.signal);
  const { positions } = publishAll(q);
  q.confirm(positions[0]);
  assert.equal(await settled(empty), false);
  q.confirm(positions[1]);
  await empty;
});

Deno.test("MessageQueue keeps order through many wraps with random out-of-order confirms", () => {
  const seed = 12345;
  let state = seed;
  const random = () => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const confirmed: number[] = [];
  const q = new MessageQueue(16, { onConfirmed: (m) => confirmed.push(m.seq) });
  let offered = 0;
  const inFlight: number[] = [];
  for (let round = 0; round < 2000; round++) {
    while (q.offer(msg(offered + 1))) offered++;
    const { positions } = publishAll(q);
    inFlight.push(...positions);
    // Settle a random subset: mostly confirms, some nacks, occasionally a reconnect.
    for (let i = inFlight.length - 1; i >= 0; i--) {
      const r = random();
      if (r < 0.5) q.confirm(inFlight.splice(i, 1)[0]);
      else if (r < 0.55) q.nack(inFlight.splice(i, 1)[0]);
    }
    if (random() < 0.05) {
      q.rewind();
      inFlight.length = 0;
    }
  }
  assert.ok(confirmed.length > 1000, `seed ${seed}: only ${confirmed.length} confirmed`);
  confirmed.forEach((seq, i) => assert.equal(seq, i + 1, `seed ${seed}: order broke at ${i}`));
});

Deno.test("MessageQueue keeps totals that never go down: published, confirmed, dropped, bytes", () => {
  const q = new MessageQueue(2);
  const m = (seq: number) => ({
    routingKey: "a.b.stdout",
    body: Buffer.from("12345"),
    containerId: "c",
    timestamp: "2024-01-01T00:00:00.000000000Z",
    seq,
    messageId: `c${seq}`,
  });
  q.offer(m(1));
  q.offer(m(2));
  q.offer(m(3));
  assert.equal(q.bytes, 10);
  assert.equal(q.oldest()?.seq, 1);
  q.next();
  const a = q.markPublished();
  q.nack(a);
  q.next();
  q.confirm(q.markPublished());
  assert.equal(q.publishedTotal, 2, "a republished message counts again");
  assert.equal(q.confirmedTotal, 1);
  assert.equal(q.bytes, 5);
  assert.equal(q.oldest()?.seq, 2);
  const first = q.takeDropped();
  assert.deepEqual([first.full, first.blocked], [1, 0]);
  const second = q.takeDropped();
  assert.deepEqual([second.full, second.blocked], [0, 0]);
  assert.deepEqual(q.droppedTotal, { full: 1, blocked: 0 }, "taking does not reset the total");
});

Deno.test("MessageQueue holds at most budgetBytes of bodies; one larger body passes alone", () => {
  const q = new MessageQueue(100, { budgetBytes: 1000 });
  assert.equal(q.offer(msg(1, 600)), true);
  assert.equal(q.offer(msg(2, 400)), true, "exactly the budget");
  assert.equal(q.bytes, 1000);
  assert.equal(q.offer(msg(3, 1)), false, "over the budget");
  const { positions } = publishAll(q);
  q.confirm(positions[0]);
  assert.equal(q.bytes, 400);
  assert.equal(q.offer(msg(4, 5000)), false, "larger than the budget: only into an empty queue");
  q.confirm(positions[1]);
  assert.equal(q.bytes, 0);
  assert.equal(q.offer(msg(5, 5000)), true, "alone");
  assert.equal(q.offer(msg(6, 1)), false);
  q.confirm(publishAll(q).positions[0]);
  assert.equal(q.bytes, 0);
});

Deno.test("MessageQueue.add lets readers take turns once one waited for room", async () => {
  const q = new MessageQueue(4);
  const ctl = new AbortController();
  const noisy = new Lane();
  const quiet = new Lane();
  let n = 0;
  while (q.add(msg(++n, 0, "n"), noisy));
  assert.equal(q.size, 4, "free for all while nobody waits");
  const noisyTurn = q.waitForTurn(noisy, 10, ctl.signal);
  const quietTurn = q.waitForTurn(quiet, 10, ctl.signal);
  assert.equal(q.waitingReaders, 2);
  assert.equal(await settled(quietTurn), false);
  // One slot frees: the oldest waiter gets it, the other waits on.
  const { positions } = publishAll(q);
  q.confirm(positions[0]);
  await noisyTurn;
  assert.equal(q.add(msg(1, 0, "q"), quiet), false, "not the quiet reader's turn");
  assert.equal(q.add(msg(++n, 0, "n"), noisy), true);
  assert.equal(q.add(msg(++n, 0, "n"), noisy), false, "full again");
  const noisyAgain = q.waitForTurn(noisy, 10, ctl.signal);
  q.confirm(positions[1]);
  await quietTurn;
  assert.equal(await settled(noisyAgain), false, "the quiet reader comes first");
  assert.equal(q.add(msg(1, 0, "q"), quiet), true);
  q.endTurn(quiet);
  q.confirm(positions[2]);
  await noisyAgain;
  assert.equal(q.add(msg(++n, 0, "n"), noisy), true);
  q.endTurn(noisy);
  assert.equal(q.waitingReaders, 0);
});

Deno.test("MessageQueue.next takes one message per container in turn, each in its order", () => {
  const q = new MessageQueue(16);
  for (let i = 1; i <= 5; i++) q.offer(msg(i, 0, "a"));
  q.offer(msg(1, 0, "b"));
  q.offer(msg(2, 0, "b"));
  q.offer(msg(1, 0, "c"));
  const order: string[] = [];
  for (let m = q.next(); m !== undefined; m = q.next()) {
    assert.equal(q.next(), m, "next() without markPublished() hands out the same message");
    order.push(`${m.routingKey[0]}${m.seq}`);
    q.markPublished();
  }
  assert.deepEqual(order, ["a1", "b1", "c1", "a2", "b2", "a3", "a4", "a5"]);
});

Deno.test("MessageQueue publishes a quiet container's message within one round of a burst", () => {
  const q = new MessageQueue(8192);
  let n = 0;
  while (q.size < 8000) q.offer(msg(++n, 0, "n"));
  q.next();
  q.markPublished();
  q.offer(msg(1, 0, "q"));
  assert.equal(q.next()?.routingKey, "n.stdout", "the burst's turn comes first");
  q.markPublished();
  assert.equal(q.next()?.routingKey, "q.stdout", "then the quiet container's, not 7,999 later");
});

Deno.test("MessageQueue nack puts a message first in its container's line, not before others", () => {
  const q = new MessageQueue(16);
  for (let i = 1; i <= 3; i++) q.offer(msg(i, 0, "a"));
  for (let i = 1; i <= 3; i++) q.offer(msg(i, 0, "b"));
  const label = (m: OutMessage) => `${m.routingKey[0]}${m.seq}`;
  const pos = new Map<string, number>();
  for (let i = 0; i < 4; i++) {
    const m = q.next()!;
    pos.set(label(m), q.markPublished());
  }
  assert.deepEqual([...pos.keys()], ["a1", "b1", "a2", "b2"]);
  q.nack(pos.get("a2")!);
  q.nack(pos.get("a1")!);
  const order: string[] = [];
  for (let m = q.next(); m !== undefined; m = q.next()) {
    order.push(label(m));
    q.markPublished();
  }
  assert.deepEqual(order, ["a1", "b3", "a2", "a3"]);
});

Deno.test("MessageQueue releases a container's early confirm only when the head passes it", () => {
  const confirmed: string[] = [];
  const q = new MessageQueue(8, {
    onConfirmed: (m) => confirmed.push(`${m.routingKey[0]}${m.seq}`),
  });
  for (let i = 1; i <= 4; i++) q.offer(msg(i, 0, "n"));
  q.offer(msg(1, 0, "q"));
  const pos: number[] = [];
  for (let m = q.next(); m !== undefined; m = q.next()) pos.push(q.markPublished());
  // Published n1 q1 n2 n3 n4: the quiet message is confirmed before the older burst.
  q.confirm(pos[1]);
  assert.deepEqual(confirmed, [], "ring order: q1 waits for n1..n4");
  assert.equal(q.confirmedHeld, 1);
  assert.equal(q.size, 5);
  q.confirm(pos[0]);
  q.confirm(pos[2]);
  q.confirm(pos[3]);
  assert.deepEqual(confirmed, ["n1", "n2", "n3"]);
  q.confirm(pos[4]);
  assert.deepEqual(confirmed, ["n1", "n2", "n3", "n4", "q1"]);
  assert.equal(q.confirmedHeld, 0);
  assert.equal(q.size, 0);
});

Deno.test("MessageQueue rewind restarts every container's line at its oldest unconfirmed", () => {
  const q = new MessageQueue(8);
  for (let i = 1; i <= 3; i++) q.offer(msg(i, 0, "a"));
  for (let i = 1; i <= 2; i++) q.offer(msg(i, 0, "b"));
  const first = publishAll(q);
  // Ring a1 a2 a3 b1 b2, published a1 b1 a2 b2 a3; a1 and b2 confirmed, the rest lost.
  q.confirm(first.positions[0]);
  q.confirm(first.positions[3]);
  q.rewind();
  const again: string[] = [];
  for (let m = q.next(); m !== undefined; m = q.next()) {
    again.push(`${m.routingKey[0]}${m.seq}`);
    q.markPublished();
  }
  assert.deepEqual(again, ["a2", "b1", "a3"], "the oldest held (a2) first, then in turns");
});

Deno.test("MessageQueue keeps each container's order and checkpoints under random turns", () => {
  const seed = 4242;
  let state = seed;
  const random = () => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const names = ["a", "b", "c", "d"];
  const confirmedSeq = new Map<string, number>(names.map((c) => [c, 0]));
  const offeredSeq = new Map<string, number>(names.map((c) => [c, 0]));
  /** Per container: seqs not yet published (in flight ones are not here). */
  const unpublished = new Map<string, number[]>(names.map((c) => [c, []]));
  let confirmedCount = 0;
  const q = new MessageQueue(32, {
    onConfirmed: (m) => {
      const c = m.routingKey[0];
      assert.equal(m.seq, confirmedSeq.get(c)! + 1, `seed ${seed}: ${c} confirmed out of order`);
      confirmedSeq.set(c, m.seq);
      confirmedCount++;
    },
  });
  const inFlight: { pos: number; c: string; seq: number }[] = [];
  for (let round = 0; round < 3000; round++) {
    // Container "a" bursts into the room the others leave; they print now and then.
    for (const c of [...names].reverse()) {
      const tries = c === "a" ? 40 : random() < 0.3 ? 1 : 0;
      for (let i = 0; i < tries; i++) {
        const seq = offeredSeq.get(c)! + 1;
        if (!q.offer(msg(seq, 0, c))) break;
        offeredSeq.set(c, seq);
        unpublished.get(c)!.push(seq);
      }
    }
    const ready = names.filter((c) => unpublished.get(c)!.length > 0).length;
    const served = new Set<string>();
    for (let i = 0; i < ready; i++) {
      const m = q.next()!;
      const c = m.routingKey[0];
      const line = unpublished.get(c)!;
      assert.equal(m.seq, Math.min(...line), `seed ${seed}: ${c} not its oldest unpublished`);
      assert.ok(!served.has(c), `seed ${seed}: ${c} served twice in one round`);
      served.add(c);
      line.splice(line.indexOf(m.seq), 1);
      inFlight.push({ pos: q.markPublished(), c, seq: m.seq });
    }
    for (let i = inFlight.length - 1; i >= 0; i--) {
      const r = random();
      if (r < 0.4) q.confirm(inFlight.splice(i, 1)[0].pos);
      else if (r < 0.45) {
        const f = inFlight.splice(i, 1)[0];
        q.nack(f.pos);
        unpublished.get(f.c)!.push(f.seq);
      }
    }
    if (random() < 0.02) {
      q.rewind();
      for (const f of inFlight) unpublished.get(f.c)!.push(f.seq);
      inFlight.length = 0;
    }
  }
  assert.ok(confirmedCount > 2000, `seed ${seed}: only ${confirmedCount} confirmed`);
  for (const c of names.slice(1)) {
    assert.ok(confirmedSeq.get(c)! > 100, `seed ${seed}: quiet ${c} starved`);
  }
});
