import assert from "node:assert/strict";
import { ChildSignal } from "../../lib/async/child_signal.ts";

Deno.test("ChildSignal aborts with its parent's reason", () => {
  const parent = new AbortController();
  const child = new ChildSignal([parent.signal]);
  parent.abort(new Error("root"));
  assert.equal(child.signal.aborted, true);
  assert.equal((child.signal.reason as Error).message, "root");
});

Deno.test("ChildSignal starts aborted when a parent has aborted already", () => {
  const child = new ChildSignal([new AbortController().signal, AbortSignal.abort("gone")]);
  assert.equal(child.signal.aborted, true);
  assert.equal(child.signal.reason, "gone");
});

Deno.test("ChildSignal once disposed no longer follows its parent", () => {
  const parent = new AbortController();
  const child = new ChildSignal([parent.signal]);
  child.dispose();
  parent.abort();
  assert.equal(child.signal.aborted, false);
});

Deno.test("ChildSignal.abortAfter aborts with the reason given, and dispose clears it", async () => {
  const parent = new AbortController();
  const timed = new ChildSignal([parent.signal]);
  timed.abortAfter(1, () => new DOMException("late", "TimeoutError"));
  await new Promise<void>((resolve) => timed.signal.addEventListener("abort", () => resolve()));
  assert.equal((timed.signal.reason as DOMException).name, "TimeoutError");
  const cleared = new ChildSignal([parent.signal]);
  cleared.abortAfter(60_000, () => "never");
  cleared.dispose(); // the sanitizer fails the test if the timer were left
  assert.equal(cleared.signal.aborted, false);
});

Deno.test("ChildSignal.abort aborts only the child", () => {
  const parent = new AbortController();
  const child = new ChildSignal([parent.signal]);
  child.abort("done");
  assert.equal(child.signal.reason, "done");
  assert.equal(parent.signal.aborted, false);
});
