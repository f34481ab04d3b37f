/**
 * An engine that ends a follow stream before the reader took every line, as Podman 4.3 does
 * 250 ms after a container died: shown by a fake engine (a real Docker never does it) while
 * karotten's buffer is full because the real broker blocks publishing (a memory alarm on the
 * test's own RabbitMQ node).
 */
import assert from "node:assert/strict";
import {
  api,
  chunk,
  chunkedStart,
  chunkEnd,
  FakeEngine,
  frame,
  json,
} from "../helpers/fake_engine.ts";
import { startKarotten, withLogTail } from "../helpers/karotten.ts";
import {
  DEFAULT_MEMORY_WATERMARK,
  freshBinding,
  RABBIT_URL,
  setMemoryWatermark,
} from "../helpers/rabbit.ts";
import { waitFor } from "../helpers/deadline.ts";
import { timestampToNanos } from "../../lib/time.ts";

const ID = "ea51e0d".padEnd(64, "0");
const TIMEOUT_MS = 30_000;
/** Lines in the log; the first stream ends after `SENT` of them (they fit in socket buffers). */
const TOTAL = 2_000;
const SENT = 300;

/** 2030-01-01T00:00:01.<n padded to 9>Z */
const ts = (n: number) => `2030-01-01T00:00:01.${String(n).padStart(9, "0")}Z`;
const entry = (n: number) => frame(1, `${ts(n)} line ${n}\n`);

function sinceNanos(since: string): bigint {
  const [s, ns = "0"] = since.split(".");
  return BigInt(s) * 1_000_000_000n + BigInt(ns.padEnd(9, "0"));
}

Deno.test("tailContainer completes by a full read a stopped container's stream that ended while paused", async () => {
  const engine = await FakeEngine.start();
  const binding = await freshBinding();
  let stopped = false;
  const logRequests: string[] = [];
  engine.route(api("/containers/json"), (_req, conn) =>
    json(
      conn,
      200,
      stopped
        ? []
        : [{ Id: ID, Names: ["/early"], Image: "kt/fake", Labels: {}, State: "running" }],
    ));
  engine.route(api(`/containers/${ID}/json`), (_req, conn) =>
    json(conn, 200, {
      Id: ID,
      Name: "/early",
      State: { Running: !stopped, StartedAt: ts(0), FinishedAt: "0001-01-01T00:00:00Z" },
      Config: { Image: "kt/fake", Labels: {}, Tty: false },
    }));
  engine.route(api(`/containers/${ID}/logs`), async (req, conn) => {
    logRequests.push(req.url.search);
    const q = req.url.searchParams;
    await chunkedStart(conn, 200, {});
    if (q.get("follow") === "1") {
      // The attach: the container dies, and the engine ends the follow stream after what the
      // reader had not yet taken... dropping the rest.
      for (let n = 1; n <= SENT; n++) await chunk(conn, entry(n));
      stopped = true;
    } else {
      // A read without following is complete.
      const since = q.get("since");
      const from = since === null ? 0n : sinceNanos(since);
      for (let n = 1; n <= TOTAL; n++) {
        if (timestampToNanos(ts(n)) >= from) await chunk(conn, entry(n));
      }
    }
    await chunkEnd(conn);
    return "keep";
  });
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
    await waitFor(() => stopped, { timeoutMs: TIMEOUT_MS, what: "the first stream to end" });
    await setMemoryWatermark(DEFAULT_MEMORY_WATERMARK);
    alarmed = false;
    await waitFor(() => binding.messages.length >= TOTAL, {
      timeoutMs: TIMEOUT_MS,
      what: `${TOTAL} messages (have ${binding.messages.length})`,
    });
    await k.waitForLog(/ detached id=ea51e0d00000 reason=stopped/, TIMEOUT_MS);
    const got = binding.messages.map((m) => String(m.body.message));
    assert.deepEqual(got, Array.from({ length: TOTAL }, (_, i) => `line ${i + 1}`));
    assert.ok(logRequests.some((s) => /follow=0/.test(s)), "re-read without following");
  } catch (err) {
    throw withLogTail(err, k);
  } finally {
    if (alarmed) await setMemoryWatermark(DEFAULT_MEMORY_WATERMARK);
    assert.equal(await k.stop(), 0);
    await binding.close();
    await engine.close();
  }
});
