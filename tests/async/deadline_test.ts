import assert from "node:assert/strict";
import { deadline } from "../../lib/async/deadline.ts";
import { delay } from "../../lib/async/delay.ts";

const late = () => new DOMException("too late", "TimeoutError");

Deno.test("deadline passes a result or a failure through and leaves no timer", async () => {
  // The test's sanitizers fail it if a timer outlives the call.
  assert.equal(await deadline(Promise.resolve(42), 60_000, late), 42);
  await assert.rejects(deadline(Promise.reject(new Error("boom")), 60_000, late), {
    message: "boom",
  });
});

Deno.test("deadline rejects with the reason once the time ran out, and the work's late failure is handled", async () => {
  const work = Promise.withResolvers<number>();
  await assert.rejects(deadline(work.promise, 5, late), { name: "TimeoutError" });
  work.reject(new Error("closed meanwhile"));
  await delay(0); // a turn of the event loop: an unhandled rejection would fail the test here
});

Deno.test("deadline asks for the reason when it fires, not before", async () => {
  let step = "first";
  const pending = deadline(new Promise(() => {}), 5, () => new Error(`stuck at ${step}`));
  step = "second";
  await assert.rejects(pending, { message: "stuck at second" });
});
