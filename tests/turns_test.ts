import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { MessageQueue, type OutMessage, TURN_MESSAGES } from "../lib/queue.ts";
import { Lane, Turns } from "../lib/turns.ts";
import { awaitTicking } from "../lib/async/ticking.ts";

/** True when `p` has settled after pending microtasks ran. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(() => done = true, () => done = true);
  for (let i = 0; i < 4; i++) await Promise.resolve();
  return done;
}

Deno.test("Turns is free for all until a lane waits", () => {
  const turns = new Turns(4, () => true);
  assert.equal(turns.contended, false);
  assert.equal(turns.take(new Lane()), false, "no turn is held: take() is only for contention");
});

Deno.test("Turns grants the oldest waiter when room frees, one holder at a time", async () => {
  let room = 0;
  const turns = new Turns(2, () => room > 0);
  const ctl = new AbortController();
  const [a, b] = [new Lane(), new Lane()];
  const waitA = turns.wait(a, 10, ctl.signal);
  const waitB = turns.wait(b, 10, ctl.signal);
  assert.equal(turns.contended, true);
  assert.equal(await settled(waitA), false, "no room: nobody is granted");
  room = 5;
  turns.grant();
  assert.equal(await settled(waitA), true);
  assert.equal(await settled(waitB), false, "one holder at a time");
  assert.equal(turns.take(b), false, "b does not hold the turn");
  assert.equal(turns.take(a), true);
  assert.equal(turns.take(a), true);
  assert.equal(turns.take(a), false, "the quantum is used up");
  // a has more: it goes to the back, and b gets the turn.
  const waitA2 = turns.wait(a, 10, ctl.signal);
  assert.equal(await settled(waitB), true);
  assert.equal(await settled(waitA2), false);
  turns.end(b);
  assert.equal(await settled(waitA2), true, "b's batch is done: a's turn again");
  turns.end(a);
  assert.equal(turns.contended, false);
});

Deno.test("Turns keeps a burst lane from holding a quiet lane back more than one turn", async () => {
  let room = 1_000;
  const turns = new Turns(8, () => room > 0);
  const ctl = new AbortController();
  const noisy = new Lane();
  const quiet = new Lane();
  let added = 0;
  // The noisy lane fills the room; the quiet one arrives meanwhile and waits.
  room = 0;
  const noisyWait = turns.wait(noisy, 1, ctl.signal);
  const quietWait = turns.wait(quiet, 1, ctl.signal);
  room = 100;
  turns.grant();
  await noisyWait;
  while (turns.take(noisy)) added++;
  assert.equal(added, 8, "one quantum");
  const again = turns.wait(noisy, 1, ctl.signal);
  assert.equal(await settled(quietWait), true, "the quiet lane comes next");
  assert.equal(turns.take(quiet), true);
  turns.end(quiet);
  await again;
  turns.end(noisy);
});

Deno.test("Turns drops an aborted wait from the line and passes the turn on", async () => {
  let room = 0;
  const turns = new Turns(1, () => room > 0);
  const a = new Lane();
  const b = new Lane();
  const ctlA = new AbortController();
  const ctlB = new AbortController();
  const waitA = turns.wait(a, 1, ctlA.signal);
  const waitB = turns.wait(b, 1, ctlB.signal);
  ctlA.abort(new Error("gone"));
  await assert.rejects(waitA, /gone/);
  assert.equal(turns.waiting, 1);
  room = 1;
  turns.grant();
  assert.equal(await settled(waitB), true);
  turns.end(b);
  assert.equal(turns.contended, false);
});

Deno.test("Turns waits for room for the front lane's next message, however large", async () => {
  let free = 10;
  const turns = new Turns(4, (need) => need <= free);
  const ctl = new AbortController();
  const big = new Lane();
  const small = new Lane();
  free = 0;
  const waitBig = turns.wait(big, 100, ctl.signal);
  const waitSmall = turns.wait(small, 1, ctl.signal);
  free = 50;
  turns.grant();
  assert.equal(await settled(waitBig), false, "100 bytes do not fit in 50");
  assert.equal(await settled(waitSmall), false, "no overtaking: the big one would starve");
  free = 100;
  turns.grant();
  assert.equal(await settled(waitBig), true);
  turns.end(big);
  assert.equal(await settled(waitSmall), true);
  turns.end(small);
});

function line(container: string, seq: number): OutMessage {
  return {
    routingKey: `${container}.stdout`,
    body: Buffer.from(`{"n":${seq}}`),
    containerId: container.repeat(64),
    timestamp: "2024-01-01T00:00:00.000000000Z",
    seq,
    messageId: `${container}${seq}`,
  };
}

Deno.test("a quiet lane beside a burst at a full queue gets room in one turn and out in one round", async () => {
  const q = new MessageQueue(512);
  const ctl = new AbortController();
  const noisy = new Lane();
  const quiet = new Lane();
  const settle = async () => {
    for (let i = 0; i < 8; i++) await Promise.resolve();
  };
  let noisySeq = 0;
  // The burst: adds while it may and waits for its turn when it may not, never done.
  const burst = (async () => {
    for (;;) {
      const m = line("n", ++noisySeq);
      while (!q.add(m, noisy)) await q.waitForTurn(noisy, m.body.length, ctl.signal);
    }
  })().catch((err) => assert.equal(err, ctl.signal.reason));
  const WINDOW = 64;
  const CONFIRMS_PER_STEP = 16;
  const inFlight: number[] = [];
  let confirms = 0;
  let quietSeq = 0;
  /** Confirms a quiet line waited for room, and publishes it waited once in the queue. */
  const roomWaits: number[] = [];
  const publishWaits: number[] = [];
  let quietAddedAt = -1;
  let publishes = 0;
  let heldMax = 0;
  let quietTask: Promise<void> | undefined;
  for (let step = 0; step < 2_000; step++) {
    if (step % 8 === 0 && quietTask === undefined) {
      const m = line("q", ++quietSeq);
      const from = confirms;
      quietTask = (async () => {
        while (!q.add(m, quiet)) await q.waitForTurn(quiet, m.body.length, ctl.signal);
        q.endTurn(quiet);
        roomWaits.push(confirms - from);
        quietAddedAt = publishes;
      })().finally(() => quietTask = undefined);
      await settle();
    }
    while (inFlight.length < WINDOW) {
      const m = q.next();
      if (m === undefined) break;
      if (m.routingKey === "q.stdout") publishWaits.push(publishes - quietAddedAt);
      inFlight.push(q.markPublished());
      publishes++;
    }
    // The broker confirms in publishing order, some each step.
    for (const pos of inFlight.splice(0, CONFIRMS_PER_STEP)) {
      q.confirm(pos);
      confirms++;
      heldMax = Math.max(heldMax, q.confirmedHeld);
    }
    await settle();
  }
  ctl.abort(new Error("done"));
  await burst;
  await quietTask?.catch(() => {});
  assert.ok(roomWaits.length > 100, `only ${roomWaits.length} quiet lines added`);
  assert.ok(
    Math.max(...roomWaits) <= TURN_MESSAGES + WINDOW,
    `room waits (confirms): max ${Math.max(...roomWaits)}`,
  );
  assert.ok(Math.max(...publishWaits) <= 1, `publish waits: ${Math.max(...publishWaits)}`);
  assert.ok(heldMax <= quietSeq, "only quiet lines are confirmed ahead of the head");
});

Deno.test("awaitTicking calls onTick while the wait lasts and settles as it does", async () => {
  let ticks = 0;
  const gate = Promise.withResolvers<string>();
  const waiting = awaitTicking(gate.promise, 5, () => {
    ticks++;
    if (ticks === 3) gate.resolve("done");
  });
  assert.equal(await waiting, "done");
  assert.equal(ticks, 3);
  await assert.rejects(awaitTicking(Promise.reject(new Error("no")), 5, () => {}), /no/);
});

Deno.test("awaitTicking: an onTick that throws stops the ticking; its error comes once the wait ends", async () => {
  let ticks = 0;
  const gate = Promise.withResolvers<string>();
  const waiting = awaitTicking(gate.promise, 2, () => {
    ticks++;
    throw new Error("tick failed");
  });
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.equal(ticks, 1);
  gate.resolve("done");
  await assert.rejects(waiting, /tick failed/);
});
