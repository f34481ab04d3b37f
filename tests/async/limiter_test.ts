import assert from "node:assert/strict";
import { Limiter } from "../../lib/async/limiter.ts";

Deno.test("Limiter runs at most its number of tasks at once, the others in order of arrival", async () => {
  const limiter = new Limiter(2, 60_000);
  const started: number[] = [];
  const gates = Array.from({ length: 5 }, () => Promise.withResolvers<void>());
  let most = 0;
  const runs = gates.map((gate, i) =>
    limiter.run(async () => {
      started.push(i);
      most = Math.max(most, limiter.running);
      await gate.promise;
      return i * 10;
    }, new AbortController().signal)
  );
  await Promise.resolve();
  assert.deepEqual(started, [0, 1]);
  // Finishing any task lets the oldest waiter start.
  gates[1].resolve();
  await runs[1];
  assert.deepEqual(started, [0, 1, 2]);
  for (const gate of gates) gate.resolve();
  assert.deepEqual(await Promise.all(runs), [0, 10, 20, 30, 40]);
  assert.deepEqual(started, [0, 1, 2, 3, 4]);
  assert.equal(most, 2);
  assert.equal(limiter.running, 0);
});

Deno.test("Limiter: a task that fails frees its place; a waiter whose signal aborts never starts", async () => {
  const limiter = new Limiter(1, 60_000);
  const gate = Promise.withResolvers<void>();
  const first = limiter.run(async () => {
    await gate.promise;
    throw new Error("engine said no");
  }, new AbortController().signal);
  const abort = new AbortController();
  let abortedRan = false;
  const aborted = limiter.run(() => {
    abortedRan = true;
    return Promise.resolve();
  }, abort.signal);
  const third = limiter.run(() => Promise.resolve("third"), new AbortController().signal);
  abort.abort(new Error("stopping"));
  await assert.rejects(aborted, /stopping/);
  gate.resolve();
  await assert.rejects(first, /engine said no/);
  assert.equal(await third, "third");
  assert.equal(abortedRan, false);
  assert.equal(limiter.running, 0);
  await assert.rejects(
    limiter.run(() => Promise.resolve(), AbortSignal.abort(new Error("already"))),
    /already/,
  );
  assert.equal(limiter.running, 0);
});

Deno.test("Limiter: a waiter whose wait ran out goes ahead without a place, and frees none", async () => {
  const limiter = new Limiter(1, 50);
  const held = Promise.withResolvers<void>();
  const holder = limiter.run(() => held.promise, new AbortController().signal);
  // The place stays taken: the next task starts once its wait ran out, beside the holder.
  const late = await limiter.run(() => Promise.resolve("went ahead"), new AbortController().signal);
  assert.equal(late, "went ahead");
  assert.equal(limiter.running, 1);
  held.resolve();
  await holder;
  assert.equal(limiter.running, 0);
  // Nothing counted twice: one place again, and it is free.
  const gate = Promise.withResolvers<void>();
  const again = limiter.run(() => gate.promise, new AbortController().signal);
  assert.equal(limiter.running, 1);
  gate.resolve();
  await again;
  assert.equal(limiter.running, 0);
});
