import assert from "node:assert/strict";
import type { LogEntry } from "../../lib/docker/log_stream.ts";
import { HeldLines } from "../../lib/supervisor/held_lines.ts";
import { type ProofParty, RunProof } from "../../lib/supervisor/run_proof.ts";
import { SentLines } from "../../lib/supervisor/sent_lines.ts";
import { waitFor } from "../helpers/deadline.ts";
import { scriptedCheck } from "./_scripted_check.ts";

const TS = "2026-12-01T20:33:30.000000000Z";
const encoder = new TextEncoder();

/** A party that counts lines read, and what each inspect proved of them. */
class Reader implements ProofParty {
  read = 0;
  mark = -1;
  proven = 0;
  stopped = false;
  marked(): void {
    this.mark = this.read;
  }
  found(running: boolean): void {
    if (running) this.proven = this.mark;
    else this.stopped = true;
  }
}

/** Lets pending promise reactions and timers due now run. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("RunProof keeps one inspect in flight, and its answer serves every caller", async () => {
  const script = scriptedCheck();
  const ac = new AbortController();
  const run = new RunProof(script.check, ac.signal, 0);
  try {
    run.ask();
    run.ask();
    const first = run.next();
    const second = run.next();
    assert.equal(script.calls.length, 1, "one inspect in flight");
    await script.answer(true);
    assert.equal(await first, "running");
    assert.equal(await second, "running");
    assert.equal(script.calls.length, 1);
    const third = run.next();
    assert.equal(script.calls.length, 2, "the next one once the first answered");
    await script.answer(true);
    assert.equal(await third, "running");
  } finally {
    ac.abort();
  }
});

Deno.test("RunProof starts an inspect at most once per interval", async () => {
  let checks = 0;
  const count = () => {
    checks++;
    return Promise.resolve(true);
  };
  const slow = new AbortController();
  const run = new RunProof(count, slow.signal, 60_000);
  run.ask();
  assert.equal(checks, 1);
  assert.equal(await run.next(), "running", "the inspect in flight answers");
  run.ask();
  const waiting = run.next();
  run.ask();
  await settle();
  assert.equal(checks, 1, "neither `ask` nor `next` starts one before the interval passed");
  slow.abort();
  assert.equal(await waiting, "closed");
  assert.equal(checks, 1);

  // Once the interval passed, `ask` starts one.
  checks = 0;
  const quick = new AbortController();
  const again = new RunProof(count, quick.signal, 1);
  again.ask();
  await again.next();
  await waitFor(() => {
    again.ask();
    return checks === 2;
  }, { timeoutMs: 2_000, what: "a second inspect after the interval" });
  quick.abort();
});

Deno.test("RunProof's inspect proves, for each party, what it read before it started", async () => {
  const script = scriptedCheck();
  const ac = new AbortController();
  const run = new RunProof(script.check, ac.signal, 0);
  const a = new Reader();
  const b = new Reader();
  run.join(a);
  run.join(b);
  try {
    a.read = 3;
    b.read = 5;
    run.ask();
    a.read = 4; // read after the inspect started: not covered by it
    await script.answer(true);
    assert.equal(await run.next(), "running");
    assert.deepEqual([a.proven, b.proven], [3, 5]);
    assert.equal(script.calls.length, 1, "one inspect for both");
  } finally {
    ac.abort();
  }
});

Deno.test("RunProof: one inspect proves the held lines and lets go of the sent lines read before it", async () => {
  const script = scriptedCheck();
  const ac = new AbortController();
  const run = new RunProof(script.check, ac.signal, 0);
  const sent = new SentLines({ ts: "", count: 0 });
  run.join(sent);
  const hold = new HeldLines(run);
  try {
    for (let seq = 1; seq <= 3; seq++) {
      sent.record({ stream: 1, ts: TS, message: encoder.encode(`line ${seq}`) }, seq);
    }
    const joined: LogEntry = {
      stream: "stdout",
      ts: TS,
      message: encoder.encode("b1b2"),
      joined: true,
    };
    assert.equal(hold.take(joined), true);
    const proof = hold.proof();
    await script.answer(true);
    assert.equal(await proof, "proven");
    assert.equal(hold.release().length, 1);
    assert.equal(sent.size, 0, "the sent lines let go of");
    assert.deepEqual(sent.floor, { ts: TS, count: 3 });
    assert.equal(script.calls.length, 1);
  } finally {
    ac.abort();
  }
});

Deno.test("RunProof answers unknown when the engine could not tell, and asks again when asked", async () => {
  const script = scriptedCheck();
  const ac = new AbortController();
  const run = new RunProof(script.check, ac.signal, 0);
  const party = new Reader();
  run.join(party);
  try {
    party.read = 2;
    const first = run.next();
    await script.answer(undefined);
    assert.equal(await first, "unknown");
    assert.deepEqual([party.proven, party.stopped], [0, false], "nothing found");
    const second = run.next();
    await script.answer(true);
    assert.equal(await second, "running");
    assert.equal(party.proven, 2);
    assert.equal(script.calls.length, 2);
  } finally {
    ac.abort();
  }
});

Deno.test("RunProof: once an inspect found the run stopped, it stays stopped without asking", async () => {
  const script = scriptedCheck();
  const ac = new AbortController();
  const run = new RunProof(script.check, ac.signal, 0);
  const party = new Reader();
  run.join(party);
  try {
    run.ask();
    await script.answer(false);
    assert.equal(await run.next(), "stopped");
    assert.equal(run.stopped, true);
    assert.equal(party.stopped, true);
    run.ask();
    assert.equal(await run.next(), "stopped");
    assert.equal(script.calls.length, 1);
  } finally {
    ac.abort();
  }
});

Deno.test("RunProof closes when its signal aborts, during an inspect too", async () => {
  const script = scriptedCheck();
  const ac = new AbortController();
  const run = new RunProof(script.check, ac.signal, 0);
  const party = new Reader();
  run.join(party);
  party.read = 1;
  const pending = run.next();
  assert.equal(script.calls.length, 1);
  ac.abort();
  assert.equal(script.calls[0].signal.aborted, true, "the inspect is aborted");
  assert.equal(await pending, "closed");
  assert.equal(party.proven, 0);
  assert.equal(await run.next(), "closed");
  run.ask();
  assert.equal(script.calls.length, 1, "no inspect once closed");
});

Deno.test("RunProof passes on a check that failed without being aborted", async () => {
  const boom = new Error("boom");
  const ac = new AbortController();
  const run = new RunProof(() => Promise.reject(boom), ac.signal, 0);
  await assert.rejects(run.next(), boom);
  const asked = new RunProof(() => Promise.reject(boom), ac.signal, 0);
  asked.ask();
  await settle();
  await assert.rejects(asked.next(), boom, "a failure of an inspect nobody awaited");
  ac.abort();
});
