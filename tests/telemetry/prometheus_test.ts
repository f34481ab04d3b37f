import assert from "node:assert/strict";
import {
  METRIC_NAMES,
  type ProcessMemory,
  renderPrometheus,
} from "../../lib/telemetry/prometheus.ts";
import { healthOf } from "../../lib/telemetry/health.ts";
import { type Snapshot, takeSnapshot } from "../../lib/telemetry/snapshot.ts";
import { MessageQueue } from "../../lib/queue.ts";
import { Buffer } from "node:buffer";
import { newContainerCounters } from "../../lib/telemetry/container_counters.ts";
import { promtool } from "../helpers/promtool.ts";

function sample(): Snapshot {
  const queue = new MessageQueue(10);
  const body = Buffer.from("{}");
  const ts = new Date(Date.now() - 90_000).toISOString().replace("Z", "000000Z");
  queue.offer({
    routingKey: "a.b.stdout",
    body,
    containerId: "c1",
    timestamp: ts,
    seq: 1,
    messageId: "m1",
  });
  queue.offer({
    routingKey: "a.b.stdout",
    body,
    containerId: "c1",
    timestamp: ts,
    seq: 2,
    messageId: "m2",
  });
  queue.next();
  queue.confirm(queue.markPublished());
  queue.next();
  queue.markPublished();
  for (let i = 0; i < 10; i++) {
    queue.offer({
      routingKey: "a.b.stdout",
      body,
      containerId: "c1",
      timestamp: ts,
      seq: 3 + i,
      messageId: `m${3 + i}`,
    });
  }
  const a = {
    ...newContainerCounters(),
    project: "shop",
    service: 'we"b\\x',
    name: "a",
    stdout: 5,
  };
  const b = { ...newContainerCounters(), project: "p", service: "s", name: "b", stderr: 2 };
  const pending = newContainerCounters();
  return takeSnapshot({
    containers: { attached: 3, linesRead: 42, counters: () => [a, pending, b] },
    queue,
    broker: { connected: false, reconnects: 2 },
    engine: { up: true },
  }, 1);
}

const MEMORY: ProcessMemory = {
  rss: 60_000_000,
  heapTotal: 12_000_000,
  heapUsed: 9_000_000,
  external: 2_500_000,
};

Deno.test("takeSnapshot reads the queue's totals and bounds the per-container series", () => {
  const s = sample();
  assert.equal(s.linesRead, 42);
  assert.equal(s.published, 2);
  assert.equal(s.confirmed, 1);
  assert.equal(s.droppedFull, 1);
  assert.equal(s.bufferMessages, 10);
  assert.equal(s.bufferBytes, 20);
  assert.ok(s.oldestUnconfirmedSeconds >= 89 && s.oldestUnconfirmedSeconds < 120);
  assert.deepEqual(s.containers.map((c) => c.container), ["a"]);
  assert.equal(s.containersOmitted, 1, "the uninspected one is not counted, b is omitted");
});

Deno.test("renderPrometheus writes every family with HELP and TYPE, labels escaped", () => {
  const text = renderPrometheus(sample(), MEMORY);
  for (const name of METRIC_NAMES) {
    assert.match(text, new RegExp(`^# TYPE ${name} (counter|gauge)$`, "m"));
    if (/_total$/.test(name)) assert.match(text, new RegExp(`^# TYPE ${name} counter$`, "m"));
  }
  assert.match(
    text,
    /^karotten_container_lines_read_total\{project="shop",service="we\\"b\\\\x",container="a",stream="stdout"\} 5$/m,
  );
  assert.match(text, /^karotten_lines_dropped_total\{cause="full"\} 1$/m);
  assert.match(text, /^karotten_broker_connected 0$/m);
  assert.match(
    text,
    /^# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 60000000$/m,
  );
  assert.match(text, /^karotten_js_heap_used_bytes 9000000$/m);
  assert.match(text, /^karotten_js_heap_total_bytes 12000000$/m);
  assert.match(text, /^karotten_js_external_memory_bytes 2500000$/m);
});

Deno.test("renderPrometheus output passes promtool check metrics", async () => {
  await promtool(["check", "metrics"], renderPrometheus(sample(), MEMORY));
});

Deno.test("healthOf: engine down, or broker away with the buffer at 90 %, is unhealthy", () => {
  const base = sample();
  const at = (fill: number, connected: boolean, engineUp = true) =>
    healthOf({
      ...base,
      bufferMessages: fill,
      bufferCapacity: 100,
      brokerConnected: connected,
      engineUp,
    });
  assert.equal(at(89, false).ok, true);
  assert.deepEqual(at(90, false), {
    ok: false,
    body: {
      status: "unhealthy",
      reason: "broker disconnected and buffer 90 % full",
      engine: "up",
      broker: "disconnected",
      buffer_fill: 0.9,
    },
  });
  assert.equal(at(100, true).ok, true);
  assert.equal(at(0, true, false).body.reason, "docker engine does not answer pings");
});
