import assert from "node:assert/strict";
import { InFlight } from "../../lib/amqp/in_flight.ts";

function settled(f: InFlight, tag: number, multiple: boolean): number[] {
  const out: number[] = [];
  f.settle(tag, multiple, (pos) => out.push(pos));
  return out;
}

Deno.test("InFlight maps delivery tags to positions and settles multiple acks", () => {
  const f = new InFlight(8);
  for (const pos of [10, 11, 12, 13]) f.add(pos);
  assert.equal(f.count, 4);
  assert.deepEqual(settled(f, 3, true), [10, 11, 12]);
  assert.equal(f.count, 1);
  assert.deepEqual(settled(f, 4, false), [13]);
  assert.equal(f.count, 0);
});

Deno.test("InFlight settles single tags out of order and skips them in a later multiple", () => {
  const f = new InFlight(4);
  for (const pos of [0, 1, 2, 3]) f.add(pos);
  assert.deepEqual(settled(f, 3, false), [2]);
  assert.equal(f.count, 4, "the lowest unsettled tag still bounds the window");
  assert.deepEqual(settled(f, 3, false), [], "a repeated tag is ignored");
  assert.deepEqual(settled(f, 4, true), [0, 1, 3]);
  assert.equal(f.count, 0);
  assert.deepEqual(settled(f, 9, true), [], "an unknown tag is ignored");
});

Deno.test("InFlight wraps its ring and starts again at tag 1 after reset", () => {
  const f = new InFlight(3); // ring of 4
  let tag = 0;
  for (let pos = 100; pos < 120; pos++) {
    f.add(pos);
    tag++;
    assert.deepEqual(settled(f, tag, false), [pos]);
  }
  f.add(7);
  f.reset();
  assert.equal(f.count, 0);
  f.add(8);
  assert.deepEqual(settled(f, 1, true), [8]);
});
