/**
 * The core pipeline on real parts: a private dockerd, the real RabbitMQ, karotten started as a
 * subprocess with its scoped permissions. One engine, one karotten and one exchange for the
 * file; every step uses its own containers and filters messages by container id.
 */
import assert from "node:assert/strict";
import { startEngine, TEST_IMAGE } from "./helpers/engine.ts";
import { freshBinding, RABBIT_URL, type Received } from "./helpers/rabbit.ts";
import { startKarotten } from "./helpers/karotten.ts";
import { waitFor } from "./helpers/deadline.ts";

const DELIVERY_TIMEOUT_MS = 30_000;
const START_TIMEOUT_MS = 20_000;

/** `sh` loop printing `<prefix> 1` … `<prefix> n` to stdout (or stderr). */
const numbered = (prefix: string, n: number, toStderr = false) =>
  `i=1; while [ $i -le ${n} ]; do echo "${prefix} $i"${toStderr ? " >&2" : ""}; i=$((i+1)); done`;

const of = (msgs: Received[], id: string) =>
  msgs.filter((m) => m.body.container_id === id.slice(0, 12));

Deno.test("karotten ships every running container's lines under the routing-key contract", async (t) => {
  const engine = await startEngine();
  const binding = await freshBinding();
  // Present before karotten starts: one that already exited, one that keeps printing.
  const exited = await engine.run("--name", "gone-before", TEST_IMAGE, "sh", "-c", "echo never");
  await engine.docker("wait", exited);
  const ticking = await engine.run(
    "--name",
    "ticker",
    TEST_IMAGE,
    "sh",
    "-c",
    'trap "exit 0" TERM; i=1; while true; do echo "tick $i"; i=$((i+1)); sleep 0.05; done',
  );
  await waitFor(async () => (await engine.docker("logs", ticking)).includes("tick 3"), {
    timeoutMs: START_TIMEOUT_MS,
    what: "ticker printing before karotten starts",
  });
  const k = await startKarotten({
    RABBITMQ_URL: RABBIT_URL,
    DOCKER_SOCK: engine.sock,
    EXCHANGE: binding.exchange,
    DEBUG: "1",
  });
  try {
    await k.waitForLog(/ info ready /, START_TIMEOUT_MS);

    await t.step(
      "compose labels: 1000 stdout + 1000 stderr lines, in order, every field",
      async () => {
        const started = performance.now();
        const id = await engine.run(
          "--label",
          "com.docker.compose.project=shop.v2",
          "--label",
          "com.docker.compose.service=web.api",
          "--name",
          "shop-web-1",
          TEST_IMAGE,
          "sh",
          "-c",
          `(${numbered("out", 1000)}) & (${numbered("err", 1000, true)}); wait`,
        );
        await waitFor(() => of(binding.messages, id).length >= 2000, {
          timeoutMs: DELIVERY_TIMEOUT_MS,
          what: "2000 messages of the compose container",
        });
        const seconds = (performance.now() - started) / 1000;
        console.log(
          `pipeline: 2000 lines delivered in ${seconds.toFixed(2)} s (${
            Math.round(2000 / seconds)
          } lines/s, container start included)`,
        );
        await engine.docker("wait", id);
        await k.waitForLog(new RegExp(`detached id=${id.slice(0, 12)} `), DELIVERY_TIMEOUT_MS);
        const msgs = of(binding.messages, id);
        assert.equal(msgs.length, 2000);
        const inspect = JSON.parse(await engine.docker("inspect", id))[0];
        for (const stream of ["stdout", "stderr"] as const) {
          const prefix = stream === "stdout" ? "out" : "err";
          const ours = msgs.filter((m) => m.body.stream === stream);
          assert.deepEqual(
            ours.map((m) => m.body.message),
            Array.from({ length: 1000 }, (_, i) => `${prefix} ${i + 1}`),
          );
          for (const m of ours) {
            assert.equal(m.routingKey, `shop-v2.web-api.${stream}`);
            assert.equal(m.contentType, "application/json");
            assert.deepEqual(Object.keys(m.body), [
              "timestamp",
              "project",
              "service",
              "container_name",
              "container_id",
              "image",
              "stream",
              "message",
            ]);
            assert.equal(m.body.project, "shop-v2");
            assert.equal(m.body.service, "web-api");
            assert.equal(m.body.container_name, "shop-web-1");
            assert.equal(m.body.container_id, id.slice(0, 12));
            assert.equal(m.body.image, inspect.Config.Image);
            assert.match(String(m.body.timestamp), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
          }
        }
      },
    );

    await t.step("a plain container is standalone, named by its container name", async () => {
      const id = await engine.run("--name", "plain.one", TEST_IMAGE, "sh", "-c", numbered("p", 3));
      await waitFor(() => of(binding.messages, id).length >= 3, {
        timeoutMs: DELIVERY_TIMEOUT_MS,
        what: "3 messages of plain.one",
      });
      const msgs = of(binding.messages, id);
      assert.deepEqual(msgs.map((m) => m.routingKey), Array(3).fill("standalone.plain-one.stdout"));
      assert.deepEqual(msgs.map((m) => m.body.service), Array(3).fill("plain-one"));
      assert.deepEqual(msgs.map((m) => m.body.container_name), Array(3).fill("plain.one"));
    });

    await t.step("a TTY container's lines arrive on stdout without the trailing \\r", async () => {
      const id = await engine.run(
        "-t",
        "--name",
        "tty-one",
        TEST_IMAGE,
        "sh",
        "-c",
        numbered("t", 5) + "; echo oops >&2",
      );
      await waitFor(() => of(binding.messages, id).length >= 6, {
        timeoutMs: DELIVERY_TIMEOUT_MS,
        what: "6 messages of the TTY container",
      });
      const msgs = of(binding.messages, id);
      assert.deepEqual(msgs.map((m) => m.body.message), [
        "t 1",
        "t 2",
        "t 3",
        "t 4",
        "t 5",
        "oops",
      ]);
      assert.deepEqual(msgs.map((m) => m.routingKey), Array(6).fill("standalone.tty-one.stdout"));
    });

    await t.step("a TTY container's line written in pieces arrives whole", async () => {
      // Podman logs each piece it read as an entry of its own: here "p 1", then the line's
      // `\r\n` a moment later, and a 9000-byte line in pieces of at most 4095 bytes.
      const long = "a".repeat(9000);
      const id = await engine.run(
        "-t",
        "--name",
        "tty-pieces",
        TEST_IMAGE,
        "sh",
        "-c",
        `printf 'p 1'; sleep 0.3; printf '\\n'; head -c 9000 /dev/zero | tr '\\0' a; echo; echo p 2`,
      );
      await waitFor(() => of(binding.messages, id).length >= 3, {
        timeoutMs: DELIVERY_TIMEOUT_MS,
        what: "3 messages of the TTY container",
      });
      assert.deepEqual(of(binding.messages, id).map((m) => m.body.message), ["p 1", long, "p 2"]);
    });

    await t.step(
      "a container started while karotten runs is read from its first line",
      async () => {
        const id = await engine.run("--name", "burst", TEST_IMAGE, "sh", "-c", numbered("b", 200));
        await waitFor(() => of(binding.messages, id).length >= 200, {
          timeoutMs: DELIVERY_TIMEOUT_MS,
          what: "200 messages of the burst container",
        });
        assert.deepEqual(
          of(binding.messages, id).map((m) => m.body.message),
          Array.from({ length: 200 }, (_, i) => `b ${i + 1}`),
        );
      },
    );

    await t.step(
      "churn: 24 short-lived containers, 4 at a time: every line once, each forgotten once removed",
      async () => {
        const ids: string[] = [];
        for (let round = 0; round < 6; round++) {
          ids.push(
            ...await Promise.all(
              Array.from(
                { length: 4 },
                (_, j) =>
                  engine.run(
                    "--name",
                    `churn-${round}-${j}`,
                    TEST_IMAGE,
                    "sh",
                    "-c",
                    numbered("c", 50),
                  ),
              ),
            ),
          );
        }
        await waitFor(() => ids.every((id) => of(binding.messages, id).length >= 50), {
          timeoutMs: DELIVERY_TIMEOUT_MS,
          what: "50 messages of each short-lived container",
        });
        for (const id of ids) {
          await k.waitForLog(new RegExp(`detached id=${id.slice(0, 12)} `), DELIVERY_TIMEOUT_MS);
          assert.deepEqual(
            of(binding.messages, id).map((m) => m.body.message),
            Array.from({ length: 50 }, (_, i) => `c ${i + 1}`),
          );
        }
        await engine.docker("rm", ...ids);
        for (const id of ids) {
          await k.waitForLog(new RegExp(` forgotten id=${id.slice(0, 12)}`), DELIVERY_TIMEOUT_MS);
        }
      },
    );

    await t.step(
      "a container running before karotten is read from 'now', without gaps",
      async () => {
        await waitFor(() => of(binding.messages, ticking).length >= 10, {
          timeoutMs: DELIVERY_TIMEOUT_MS,
          what: "10 ticks",
        });
        const ticks = of(binding.messages, ticking).map((m) =>
          Number(String(m.body.message).split(" ")[1])
        );
        assert.ok(ticks[0] > 3, `first tick shipped was ${ticks[0]}: older lines were replayed`);
        ticks.forEach((n, i) => assert.equal(n, ticks[0] + i, "gap or duplicate in ticks"));
      },
    );

    await t.step(
      "a container that exited before karotten started: no message, no logs request",
      () => {
        assert.equal(of(binding.messages, exited).length, 0);
        const short = exited.slice(0, 12);
        const touched = k.lines.filter((l) =>
          l.includes(short) || (l.includes("docker_get") && l.includes(exited))
        );
        assert.deepEqual(touched.filter((l) => /logs/.test(l)), []);
        assert.ok(!k.lines.some((l) => l.includes(`attached id=${short}`)));
      },
    );
  } finally {
    const code = await k.stop();
    await binding.close();
    await engine.stop();
    assert.equal(code, 0, "karotten exit code on SIGTERM");
  }
});
