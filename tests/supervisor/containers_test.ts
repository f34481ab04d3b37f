import assert from "node:assert/strict";
import { DEFAULT_TUNING, loadConfig, type Tuning } from "../../lib/config.ts";
import type { Position } from "../../lib/positions.ts";
import { MessageQueue } from "../../lib/queue.ts";
import { Supervisor } from "../../lib/supervisor/containers.ts";
import { toSinceParam } from "../../lib/time.ts";
import { CaptureLog } from "../amqp/_broker.ts";
import { waitFor, withDeadline } from "../helpers/deadline.ts";
import { ScriptedEngine } from "./_engine.ts";

const STEP_MS = 5_000;
const A = "a".repeat(64);
const B = "b".repeat(64);

/** A supervisor on a scripted engine, with short intervals; `received()` drains its queue. */
function harness(tuning: Partial<Tuning> = {}) {
  const engine = new ScriptedEngine();
  const queue = new MessageQueue(1024);
  const log = new CaptureLog();
  const base = loadConfig((name) => name === "RABBITMQ_URL" ? "amqp://127.0.0.1:5672" : undefined);
  const config = {
    ...base,
    tuning: {
      ...DEFAULT_TUNING,
      reconcileIntervalMs: 100,
      reattachBackoffInitialMs: 20,
      reattachBackoffMaxMs: 50,
      dieGraceMs: 200,
      ...tuning,
    },
  };
  const positions = new Map<string, Position>();
  const supervisor = new Supervisor({ docker: engine, queue, log, config, positions });
  const stopper = new AbortController();
  const ready = Promise.withResolvers<number>();
  let running: Promise<void> | undefined;
  const lines: string[] = [];
  const received = () => {
    for (let m = queue.next(); m !== undefined; m = queue.next()) {
      const body = JSON.parse(m.body.toString());
      lines.push(`${body.container_name}:${body.message}`);
      queue.confirm(queue.markPublished());
    }
    return lines;
  };
  return {
    engine,
    log,
    positions,
    supervisor,
    received,
    /** Starts the supervisor; resolves with the count it reports ready. */
    run: () => {
      running = supervisor.run(stopper.signal, (n) => ready.resolve(n));
      return withDeadline(ready.promise, STEP_MS, "ready");
    },
    stop: async () => {
      stopper.abort();
      await running;
    },
    /** Resolves once `want` lines (in this order) were received. */
    until: (want: string[], what: string) =>
      waitFor(() => received().length >= want.length, { timeoutMs: STEP_MS, what }).then(() =>
        assert.deepEqual(received(), want, what)
      ),
    /** Resolves once `event` was logged with the fields given. */
    logged: (event: string, fields: Record<string, unknown>) =>
      waitFor(
        () =>
          log.events.some((e) =>
            e.event === event && Object.entries(fields).every(([k, v]) => e.fields[k] === v)
          ),
        { timeoutMs: STEP_MS, what: `${event} ${JSON.stringify(fields)}` },
      ),
  };
}

Deno.test("Supervisor attaches running containers from now and new ones from their first line", async () => {
  const h = harness();
  h.engine.start(A, "a", false);
  h.engine.write(A, "before");
  try {
    assert.equal(await h.run(), 1);
    await waitFor(() => h.engine.followers(A) === 1, { timeoutMs: STEP_MS, what: "a followed" });
    h.engine.write(A, "a1");
    await h.until(["a:a1"], "a's new line only");
    h.engine.start(B, "b");
    h.engine.write(B, "b1");
    await h.until(["a:a1", "b:b1"], "b from its first line");
    assert.deepEqual(h.engine.logsRequests.map((r) => r.start.kind), ["now", "beginning"]);
  } finally {
    await h.stop();
  }
});

Deno.test("Supervisor detaches a container that dies, after its last lines, and keeps its position", async () => {
  const h = harness();
  try {
    await h.run();
    h.engine.start(A, "a");
    h.engine.write(A, "1", "2");
    await h.until(["a:1", "a:2"], "lines while running");
    h.engine.write(A, "last");
    h.engine.stop(A);
    await h.logged("detached", { id: A.slice(0, 12), reason: "stopped" });
    assert.deepEqual(h.received(), ["a:1", "a:2", "a:last"]);
    assert.equal(h.positions.get(A)?.count, 1);
    assert.ok(h.positions.get(A)?.ts.startsWith("2026-01-01T"));
  } finally {
    await h.stop();
  }
});

Deno.test("Supervisor re-attaches a restarted container where it stopped, without repeats", async () => {
  const h = harness();
  try {
    await h.run();
    h.engine.start(A, "a");
    h.engine.write(A, "1", "2");
    await h.until(["a:1", "a:2"], "first run");
    h.engine.stop(A);
    h.engine.start(A, "a");
    h.engine.write(A, "3");
    await h.until(["a:1", "a:2", "a:3"], "second run, nothing repeated");
    const last = h.engine.logsRequests.at(-1)!;
    assert.equal(last.start.kind, "since", "the re-attach resumes");
  } finally {
    await h.stop();
  }
});

Deno.test("Supervisor attaches a container whose start event was missed at the next listing", async () => {
  const h = harness();
  try {
    assert.equal(await h.run(), 0);
    h.engine.start(A, "a", false);
    await h.logged("reconcile_attach", { id: A.slice(0, 12) });
    await waitFor(() => h.engine.followers(A) === 1, { timeoutMs: STEP_MS, what: "a followed" });
    h.engine.write(A, "found");
    await h.until(["a:found"], "the reconciled container's line");
  } finally {
    await h.stop();
  }
});

Deno.test("Supervisor treats an attached container missing from the listing as died", async () => {
  const h = harness();
  try {
    await h.run();
    h.engine.start(A, "a");
    h.engine.write(A, "1");
    await h.until(["a:1"], "a attached");
    // The die event is lost and the stream stays open, as with a stuck engine.
    h.engine.stop(A, { announce: false, keepStreams: true });
    await h.logged("reconcile_gone", { id: A.slice(0, 12) });
    await h.logged("logs_stream_silent", { id: A.slice(0, 12) });
    await h.logged("detached", { id: A.slice(0, 12), reason: "stopped" });
  } finally {
    await h.stop();
  }
});

Deno.test("Supervisor ends a tail whose container dies during its re-attach backoff", async () => {
  const h = harness({ reattachBackoffInitialMs: 400, reattachBackoffMaxMs: 400 });
  try {
    await h.run();
    h.engine.failLogs = new Error("engine hiccup");
    h.engine.start(A, "a");
    await h.logged("logs_stream_failed", { id: A.slice(0, 12) });
    h.engine.stop(A);
    await h.logged("detached", { id: A.slice(0, 12), reason: "stopped" });
    assert.equal(h.engine.logsRequests.length, 1, "no second logs request for a stopped container");
  } finally {
    await h.stop();
  }
});

Deno.test("Supervisor resumes from the position the owner kept: since its timestamp", async () => {
  const h = harness();
  try {
    await h.run();
    h.engine.start(A, "a");
    h.engine.write(A, "1");
    await h.until(["a:1"], "a attached");
    h.engine.stop(A);
    await h.logged("detached", { id: A.slice(0, 12), reason: "stopped" });
    const kept = h.positions.get(A)!;
    h.engine.start(A, "a");
    await waitFor(() => h.engine.logsRequests.length === 2, { timeoutMs: STEP_MS, what: "again" });
    assert.deepEqual(h.engine.logsRequests[1].start, {
      kind: "since",
      since: toSinceParam(kept.ts),
    });
  } finally {
    await h.stop();
  }
});

Deno.test("Supervisor keeps nothing of 1,000 containers that came and went, signals included", async () => {
  const h = harness();
  try {
    await h.run();
    const id = (i: number) => i.toString(16).padStart(64, "c");
    for (let batch = 0; batch < 1_000; batch += 50) {
      for (let i = batch; i < batch + 50; i++) {
        h.engine.start(id(i), `churn-${i}`);
        h.engine.write(id(i), `line ${i}`);
      }
      await waitFor(() => h.received().length >= batch + 50, { timeoutMs: STEP_MS, what: "lines" });
      for (let i = batch; i < batch + 50; i++) h.engine.stop(id(i));
      await waitFor(() => h.supervisor.attached === 0, { timeoutMs: STEP_MS, what: "detached" });
      for (let i = batch; i < batch + 50; i++) h.engine.remove(id(i));
    }
    await waitFor(() => h.positions.size === 0, {
      timeoutMs: STEP_MS,
      what: "positions forgotten",
    });
    assert.equal(h.received().length, 1_000);
    // A tail's signal, and every signal derived from it, is aborted once the tail ended: a
    // derived signal with a listener on is otherwise kept by the daemon's signal for its life.
    const live = h.engine.requestSignals.filter((s) => !s.aborted).length;
    assert.ok(h.engine.requestSignals.length >= 2_000);
    assert.equal(live, 0, "signals of ended tails still live");
  } finally {
    await h.stop();
  }
});
