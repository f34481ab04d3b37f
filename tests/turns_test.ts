import assert from "node:assert/strict";
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
