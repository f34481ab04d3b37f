import assert from "node:assert/strict";
import { checkContainerInfo, checkContainerList, checkEvent } from "../../lib/docker/shapes.ts";
import { ShapeError } from "../../lib/errors.ts";

const ID = "ab".repeat(32);

const info = (patch: Record<string, unknown> = {}) => ({
  Id: ID,
  Name: "/web",
  State: { Running: true, StartedAt: "2030-01-01T00:00:00Z" },
  Config: { Image: "busybox", Labels: { a: "b" }, Tty: false },
  ...patch,
});

Deno.test("checkContainerList refuses a list that is not an array", () => {
  for (const v of [{}, null, "x", 3]) {
    assert.throws(() => checkContainerList(v), ShapeError);
  }
});

Deno.test("checkContainerList sets aside items of the wrong shape, one reason each", () => {
  const checked = checkContainerList([
    null,
    { Id: 42 },
    { Id: "../../x" },
    { Id: ID, State: 7 },
    { Id: ID, State: "running", Names: ["/ok"] },
  ]);
  assert.deepEqual(checked.items, [{ Id: ID, State: "running" }]);
  assert.deepEqual(checked.rejected, [
    "Cannot read /containers/json item 0: the item is null",
    "Cannot read /containers/json item 1: Id is number",
    "Cannot read /containers/json item 2: Id is not a container id",
    "Cannot read /containers/json item 3: State is number",
  ]);
});

Deno.test("checkContainerInfo keeps the fields karotten reads and names the first bad one", () => {
  const ok = checkContainerInfo(info(), "inspect");
  assert.equal(ok.Name, "/web");
  assert.equal(ok.Config.Tty, false);
  assert.deepEqual(ok.Config.Labels, { a: "b" });
  assert.equal(checkContainerInfo(info({ Config: {} }), "inspect").Config.Image, "");
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ Id: 1 }, /Id is number/],
    [{ Name: null }, /Name is null/],
    [{ State: [] }, /State is array/],
    [{ State: { Running: "yes" } }, /State.Running is string/],
    [{ Config: { Image: 5 } }, /Config.Image is number/],
    [{ Config: { Labels: { x: 1 } } }, /Config.Labels\["x"\] is number/],
    [{ Config: { Tty: 1 } }, /Config.Tty is number/],
  ];
  for (const [patch, re] of bad) {
    assert.throws(() => checkContainerInfo(info(patch), "inspect"), re);
  }
  assert.throws(() => checkContainerInfo([null], "inspect"), /the answer is array/);
});

Deno.test("checkEvent refuses a numeric Actor.ID and a missing Actor", () => {
  assert.deepEqual(
    checkEvent({ Type: "container", Action: "start", Actor: { ID: ID }, timeNano: 1 }),
    { Type: "container", Action: "start", Actor: { ID: ID }, timeNano: 1 },
  );
  assert.throws(() => checkEvent({ Action: "start", Actor: { ID: 42 } }), /Actor.ID is number/);
  assert.throws(() => checkEvent({ Action: "start" }), /Actor is undefined/);
  assert.throws(() => checkEvent([1]), /the message is array/);
  assert.throws(() => checkEvent({ Action: 1, Actor: { ID: ID } }), /Action is number/);
});
