import assert from "node:assert/strict";
import { Publisher } from "../../lib/amqp/publisher.ts";
import { delay } from "../../lib/async/delay.ts";
import { DEFAULT_TUNING, type Tuning } from "../../lib/config.ts";
import { ExchangeMissingError } from "../../lib/errors.ts";
import { MessageQueue, type OutMessage } from "../../lib/queue.ts";
import {
  admin,
  CaptureLog,
  type Consumer,
  deadline,
  openTopic,
  RABBIT_URL,
  rabbitmqctl,
  testMessage,
} from "./_broker.ts";

/** A signal that never aborts. */
const NEVER = new AbortController().signal;

const TUNING: Readonly<Tuning> = {
  ...DEFAULT_TUNING,
  queueCapacity: 1024,
  publishWindow: 64,
  amqpBackoffInitialMs: 50,
  amqpBackoffMaxMs: 400,
};

/** A publisher on `exchange` with its queue and log; `stop()` aborts it and awaits `run()`. */
function startPublisher(
  exchange: string,
  opts: { url?: string; debug?: boolean; onConfirmed?: (msg: OutMessage) => void } = {},
) {
  const queue = new MessageQueue(TUNING.queueCapacity, { onConfirmed: opts.onConfirmed });
  const log = new CaptureLog();
  const publisher = new Publisher({
    brokers: { urls: [opts.url ?? RABBIT_URL], tls: {}, variable: "RABBITMQ_URL" },
    exchange,
    queue,
    tuning: TUNING,
    log,
    debug: opts.debug ?? false,
  });
  const ctl = new AbortController();
  const running = publisher.run(ctl.signal);
  return {
    queue,
    log,
    publisher,
    running,
    stop: async () => {
      ctl.abort();
      await running;
    },
  };
}

/** Offers messages `from..to`, waiting for room whenever the queue is full. */
async function feed(queue: MessageQueue, from: number, to: number, signal: AbortSignal) {
  for (let n = from; n <= to; n++) {
    while (!queue.offer(testMessage(n))) await queue.waitForRoom(signal);
  }
}

function assertAllPresent(consumer: Consumer, total: number, maxDuplicates: number) {
  const seen = new Set(consumer.received.map((r) => r.body.n));
  for (let n = 1; n <= total; n++) assert.ok(seen.has(n), `message ${n} is missing`);
  assert.ok(
    consumer.received.length <= total + maxDuplicates,
    `${consumer.received.length} received for ${total} published`,
  );
}

Deno.test("Publisher publishes every message in order with its properties", async () => {
  const topic = await openTopic();
  const p = startPublisher(topic.exchange, { debug: true });
  try {
    await p.publisher.firstConnect();
    const total = 3000;
    await feed(p.queue, 1, total, NEVER);
    await topic.consumer!.waitForCount(total, 20_000);
    const got = topic.consumer!.received;
    assert.deepEqual(got.map((r) => r.body.n), Array.from({ length: total }, (_, i) => i + 1));
    assert.equal(got[0].key, testMessage(1).routingKey);
    assert.ok(got.every((r) => r.contentType === "application/json" && r.deliveryMode === 2));
    await deadline(p.queue.waitForEmpty(NEVER), 5_000, "all confirmed");
    assert.equal(p.log.count("published"), total);
    assert.equal(p.publisher.connected, true);
    const connected = p.log.events.find((e) => e.event === "amqp_connected")!;
    assert.equal(String(connected.fields.url).includes("guest@"), false);
  } finally {
    await p.stop();
    await topic.remove();
  }
  assert.equal(p.publisher.connected, false);
});

Deno.test("Publisher splits bodies over frame_max into body frames, passes of mixed sizes", async () => {
  const topic = await openTopic();
  const url = new URL(RABBIT_URL);
  url.searchParams.set("frameMax", "4096");
  const p = startPublisher(topic.exchange, { url: url.href });
  try {
    await p.publisher.firstConnect();
    const sizes = [64, 4000, 4087, 4088, 4089, 40_000, 300_000, 20];
    const total = 64;
    for (let n = 1; n <= total; n++) {
      while (!p.queue.offer(testMessage(n, sizes[n % sizes.length]))) {
        await p.queue.waitForRoom(NEVER);
      }
    }
    await topic.consumer!.waitForCount(total, 20_000);
    const got = topic.consumer!.received;
    assert.deepEqual(got.map((r) => r.body.n), Array.from({ length: total }, (_, i) => i + 1));
    for (const r of got) {
      const { pad } = r.body as { n: number; pad: string };
      assert.equal(pad.length, Math.max(0, sizes[r.body.n % sizes.length] - 20), `n=${r.body.n}`);
      assert.equal(pad, "x".repeat(pad.length));
    }
    await deadline(p.queue.waitForEmpty(NEVER), 5_000, "all confirmed");
  } finally {
    await p.stop();
    await topic.remove();
  }
});

Deno.test("Publisher.firstConnect rejects with ExchangeMissingError and run() stops", async () => {
  const p = startPublisher(`kt-missing-${crypto.randomUUID().slice(0, 8)}`);
  await assert.rejects(p.publisher.firstConnect(), ExchangeMissingError);
  await p.running;
  await assert.rejects(p.publisher.firstConnect(), ExchangeMissingError);
  assert.equal(await p.publisher.drain(10), 0);
  assert.equal(p.log.count("amqp_reconnect"), 0);
});

Deno.test("Publisher keeps retrying while the broker refuses connections", async () => {
  const p = startPublisher("unused", { url: "amqp://guest:secret@127.0.0.1:1" });
  try {
    p.queue.offer(testMessage(1));
    await p.log.waitFor("amqp_reconnect", 5_000, 3);
    const waits = p.log.events.filter((e) => e.event === "amqp_reconnect").map((e) => e.fields);
    assert.deepEqual(waits.map((f) => f.attempt), [1, 2, 3]);
    assert.ok(waits.every((f) => Number(f.wait_ms) <= TUNING.amqpBackoffMaxMs));
    assert.ok(!JSON.stringify(p.log.events).includes("secret"));
    assert.equal(await p.publisher.drain(50), 1, "the buffered message is left unconfirmed");
    await assert.rejects(p.publisher.firstConnect(), (err) => err instanceof DOMException);
  } finally {
    await p.stop();
  }
});

Deno.test("Publisher.drain publishes what is buffered, then stops run()", async () => {
  const topic = await openTopic();
  const p = startPublisher(topic.exchange);
  try {
    await feed(p.queue, 1, 500, NEVER);
    assert.equal(await p.publisher.drain(10_000), 0);
    await p.running;
    await topic.consumer!.waitForCount(500, 5_000);
    assert.equal(topic.consumer!.received.length, 500);
  } finally {
    await p.stop();
    await topic.remove();
  }
});

Deno.test("Publisher reconnects after a broker bounce and loses nothing", async () => {
  const topic = await openTopic({ durable: true });
  let confirmed = 0;
  const someConfirmed = Promise.withResolvers<void>();
  const p = startPublisher(topic.exchange, {
    onConfirmed: () => {
      if (++confirmed === 1000) someConfirmed.resolve();
    },
  });
  const feeding = new AbortController();
  const total = 20_000;
  let fed: Promise<void> | undefined;
  try {
    await p.log.waitFor("amqp_connected", 5_000);
    fed = feed(p.queue, 1, total, feeding.signal);
    await deadline(someConfirmed.promise, 10_000, "1000 confirms before the bounce");
    await rabbitmqctl("stop_app");
    assert.ok(p.queue.size > 0, "messages are buffered while the broker is down");
    await p.log.waitFor("amqp_disconnected", 10_000);
    await rabbitmqctl("start_app");
    await p.log.waitFor("amqp_connected", 30_000, 2);
    await deadline(fed, 60_000, "feeding all messages");
    await deadline(p.queue.waitForEmpty(NEVER), 30_000, "all confirmed");
    const consumer = await topic.consume();
    await consumer.waitForAll(total, 30_000);
    assertAllPresent(consumer, total, TUNING.publishWindow);
  } finally {
    feeding.abort();
    await fed?.catch((err) => assert.ok(feeding.signal.aborted, String(err)));
    await rabbitmqctl("start_app"); // no-op when running; restores the broker after a failure
    await p.stop();
    await topic.remove();
  }
});

Deno.test("Publisher stops publishing while the broker blocks it and resumes after", async () => {
  const topic = await openTopic();
  const p = startPublisher(topic.exchange, { debug: true });
  try {
    await feed(p.queue, 1, 10, NEVER);
    await topic.consumer!.waitForCount(10, 5_000);
    await rabbitmqctl("set_vm_memory_high_watermark", "0.0001");
    // The broker blocks a connection when it next publishes.
    p.queue.offer(testMessage(11));
    await p.log.waitFor("amqp_blocked", 10_000);
    assert.equal(p.queue.blocked, true);
    const publishedBefore = p.log.count("published");
    await feed(p.queue, 12, 100, NEVER);
    // Proving that nothing happens takes a window of time: give the publisher 200 ms.
    await delay(200);
    assert.equal(p.log.count("published"), publishedBefore, "nothing is published while blocked");
    assert.notEqual(p.queue.next(), undefined);
    // Fill up: drops now count as blocked.
    let total = 100;
    while (p.queue.offer(testMessage(total + 1))) total++;
    assert.equal(p.queue.offer(testMessage(total + 1)), false);
    const dropped = p.queue.takeDropped();
    assert.deepEqual([dropped.full, dropped.blocked], [0, 2]);
    await rabbitmqctl("set_vm_memory_high_watermark", "0.4");
    await p.log.waitFor("amqp_unblocked", 10_000);
    await topic.consumer!.waitForAll(total, 10_000);
    assertAllPresent(topic.consumer!, total, 0);
  } finally {
    await rabbitmqctl("set_vm_memory_high_watermark", "0.4");
    await p.stop();
    await topic.remove();
  }
});

Deno.test("Publisher shuts down while the broker blocks it: close times out, socket destroyed", async () => {
  const topic = await openTopic();
  const p = startPublisher(topic.exchange);
  try {
    await p.publisher.firstConnect();
    await rabbitmqctl("set_vm_memory_high_watermark", "0.0001");
    await feed(p.queue, 1, 20, NEVER);
    await p.log.waitFor("amqp_blocked", 10_000);
    const started = performance.now();
    assert.equal(await p.publisher.drain(100), 20, "nothing is confirmed while blocked");
    await p.running;
    const tookMs = performance.now() - started;
    assert.ok(
      tookMs < 100 + DEFAULT_TUNING.amqpCloseTimeoutMs + 1_000,
      `shutdown took ${tookMs} ms`,
    );
  } finally {
    await rabbitmqctl("set_vm_memory_high_watermark", "0.4");
    await p.stop();
    await topic.remove();
  }
});

Deno.test("Publisher reports a missing exchange on reconnect and retries until it is back", async () => {
  const topic = await openTopic();
  const p = startPublisher(topic.exchange);
  try {
    await feed(p.queue, 1, 5, NEVER);
    await topic.consumer!.waitForCount(5, 5_000);
    await admin((ch) => ch.deleteExchange(topic.exchange).then(() => {}));
    p.queue.offer(testMessage(6)); // publishing into the missing exchange closes the channel
    await p.log.waitFor("exchange_missing", 10_000, 2);
    await admin(async (ch) => {
      await ch.assertExchange(topic.exchange, "topic", { durable: false });
    });
    await topic.consumer!.bind(topic.exchange);
    await topic.consumer!.waitForCount(6, 10_000);
    assert.equal(topic.consumer!.received[5].body.n, 6);
  } finally {
    await p.stop();
    await topic.remove();
  }
});
