/**
 * `--dry-run` on real parts: a private dockerd, no broker, no `RABBITMQ_URL`; the daemon as
 * users start it. Also the stats line, which a dry run prints like any run.
 */
import assert from "node:assert/strict";
import { startEngine, TEST_IMAGE } from "./helpers/engine.ts";
import { startKarotten } from "./helpers/karotten.ts";
import { waitFor } from "./helpers/deadline.ts";
import { permissionFlags } from "../lib/permissions.ts";

const TIMEOUT_MS = 30_000;

Deno.test("permissionFlags grants a dry run no broker access, even with RABBITMQ_URL set", () => {
  const env = (n: string) => ({ RABBITMQ_URL: "amqp://u:p@10.0.0.9:5672/" })[n];
  const net = (flags: string[]) => flags.find((f) => f.startsWith("--allow-net="));
  assert.equal(
    net(permissionFlags(env, { dryRun: true })),
    "--allow-net=unix:/var/run/docker.sock",
  );
  assert.match(net(permissionFlags(env))!, /10\.0\.0\.9:5672/);
});

Deno.test("karotten --dry-run prints '<routing key> <envelope JSON>' lines without a broker", async () => {
  const engine = await startEngine();
  const k = await startKarotten(
    {
      DOCKER_SOCK: engine.sock,
      KAROTTEN_TUNING: JSON.stringify({ statsIntervalMs: 200 }),
    },
    "main.ts",
    ["--dry-run"],
  );
  try {
    await k.waitForLog(/ info ready /, TIMEOUT_MS);
    const id = await engine.run(
      "--label",
      "com.docker.compose.project=shop.v2",
      "--label",
      "com.docker.compose.service=web",
      "--name",
      "dry-1",
      TEST_IMAGE,
      "sh",
      "-c",
      'echo "hello dry run"; echo "on stderr" >&2; echo \'{"json": "stays raw"}\'',
    );
    await waitFor(() => k.stdoutLines.length >= 3, {
      timeoutMs: TIMEOUT_MS,
      what: "3 lines on stdout",
    });
    const printed = k.stdoutLines.map((line) => {
      const space = line.indexOf(" ");
      return { key: line.slice(0, space), body: JSON.parse(line.slice(space + 1)) };
    });
    const byMessage = new Map(printed.map((p) => [p.body.message, p]));
    assert.equal(byMessage.get("hello dry run")?.key, "shop-v2.web.stdout");
    assert.equal(byMessage.get("on stderr")?.key, "shop-v2.web.stderr");
    assert.equal(byMessage.get('{"json": "stays raw"}')?.body.stream, "stdout");
    for (const { body } of printed) {
      assert.deepEqual(Object.keys(body), [
        "timestamp",
        "project",
        "service",
        "container_name",
        "container_id",
        "image",
        "stream",
        "message",
      ]);
      assert.equal(body.container_id, id.slice(0, 12));
      assert.equal(body.container_name, "dry-1");
    }
    // The stats line: one line, info level, every field, counting what was printed.
    const stats = await k.waitForLog(/ info stats .*lines_read=3 .*confirmed=3 /, TIMEOUT_MS);
    assert.match(
      stats,
      /^\S+ info stats containers=\d+ lines_read=3 published=3 confirmed=3 dropped_full=0 dropped_blocked=0 buffer=0 buffer_bytes=0 oldest_unconfirmed_s=0 reconnects=0$/,
    );
    assert.ok(!k.lines.some((l) => l.includes("\x1b")), "no ANSI escapes when not on a terminal");
    assert.ok(!k.lines.some((l) => /amqp/.test(l)), "no broker involved");
  } finally {
    const code = await k.stop();
    await engine.stop();
    assert.equal(code, 0, "exit code on SIGTERM");
  }
});
