/**
 * An engine that ends a follow stream before the reader took every line (Podman 4.3 250 ms after
 * a container died; dockerd 20.10 can too), with `OVERFLOW=drop`: the stopped container's log is
 * completed by a full read, as in pause mode (`tail_early_end_test.ts`). A fake engine shows it.
 */
import assert from "node:assert/strict";
import { startKarotten, withLogTail } from "../helpers/karotten.ts";
import { freshBinding, RABBIT_URL } from "../helpers/rabbit.ts";
import { waitFor } from "../helpers/deadline.ts";
import { earlyEndEngine, TOTAL } from "./_early_end_engine.ts";

const TIMEOUT_MS = 30_000;

Deno.test("OVERFLOW=drop: a stopped container's stream that ended early is completed by a full read", async () => {
  const { engine, state } = await earlyEndEngine();
  const binding = await freshBinding();
  const k = await startKarotten({
    RABBITMQ_URL: RABBIT_URL,
    DOCKER_SOCK: engine.sock,
    EXCHANGE: binding.exchange,
    OVERFLOW: "drop",
    KAROTTEN_TUNING: JSON.stringify({ reattachBackoffInitialMs: 20 }),
  });
  try {
    await k.waitForLog(/ detached id=ea51e0d00000 reason=stopped/, TIMEOUT_MS);
    await waitFor(() => binding.messages.length >= TOTAL, {
      timeoutMs: TIMEOUT_MS,
      what: `${TOTAL} messages (have ${binding.messages.length})`,
    }).catch(() => {});
    const got = binding.messages.map((m) => String(m.body.message));
    assert.deepEqual(got, Array.from({ length: TOTAL }, (_, i) => `line ${i + 1}`));
    assert.ok(state.logRequests.some((s) => /follow=0/.test(s)), "re-read without following");
    assert.ok(!k.lines.some((l) => / warn dropped /.test(l)), "nothing dropped");
  } catch (err) {
    throw withLogTail(err, k);
  } finally {
    assert.equal(await k.stop(), 0);
    await binding.close();
    await engine.close();
  }
});
