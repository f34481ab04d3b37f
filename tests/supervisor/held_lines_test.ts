import assert from "node:assert/strict";
import type { LogEntry } from "../../lib/docker/log_stream.ts";
import { HeldLines } from "../../lib/supervisor/held_lines.ts";
import { withDeadline } from "../helpers/deadline.ts";

const TS = "2026-12-01T20:33:30.000000000Z";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

const line = (text: string, joined = false): LogEntry => ({
  stream: "stdout",
  ts: TS,
  message: encoder.encode(text),
  joined,
});
const texts = (entries: LogEntry[]) => entries.map((e) => decoder.decode(e.message));

/** A running check answered by the test: each call waits for `answer()`. */
function scriptedCheck() {
  const calls: PromiseWithResolvers<boolean | undefined>[] = [];
  let asked = Promise.withResolvers<void>();
  return {
    check: () => {
      const call = Promise.withResolvers<boolean | undefined>();
      calls.push(call);
      asked.resolve();
      return call.promise;
    },
    calls,
    /** Waits for the next check, then answers it. */
    async answer(running: boolean | undefined) {
      await withDeadline(asked.promise, 2_000, "a running check");
      asked = Promise.withResolvers<void>();
      calls.at(-1)!.resolve(running);
    },
  };
}

Deno.test("HeldLines takes nothing before a joined line, then every line in order until proven", async () => {
  const script = scriptedCheck();
  const ac = new AbortController();
  const hold = new HeldLines(script.check, ac.signal, 0);
  try {
    assert.equal(hold.take(line("a")), false);
    assert.equal(script.calls.length, 0, "no check without a held line");
    assert.equal(hold.take(line("b1b2", true)), true);
    assert.equal(hold.take(line("c")), true);
    const proof = hold.proof();
    await script.answer(true);
    // Read while the check was under way: not covered by it.
    assert.equal(hold.take(line("d")), true);
    assert.equal(await proof, "proven");
    assert.deepEqual(texts(hold.release()), ["b1b2", "c"]);
    assert.equal(hold.size, 1);
    assert.deepEqual(hold.release(), [], "released once");
    const again = hold.proof();
    await script.answer(true);
    assert.equal(await again, "proven");
    assert.deepEqual(texts(hold.release()), ["d"]);
    assert.equal(hold.take(line("e")), false, "nothing held: sent at once again");
  } finally {
    hold.close();
  }
});

Deno.test("HeldLines copies what it holds (the stream reuses its buffers)", async () => {
  const hold = new HeldLines(() => Promise.resolve(true), new AbortController().signal, 0);
  const entry = line("kept", true);
  hold.take(entry);
  entry.message.set(encoder.encode("gone"));
  assert.equal(await hold.proof(), "proven");
  assert.deepEqual(texts(hold.release()), ["kept"]);
  hold.close();
});

Deno.test("HeldLines drops what it holds, and all that comes after, once the container stopped", async () => {
  const script = scriptedCheck();
  const hold = new HeldLines(script.check, new AbortController().signal, 0);
  try {
    hold.take(line("joined", true));
    const proof = hold.proof();
    await script.answer(false);
    assert.equal(await proof, "stopped");
    assert.equal(hold.stopped, true);
    assert.equal(hold.size, 0);
    assert.equal(hold.take(line("later")), true, "taken and dropped");
    assert.equal(hold.size, 0);
    assert.deepEqual(hold.release(), []);
  } finally {
    hold.close();
  }
});

Deno.test("HeldLines asks again when the engine could not tell", async () => {
  const script = scriptedCheck();
  const hold = new HeldLines(script.check, new AbortController().signal, 0);
  try {
    hold.take(line("joined", true));
    const proof = hold.proof();
    await script.answer(undefined);
    await script.answer(true);
    assert.equal(await proof, "proven");
    assert.equal(script.calls.length, 2);
    assert.deepEqual(texts(hold.release()), ["joined"]);
  } finally {
    hold.close();
  }
});

Deno.test("HeldLines waits the interval between checks; close ends the wait and drops the lines", async () => {
  let checks = 0;
  const hold = new HeldLines(
    () => {
      checks++;
      return Promise.resolve(true);
    },
    new AbortController().signal,
    60_000,
  );
  hold.take(line("one", true));
  assert.equal(await hold.proof(), "proven");
  assert.deepEqual(texts(hold.release()), ["one"]);
  hold.take(line("two", true));
  const waiting = hold.proof();
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(checks, 1, "the second check waits for the interval");
  hold.close();
  assert.equal(await waiting, "closed");
  assert.equal(checks, 1);
  assert.equal(hold.size, 0);
  assert.equal(hold.take(line("three", true)), false, "closed: nothing is held any more");
  assert.equal(await hold.proof(), "closed");
});

Deno.test("HeldLines closes when its signal aborts, during a check too", async () => {
  const ac = new AbortController();
  const hold = new HeldLines(
    (signal) =>
      new Promise((_resolve, reject) =>
        signal.addEventListener("abort", () => reject(signal.reason), { once: true })
      ),
    ac.signal,
    0,
  );
  hold.take(line("joined", true));
  const proof = hold.proof();
  ac.abort();
  assert.equal(await proof, "closed");
  assert.equal(hold.size, 0);
});

Deno.test("HeldLines is full beyond its byte bound", () => {
  const hold = new HeldLines(() => Promise.resolve(true), new AbortController().signal, 0);
  const big = new Uint8Array(4 * 1024 * 1024);
  hold.take({ stream: "stdout", ts: TS, message: big, joined: true });
  assert.equal(hold.full, false);
  hold.take({ stream: "stdout", ts: TS, message: big });
  hold.take({ stream: "stdout", ts: TS, message: new Uint8Array(1) });
  assert.equal(hold.full, true);
  hold.close();
  assert.equal(hold.full, false);
});
