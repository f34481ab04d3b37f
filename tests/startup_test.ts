/** Startup failures that no restart can fix: one clear line and exit 2. */
import assert from "node:assert/strict";
import { EXIT_CONFIG, EXIT_CRASH } from "../lib/exit_codes.ts";
import { startKarotten } from "./helpers/karotten.ts";
import { RABBIT_URL } from "./helpers/rabbit.ts";
import { FakeEngine } from "./helpers/fake_engine.ts";
import { withDeadline } from "./helpers/deadline.ts";

const EXIT_TIMEOUT_MS = 20_000;

Deno.test("karotten without RABBITMQ_URL prints one line naming it and exits 2", async () => {
  const k = await startKarotten({ DOCKER_SOCK: "/tmp/nowhere.sock" });
  assert.equal(await withDeadline(k.exited, EXIT_TIMEOUT_MS, "exit"), EXIT_CONFIG);
  assert.equal(k.lines.length, 1, k.lines.join("\n"));
  assert.match(k.lines[0], /RABBITMQ_URL/);
});

Deno.test("karotten with a bad OVERFLOW names the variable and exits 2", async () => {
  const k = await startKarotten({ RABBITMQ_URL: RABBIT_URL, OVERFLOW: "block" });
  assert.equal(await withDeadline(k.exited, EXIT_TIMEOUT_MS, "exit"), EXIT_CONFIG);
  assert.equal(k.lines.length, 1, k.lines.join("\n"));
  assert.match(k.lines[0], /OVERFLOW/);
});

Deno.test("karotten with a stray % in the RABBITMQ_URL password exits 2 naming it, never printing it", async () => {
  const k = await startKarotten({
    RABBITMQ_URL: "amqp://guest:ab%zz@127.0.0.1:5672/",
    DOCKER_SOCK: "/tmp/nowhere.sock",
  });
  assert.equal(await withDeadline(k.exited, EXIT_TIMEOUT_MS, "exit"), EXIT_CONFIG);
  assert.equal(k.lines.length, 1, k.lines.join("\n"));
  assert.match(k.lines[0], /RABBITMQ_URL.*percent-encoding in its password/);
  assert.ok(!k.lines[0].includes("ab%zz"), k.lines[0]);
});

Deno.test("karotten with a missing exchange logs one error naming it and exits 2", async () => {
  const engine = await FakeEngine.start();
  const exchange = `kt-missing-${crypto.randomUUID().slice(0, 8)}`;
  const k = await startKarotten({
    RABBITMQ_URL: RABBIT_URL,
    DOCKER_SOCK: engine.sock,
    EXCHANGE: exchange,
  });
  try {
    assert.equal(await withDeadline(k.exited, EXIT_TIMEOUT_MS, "exit"), EXIT_CONFIG);
    const errors = k.lines.filter((l) => / error /.test(l));
    assert.equal(errors.length, 1, k.lines.join("\n"));
    assert.match(errors[0], new RegExp(`exchange_missing exchange=${exchange} `));
    assert.ok(!k.lines.some((l) => l.includes("guest:guest")), "the password is never printed");
  } finally {
    await engine.close();
  }
});

Deno.test("karotten exits 1 with one error line when METRICS_ADDR is taken", async () => {
  const engine = await FakeEngine.start();
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = taken.addr as Deno.NetAddr;
  const k = await startKarotten({
    RABBITMQ_URL: RABBIT_URL,
    DOCKER_SOCK: engine.sock,
    METRICS_ADDR: `127.0.0.1:${port}`,
  });
  try {
    assert.equal(await withDeadline(k.exited, EXIT_TIMEOUT_MS, "exit"), EXIT_CRASH);
    const errors = k.lines.filter((l) => / error /.test(l));
    assert.equal(errors.length, 1, k.lines.join("\n"));
    assert.match(errors[0], / error metrics_listen_failed error=.*(AddrInUse|in use)/i);
  } finally {
    taken.close();
    await engine.close();
  }
});
