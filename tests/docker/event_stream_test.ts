import assert from "node:assert/strict";
import { type DockerEvent, eventFilterNames, EventStream } from "../../lib/docker/event_stream.ts";
import { ProtocolError } from "../../lib/errors.ts";

const ID = "ab".repeat(32);
const enc = new TextEncoder();

async function* pieces(parts: (string | Uint8Array)[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield typeof p === "string" ? enc.encode(p) : p;
}

async function collect(parts: (string | Uint8Array)[], maxLineBytes?: number) {
  const bad: string[] = [];
  const stream = new EventStream(pieces(parts), {
    onUnparsable: (sample) => bad.push(`unparsable ${sample}`),
    onInvalid: (problem) => bad.push(`invalid ${problem}`),
  }, maxLineBytes);
  const batches: (readonly DockerEvent[])[] = [];
  for await (const batch of stream) batches.push(batch);
  return { batches, bad };
}

const line = (action: string) =>
  JSON.stringify({ Type: "container", Action: action, Actor: { ID } }) + "\n";

Deno.test("EventStream frames lines split anywhere, one byte at a time included", async () => {
  const text = line("start") + line("die") + line("destroy");
  const whole = await collect([text]);
  assert.deepEqual(whole.batches.flat().map((e) => e.Action), ["start", "die", "destroy"]);
  const bytes = [...enc.encode(text)].map((b) => new Uint8Array([b]));
  const split = await collect(bytes);
  assert.deepEqual(split.batches.flat().map((e) => e.Action), ["start", "die", "destroy"]);
  assert.equal(split.batches.length, 3, "one batch per read that completed a line");
});

Deno.test("EventStream yields nothing for reads without a newline", async () => {
  const { batches } = await collect(['{"Type":', '"container"']);
  assert.equal(batches.length, 0);
});

Deno.test("EventStream throws ProtocolError once a line passes the limit, newline or not", async () => {
  for (const parts of [["x".repeat(600), "x".repeat(600)], ["x".repeat(1500) + "\n"]]) {
    await assert.rejects(
      () => collect(parts, 1024),
      (err: unknown) =>
        err instanceof ProtocolError && /event line longer than 1024 bytes/.test(err.message),
    );
  }
  const { batches } = await collect(["x".repeat(1000) + "\n" + line("start")], 1024);
  assert.equal(batches.flat().length, 1, "a line at the limit is fine");
});

Deno.test("EventStream passes unparsable lines and wrong shapes on, one each, and keeps going", async () => {
  const { batches, bad } = await collect([
    "\x1b[2Jnot json\n",
    '{"Action":"start","Actor":{"ID":42}}\n',
    "[null]\n",
    line("start"),
  ]);
  assert.deepEqual(batches.flat().map((e) => e.Action), ["start"]);
  assert.deepEqual(bad, [
    "unparsable \x1b[2Jnot json",
    "invalid Cannot read event: Actor.ID is number",
    "invalid Cannot read event: the message is array",
  ]);
});

Deno.test("EventStream gives Podman's died and remove under Docker's names", async () => {
  const actions = ["start", "died", "die", "remove", "destroy", "cleanup"];
  const { batches } = await collect([actions.map(line).join("")]);
  assert.deepEqual(batches.flat().map((e) => e.Action), [
    "start",
    "die",
    "die",
    "destroy",
    "destroy",
    "cleanup",
  ]);
});

Deno.test("eventFilterNames asks for both engines' names of the followed events", () => {
  assert.deepEqual(eventFilterNames(["start", "die", "destroy"]), [
    "start",
    "die",
    "destroy",
    "died",
    "remove",
  ]);
  assert.deepEqual(eventFilterNames(["start"]), ["start"]);
});
