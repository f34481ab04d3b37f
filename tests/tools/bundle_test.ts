/**
 * What `deno task compile` compiles is the bundle (`tools/bundle.ts`), not `main.ts`: the bundle,
 * run with the daemon's flags (the same ones the binary gets), ships a real container's lines
 * exactly, with the contract's routing keys and bodies, and answers `--version` and bad config
 * as `main.ts` does.
 */
import assert from "node:assert/strict";
import { EXIT_CONFIG } from "../../lib/exit_codes.ts";
import { VERSION } from "../../lib/version.ts";
import { bundleDaemon } from "../../tools/bundle.ts";
import { waitFor, withDeadline } from "../helpers/deadline.ts";
import { startEngine, TEST_IMAGE } from "../helpers/engine.ts";
import { REPO_ROOT, startKarotten } from "../helpers/karotten.ts";
import { freshBinding, RABBIT_URL } from "../helpers/rabbit.ts";

const TIMEOUT_MS = 60_000;

/** Bundles the daemon into a temp folder; returns the bundle's path and a cleanup. */
async function bundled(): Promise<{ path: string; remove: () => Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "kt-bundle-" });
  const path = `${dir}/karotten.js`;
  await bundleDaemon(path, REPO_ROOT, Deno.execPath());
  return { path, remove: () => Deno.remove(dir, { recursive: true }) };
}

Deno.test("the bundle answers --version and exits 2 naming a missing RABBITMQ_URL", async () => {
  const bundle = await bundled();
  try {
    const text = await Deno.readTextFile(bundle.path);
    assert.ok(!text.includes("sourceMappingURL"), "no source map in the bundle");
    const version = await startKarotten({}, bundle.path, ["--version"]);
    assert.equal(await withDeadline(version.exited, TIMEOUT_MS, "exit"), 0);
    assert.ok(version.lines.some((l) => l.includes(VERSION)), version.lines.join("\n"));
    const bad = await startKarotten({ DOCKER_SOCK: "/tmp/nowhere.sock" }, bundle.path);
    assert.equal(await withDeadline(bad.exited, TIMEOUT_MS, "exit"), EXIT_CONFIG);
    assert.equal(bad.lines.length, 1, bad.lines.join("\n"));
    assert.match(bad.lines[0], /RABBITMQ_URL/);
  } finally {
    await bundle.remove();
  }
});

Deno.test("the bundle ships a real container's lines exactly, keyed and shaped as main.ts does", async () => {
  const bundle = await bundled();
  const engine = await startEngine();
  const binding = await freshBinding();
  try {
    const k = await startKarotten({
      RABBITMQ_URL: RABBIT_URL,
      DOCKER_SOCK: engine.sock,
      EXCHANGE: binding.exchange,
    }, bundle.path);
    try {
      await k.waitForLog(/ info ready /, TIMEOUT_MS);
      const id = await engine.run(
        "--name",
        "kt.bundled",
        "--label",
        "com.docker.compose.project=shop.eu",
        "--label",
        "com.docker.compose.service=web",
        TEST_IMAGE,
        "sh",
        "-c",
        'for i in 1 2 3 4 5; do echo "out $i"; echo "err $i" >&2; done; sleep 600',
      );
      await waitFor(() => binding.messages.length >= 10, {
        timeoutMs: TIMEOUT_MS,
        what: "10 lines from the bundle",
      });
      const mine = binding.messages.filter((m) => m.body.container_id === id.slice(0, 12));
      assert.equal(mine.length, 10);
      const out = mine.filter((m) => m.routingKey === "shop-eu.web.stdout").map((m) =>
        m.body.message
      );
      const err = mine.filter((m) => m.routingKey === "shop-eu.web.stderr").map((m) =>
        m.body.message
      );
      assert.deepEqual(out, ["out 1", "out 2", "out 3", "out 4", "out 5"]);
      assert.deepEqual(err, ["err 1", "err 2", "err 3", "err 4", "err 5"]);
      const body = mine[0].body;
      assert.equal(body.project, "shop-eu");
      assert.equal(body.service, "web");
      assert.equal(body.container_name, "kt.bundled");
      assert.match(String(body.image), /kt\/busybox/);
      assert.match(String(body.timestamp), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
      await engine.docker("rm", "-f", id);
    } finally {
      assert.equal(await k.stop(), 0);
    }
  } finally {
    await binding.close();
    await engine.stop();
    await bundle.remove();
  }
});
