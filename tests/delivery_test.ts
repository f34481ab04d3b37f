/**
 * Exact delivery on real parts: numbered lines through engine restarts, broker bounces and
 * alarms, karotten restarts, long lines and long routing keys, each checked for gaps and
 * duplicates (a full buffer: `overflow_test.ts`).
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { startEngine, TEST_IMAGE, type TestEngine } from "./helpers/engine.ts";
import {
  type Binding,
  freshBinding,
  RABBIT_URL,
  rabbitStartApp,
  rabbitStopApp,
  type Received,
  setMemoryWatermark,
} from "./helpers/rabbit.ts";
import { type Karotten, startKarotten } from "./helpers/karotten.ts";
import { waitFor } from "./helpers/deadline.ts";
import { fitKeyParts } from "../lib/message.ts";
import { DEFAULT_TUNING } from "../lib/config.ts";
import { CHECKPOINT_FILE } from "../lib/checkpoints.ts";

const TIMEOUT_MS = 60_000;
/** Numbered lines every 10 ms until SIGTERM. */
const TICKER =
  'trap "exit 0" TERM; i=1; while true; do echo "n $i"; i=$((i+1)); usleep 10000; done';

const of = (msgs: Received[], id: string) =>
  msgs.filter((m) => m.body.container_id === id.slice(0, 12));

/** The numbers of `<word> N` messages, in arrival order. */
const numbers = (msgs: Received[]) => msgs.map((m) => Number(String(m.body.message).split(" ")[1]));

/** Asserts 1..max each present; returns how many were duplicated. */
function assertNoGaps(nums: number[], what: string): number {
  const max = nums.reduce((a, b) => Math.max(a, b), 0);
  const seen = new Set(nums);
  const missing = [];
  for (let i = 1; i <= max; i++) if (!seen.has(i)) missing.push(i);
  assert.deepEqual(missing.slice(0, 20), [], `${what}: ${missing.length} lines lost`);
  return nums.length - seen.size;
}

function env(binding: Binding, engine: TestEngine, extra: Record<string, string> = {}) {
  return {
    RABBITMQ_URL: RABBIT_URL,
    DOCKER_SOCK: engine.sock,
    EXCHANGE: binding.exchange,
    ...extra,
  };
}

/** Runs a ticker, lets `disturb` happen while it writes, stops it, returns its messages. */
async function tickThrough(
  engine: TestEngine,
  binding: Binding,
  k: () => Karotten,
  disturb: (id: string) => Promise<void>,
): Promise<Received[]> {
  const id = await engine.run(TEST_IMAGE, "sh", "-c", TICKER);
  await waitFor(() => of(binding.messages, id).length >= 20, {
    timeoutMs: TIMEOUT_MS,
    what: "20 ticks",
  });
  await disturb(id);
  const before = of(binding.messages, id).length;
  await waitFor(() => of(binding.messages, id).length >= before + 20, {
    timeoutMs: TIMEOUT_MS,
    what: "20 more ticks after the disturbance",
  });
  await engine.docker("stop", "-t", "5", id);
  const logs = (await engine.docker("logs", id)).split("\n").filter((l) => l.startsWith("n "));
  await waitFor(() => new Set(numbers(of(binding.messages, id))).size >= logs.length, {
    timeoutMs: TIMEOUT_MS,
    what: `all ${logs.length} ticks (have ${new Set(numbers(of(binding.messages, id))).size})`,
  });
  await k().waitForLog(new RegExp(`detached id=${id.slice(0, 12)} `), TIMEOUT_MS);
  const msgs = of(binding.messages, id);
  assert.equal(
    numbers(msgs).reduce((a, b) => Math.max(a, b), 0),
    logs.length,
    "the last line shipped is the last written",
  );
  return msgs;
}

Deno.test("delivery: no line lost or repeated through faults on real parts", async (t) => {
  const engine = await startEngine({ liveRestore: true });
  try {
    await t.step("engine restart (live-restore) while writing: 0 lost, 0 duplicated", async () => {
      const binding = await freshBinding();
      const k = await startKarotten(env(binding, engine));
      try {
        await k.waitForLog(/ info ready /, TIMEOUT_MS);
        const msgs = await tickThrough(engine, binding, () => k, () => engine.restart());
        assert.equal(assertNoGaps(numbers(msgs), "engine restart"), 0, "duplicates");
        assert.ok(k.lines.some((l) => l.includes("events_connected")), "events reconnected");
      } finally {
        assert.equal(await k.stop(), 0);
        await binding.close();
      }
    });

    await t.step("broker bounce and memory alarm while writing: 0 lost", async () => {
      const binding = await freshBinding({ durableExchange: true });
      const k = await startKarotten(env(binding, engine, {
        KAROTTEN_TUNING: JSON.stringify({ amqpBackoffInitialMs: 100, amqpBackoffMaxMs: 1000 }),
      }));
      try {
        await k.waitForLog(/ info ready /, TIMEOUT_MS);
        const bounced = await tickThrough(engine, binding, () => k, async () => {
          try {
            await rabbitStopApp();
          } finally {
            await rabbitStartApp();
          }
          await k.waitForLog(/amqp_connected.*\n?/, TIMEOUT_MS);
        });
        const dupBounce = assertNoGaps(numbers(bounced), "broker bounce");
        assert.ok(dupBounce <= DEFAULT_TUNING.publishWindow, `${dupBounce} duplicates`);

        const alarmed = await tickThrough(engine, binding, () => k, async () => {
          try {
            await setMemoryWatermark(0.0001);
            await k.waitForLog(/amqp_blocked/, TIMEOUT_MS);
          } finally {
            await setMemoryWatermark(0.4);
          }
          await k.waitForLog(/amqp_unblocked/, TIMEOUT_MS);
        });
        assert.equal(assertNoGaps(numbers(alarmed), "memory alarm"), 0, "duplicates");
        assert.ok(!k.lines.some((l) => / dropped /.test(l)), "nothing dropped");
      } finally {
        await setMemoryWatermark(0.4);
        assert.equal(await k.stop(), 0);
        await binding.close();
      }
    });

    await t.step(
      "karotten restarted with STATE_DIR while writing: 0 lost, repeats only after SIGKILL",
      async () => {
        const stateDir = await Deno.makeTempDir({ prefix: "kt-state-" });
        const checkpoints = `${stateDir}/${CHECKPOINT_FILE}`;
        const binding = await freshBinding();
        const vars = env(binding, engine, {
          STATE_DIR: stateDir,
          KAROTTEN_TUNING: JSON.stringify({ checkpointIntervalMs: 200 }),
        });
        let k = await startKarotten(vars);
        try {
          await k.waitForLog(/ info ready /, TIMEOUT_MS);
          let sigtermRepeats = -1;
          const msgs = await tickThrough(engine, binding, () => k, async (id) => {
            // A graceful restart first: nothing may be repeated.
            assert.equal(await k.stop(), 0);
            const shipped = of(binding.messages, id).length;
            k = await startKarotten(vars);
            await k.waitForLog(/ info ready /, TIMEOUT_MS);
            await waitFor(() => of(binding.messages, id).length >= shipped + 30, {
              timeoutMs: TIMEOUT_MS,
              what: "ticks after the graceful restart",
            });
            const nums = numbers(of(binding.messages, id));
            sigtermRepeats = nums.length - new Set(nums).size;
            // Then a crash, once a checkpoint was written after those ticks (else the lines the
            // engine kept during the restart, sent at once, would all come again).
            const written = await Deno.readTextFile(checkpoints);
            await waitFor(async () => await Deno.readTextFile(checkpoints) !== written, {
              timeoutMs: TIMEOUT_MS,
              what: "a checkpoint written after the ticks",
            });
            k.kill("SIGKILL");
            await k.exited;
            k = await startKarotten(vars);
            await k.waitForLog(/ info ready /, TIMEOUT_MS);
          });
          assert.equal(sigtermRepeats, 0, "duplicates after a SIGTERM restart");
          const dups = assertNoGaps(numbers(msgs), "karotten restarts");
          // After SIGKILL only lines confirmed since the last checkpoint (≤ 200 ms, ~20 lines at
          // 10 ms, plus scheduling slack and the engine's own batching: Podman reads its log file
          // every 250 ms) may come again, with the same message id.
          console.log(`SIGKILL repeats: ${dups}`);
          assert.ok(dups <= 60, `${dups} duplicates after SIGKILL`);
          const ids = new Map<string, string>();
          for (const m of msgs) {
            const prev = ids.get(String(m.body.message));
            if (prev !== undefined) {
              assert.equal(m.messageId, prev, "a repeat keeps its message id");
            }
            ids.set(String(m.body.message), m.messageId ?? "");
          }
        } finally {
          await k.stop();
          await binding.close();
          await Deno.remove(stateDir, { recursive: true });
        }
      },
    );

    await t.step(
      "long lines: a 40000-byte line whole, a 3 MiB line cut at 1 MiB, once logged",
      async () => {
        const binding = await freshBinding();
        const k = await startKarotten(env(binding, engine));
        try {
          await k.waitForLog(/ info ready /, TIMEOUT_MS);
          const id = await engine.run(
            TEST_IMAGE,
            "sh",
            "-c",
            "echo short 1; head -c 40000 /dev/zero | tr '\\0' a; echo; echo short 2; " +
              "head -c 3145728 /dev/zero | tr '\\0' b; echo; echo short 3",
          );
          await waitFor(() => of(binding.messages, id).length >= 7, {
            timeoutMs: TIMEOUT_MS,
            what: "7 messages",
          });
          await k.waitForLog(new RegExp(`detached id=${id.slice(0, 12)} `), TIMEOUT_MS);
          const msgs = of(binding.messages, id).map((m) => String(m.body.message));
          assert.equal(msgs.length, 7);
          assert.equal(msgs[0], "short 1");
          assert.equal(msgs[1], "a".repeat(40000));
          assert.equal(msgs[2], "short 2");
          for (const piece of msgs.slice(3, 6)) assert.equal(piece, "b".repeat(1 << 20));
          assert.equal(msgs[6], "short 3");
          assert.equal(
            k.lines.filter((l) => l.includes("line_cut") && l.includes(id.slice(0, 12))).length,
            1,
          );
        } finally {
          assert.equal(await k.stop(), 0);
          await binding.close();
        }
      },
    );

    await t.step("a 300-byte routing key is shortened by the documented rule", async () => {
      const binding = await freshBinding();
      const k = await startKarotten(env(binding, engine));
      try {
        await k.waitForLog(/ info ready /, TIMEOUT_MS);
        const project = "team.platform." + "p".repeat(136);
        const service = "api.gateway." + "s".repeat(138);
        const id = await engine.run(
          "--label",
          `com.docker.compose.project=${project}`,
          "--label",
          `com.docker.compose.service=${service}`,
          TEST_IMAGE,
          "sh",
          "-c",
          "echo one; echo two",
        );
        const plain = await engine.run(TEST_IMAGE, "sh", "-c", "echo after");
        await waitFor(
          () => of(binding.messages, id).length >= 2 && of(binding.messages, plain).length >= 1,
          {
            timeoutMs: TIMEOUT_MS,
            what: "messages of both containers",
          },
        );
        const [p, s] = fitKeyParts(project.replaceAll(".", "-"), service.replaceAll(".", "-"));
        for (const m of of(binding.messages, id)) {
          assert.equal(m.routingKey, `${p}.${s}.stdout`);
          assert.ok(Buffer.byteLength(m.routingKey) <= 255);
          assert.equal(m.body.project, p);
          assert.equal(m.body.service, s);
        }
        assert.ok(!k.lines.some((l) => /amqp_disconnected/.test(l)), "the channel stayed open");
      } finally {
        assert.equal(await k.stop(), 0);
        await binding.close();
      }
    });

    await t.step("a 20000-line burst with OVERFLOW=pause: 0 lost, 0 duplicated", async () => {
      const binding = await freshBinding();
      const k = await startKarotten(env(binding, engine, { OVERFLOW: "pause" }));
      try {
        await k.waitForLog(/ info ready /, TIMEOUT_MS);
        const total = 20_000;
        const id = await engine.run(TEST_IMAGE, "sh", "-c", `seq 1 ${total} | sed 's/^/n /'`);
        await waitFor(() => new Set(numbers(of(binding.messages, id))).size >= total, {
          timeoutMs: TIMEOUT_MS,
          what: `${total} distinct lines`,
        }).catch((err) => {
          throw new Error(
            `${err.message}: ${new Set(numbers(of(binding.messages, id))).size} arrived`,
            { cause: err },
          );
        });
        await k.waitForLog(new RegExp(`detached id=${id.slice(0, 12)} `), TIMEOUT_MS);
        const msgs = of(binding.messages, id);
        // Every line whole and once, however the engine split it into pieces.
        const cut = msgs.filter((m) => !/^n \d+$/.test(String(m.body.message)));
        assert.deepEqual(cut.map((m) => m.body.message).slice(0, 5), [], `${cut.length} cut lines`);
        assert.equal(assertNoGaps(numbers(msgs), "burst"), 0, "duplicates");
        assert.equal(msgs.length, total);
        const ids = new Set(msgs.map((m) => m.messageId));
        assert.equal(ids.size, msgs.length, "message ids are unique");
      } finally {
        assert.equal(await k.stop(), 0);
        await binding.close();
      }
    });
  } finally {
    await engine.stop();
  }
});
