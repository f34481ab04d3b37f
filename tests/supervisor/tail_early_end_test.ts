/**
 * An engine that ends a follow stream before the reader took every line, as Podman 4.3 does
 * 250 ms after a container died: shown by a fake engine (a real Docker never does it) while
 * karotten's buffer is full because the real broker blocks publishing (a memory alarm on the
 * test's own RabbitMQ node).
 */
import assert from "node:assert/strict";
import { startKarotten, withLogTail } from "../helpers/karotten.ts";
import {
  DEFAULT_MEMORY_WATERMARK,
  freshBinding,
  RABBIT_URL,
  setMemoryWatermark,
} from "../helpers/rabbit.ts";
import { waitFor } from "../helpers/deadline.ts";
import { earlyEndEngine, TOTAL } from "./_early_end_engine.ts";

const TIMEOUT_MS = 30_000;

Deno.test("tailContainer completes by a full read a stopped container's stream that ended while paused", async () => {
  const { engine, state } = await earlyEndEngine();
  const binding = await freshBinding();
  // The broker blocks publishing from the start: the buffer fills and reading pauses.
  await setMemoryWatermark(0.0001);
  let alarmed = true;
  const k = await startKarotten({
    RABBITMQ_URL: RABBIT_URL,
    DOCKER_SOCK: engine.sock,
    EXCHANGE: binding.exchange,
    KAROTTEN_TUNING: JSON.stringify({ queueCapacity: 50, reattachBackoffInitialMs: 20 }),
  });
  try {
    await k.waitForLog(/ amqp_blocked /, TIMEOUT_MS);
    await waitFor(() => state.stopped, { timeoutMs: TIMEOUT_MS, what: "the first stream to end" });
    await setMemoryWatermark(DEFAULT_MEMORY_WATERMARK);
    alarmed = false;
    await waitFor(() => binding.messages.length >= TOTAL, {
      timeoutMs: TIMEOUT_MS,
      what: `${TOTAL} messages (have ${binding.messages.length})`,
    });
    await k.waitForLog(/ detached id=ea51e0d00000 reason=stopped/, TIMEOUT_MS);
    const got = binding.messages.map((m) => String(m.body.message));
    assert.deepEqual(got, Array.from({ length: TOTAL }, (_, i) => `line ${i + 1}`));
    assert.ok(state.logRequests.some((s) => /follow=0/.test(s)), "re-read without following");
  } catch (err) {
    throw withLogTail(err, k);
  } finally {
    if (alarmed) await setMemoryWatermark(DEFAULT_MEMORY_WATERMARK);
    assert.equal(await k.stop(), 0);
    await binding.close();
    await engine.close();
  }
});
