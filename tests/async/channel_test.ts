import assert from "node:assert/strict";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { Channel } from "../../lib/async/channel.ts";

/** V8's full garbage collection, exposed for this process. */
function collectGarbage(): void {
  setFlagsFromString("--expose-gc");
  (runInNewContext("gc") as () => void)();
}

Deno.test("Channel gives items in order", async () => {
  const ch = new Channel<number>();
  for (let i = 0; i < 3000; i++) ch.send(i);
  const signal = new AbortController().signal;
  for (let i = 0; i < 3000; i++) assert.equal(await ch.receive(signal), i);
});

Deno.test("Channel no longer holds an item once received", async () => {
  const ch = new Channel<{ payload: Uint8Array }>();
  const signal = new AbortController().signal;
  // Fewer than the compaction threshold: only receiving may let go of them. Made in a function
  // of their own, so that no frame of this one holds the last.
  const refs = sendTracked(ch, 100);
  for (let i = 0; i < 100; i++) await ch.receive(signal);
  // A later turn: nothing on this stack holds the items any more.
  await new Promise((resolve) => setTimeout(resolve, 0));
  collectGarbage();
  assert.equal(refs.filter((r) => r.deref() !== undefined).length, 0);
});

function sendTracked(ch: Channel<{ payload: Uint8Array }>, n: number): WeakRef<object>[] {
  const refs: WeakRef<object>[] = [];
  for (let i = 0; i < n; i++) {
    const item = { payload: new Uint8Array(16) };
    refs.push(new WeakRef(item));
    ch.send(item);
  }
  return refs;
}
