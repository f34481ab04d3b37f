import assert from "node:assert/strict";
import type { LogEntry } from "../../lib/docker/log_stream.ts";
import { HeldLines } from "../../lib/supervisor/held_lines.ts";
import { type RunningCheck, RunProof } from "../../lib/supervisor/run_proof.ts";
import { scriptedCheck } from "./_scripted_check.ts";

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

/** A hold on its own proof, checked by `check` at most every `intervalMs`; `close` ends both. */
function holdOn(check: RunningCheck, intervalMs = 0, ac = new AbortController()) {
  const hold = new HeldLines(new RunProof(check, ac.signal, intervalMs));
  return { hold, close: () => ac.abort() };
}

Deno.test("HeldLines takes nothing before a joined line, then every line in order until proven", async () => {
  const script = scriptedCheck();
  const { hold, close } = holdOn(script.check);
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
    close();
  }
});

Deno.test("HeldLines copies what it holds (the stream reuses its buffers)", async () => {
  const { hold, close } = holdOn(() => Promise.resolve(true));
  const entry = line("kept", true);
  hold.take(entry);
  entry.message.set(encoder.encode("gone"));
  assert.equal(await hold.proof(), "proven");
  assert.deepEqual(texts(hold.release()), ["kept"]);
  close();
});

Deno.test("HeldLines drops what it holds, and all that comes after, once the container stopped", async () => {
  const script = scriptedCheck();
  const { hold, close } = holdOn(script.check);
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
    close();
  }
});

Deno.test("HeldLines asks again when the engine could not tell", async () => {
  const script = scriptedCheck();
  const { hold, close } = holdOn(script.check);
  try {
    hold.take(line("joined", true));
    const proof = hold.proof();
    await script.answer(undefined);
    await script.answer(true);
    assert.equal(await proof, "proven");
    assert.equal(script.calls.length, 2);
    assert.deepEqual(texts(hold.release()), ["joined"]);
  } finally {
    close();
  }
});

Deno.test("HeldLines waits the interval between checks; close ends the wait and drops the lines", async () => {
  let checks = 0;
  const { hold, close } = holdOn(() => {
    checks++;
    return Promise.resolve(true);
  }, 60_000);
  hold.take(line("one", true));
  assert.equal(await hold.proof(), "proven");
  assert.deepEqual(texts(hold.release()), ["one"]);
  hold.take(line("two", true));
  const waiting = hold.proof();
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(checks, 1, "the second check waits for the interval");
  close();
  assert.equal(await waiting, "closed");
  assert.equal(checks, 1);
  assert.equal(hold.size, 0);
  assert.equal(hold.take(line("three", true)), false, "closed: nothing is held any more");
  assert.equal(await hold.proof(), "closed");
});

Deno.test("HeldLines closes when its signal aborts, during a check too", async () => {
  const ac = new AbortController();
  const { hold } = holdOn(
    (signal) =>
      new Promise((_resolve, reject) =>
        signal.addEventListener("abort", () => reject(signal.reason), { once: true })
      ),
    0,
    ac,
  );
  hold.take(line("joined", true));
  const proof = hold.proof();
  ac.abort();
  assert.equal(await proof, "closed");
  assert.equal(hold.size, 0);
});

Deno.test("HeldLines is full beyond its byte bound", () => {
  const { hold, close } = holdOn(() => Promise.resolve(true));
  const big = new Uint8Array(4 * 1024 * 1024);
  hold.take({ stream: "stdout", ts: TS, message: big, joined: true });
  assert.equal(hold.full, false);
  hold.take({ stream: "stdout", ts: TS, message: big });
  hold.take({ stream: "stdout", ts: TS, message: new Uint8Array(1) });
  assert.equal(hold.full, true);
  close();
  assert.equal(hold.full, false);
});
