/**
 * Several brokers and a broker coming back: failover in order through TCP proxies the test
 * controls, a broker that opens the connection and answers nothing on it (a stalling proxy), and
 * how soon publishing resumes after `rabbitmqctl start_app`.
 */
import assert from "node:assert/strict";
import { Publisher } from "../../lib/amqp/publisher.ts";
import { delay } from "../../lib/async/delay.ts";
import { DEFAULT_TUNING, type Tuning } from "../../lib/config.ts";
import { MessageQueue } from "../../lib/queue.ts";
import {
  CaptureLog,
  deadline,
  openTopic,
  RABBIT_URL,
  rabbitmqctl,
  testMessage,
} from "./_broker.ts";
import { waitFor } from "../helpers/deadline.ts";
import { freePort, startProxy } from "../helpers/proxy.ts";

const NEVER = new AbortController().signal;

/** The broker behind the proxies. */
const BROKER = (() => {
  const url = new URL(RABBIT_URL);
  return { host: url.hostname, port: Number(url.port || 5672) };
})();

/** The broker's URL with its port replaced by `port` (a proxy, or a closed port). */
function urlAt(port: number): string {
  const url = new URL(RABBIT_URL);
  url.port = String(port);
  return url.toString();
}

/**
 * A publisher on `exchange` through `urls`; `stop()` aborts it and awaits `run()`.
 * `onConfirmed` is the queue's hook.
 */
function startPublisher(
  exchange: string,
  urls: string[],
  tuning: Readonly<Tuning>,
  onConfirmed?: () => void,
) {
  const queue = new MessageQueue(tuning.queueCapacity, { onConfirmed });
  const log = new CaptureLog();
  const publisher = new Publisher({
    brokers: { urls, tls: {}, variable: "RABBITMQ_URL" },
    exchange,
    queue,
    tuning,
    log,
    debug: false,
  });
  const ctl = new AbortController();
  const running = publisher.run(ctl.signal);
  return {
    queue,
    log,
    publisher,
    stop: async () => {
      ctl.abort();
      await running;
    },
  };
}

/** The port of the broker each `amqp_connected` line names, in order. */
function connectedPorts(log: CaptureLog): number[] {
  return log.events.filter((e) => e.event === "amqp_connected")
    .map((e) => Number(new URL(String(e.fields.url)).port));
}

Deno.test("Publisher moves to the next broker in order, and back, without losing or repeating a line", async () => {
  const tuning = { ...DEFAULT_TUNING, amqpBackoffInitialMs: 100, amqpBackoffMaxMs: 1_000 };
  const topic = await openTopic();
  const firstPort = freePort(); // nothing listens there yet: connections are refused
  const second = await startProxy({ target: BROKER });
  let first: Awaited<ReturnType<typeof startProxy>> | undefined;
  const p = startPublisher(topic.exchange, [urlAt(firstPort), urlAt(second.port)], tuning);
  try {
    for (let n = 1; n <= 100; n++) assert.ok(p.queue.offer(testMessage(n)));
    await topic.consumer!.waitForAll(100, 15_000);
    await deadline(p.queue.waitForEmpty(NEVER), 10_000, "lines 1..100 confirmed");
    assert.deepEqual(connectedPorts(p.log), [second.port]);
    const refused = p.log.events.find((e) => e.event === "amqp_reconnect")!;
    assert.match(String(refused.fields.reason), /ECONNREFUSED/);
    assert.equal(new URL(String(refused.fields.broker)).port, String(firstPort));

    // The first broker comes up, the second goes away: karotten moves on to the first.
    first = await startProxy({ target: BROKER, port: firstPort });
    await second.stop();
    await p.log.waitFor("amqp_connected", 15_000, 2);
    assert.deepEqual(connectedPorts(p.log), [second.port, firstPort]);
    for (let n = 101; n <= 200; n++) assert.ok(p.queue.offer(testMessage(n)));
    await topic.consumer!.waitForAll(200, 15_000);
    await deadline(p.queue.waitForEmpty(NEVER), 10_000, "lines 101..200 confirmed");
    assert.deepEqual(
      topic.consumer!.received.map((r) => r.body.n),
      Array.from({ length: 200 }, (_, i) => i + 1),
      "every line once, in order",
    );
    assert.equal(p.log.count("amqp_disconnected"), 1);
  } finally {
    await p.stop();
    await second.stop();
    await first?.stop();
    await topic.remove();
  }
});

/** Short deadlines and waits for the tests of a broker that answers only the handshake. */
const STALL_TUNING: Readonly<Tuning> = {
  ...DEFAULT_TUNING,
  amqpConnectTimeoutMs: 1_000,
  amqpBackoffInitialMs: 100,
  amqpBackoffMaxMs: 1_000,
};

/** The `n` of every message `topic` received, in order of arrival. */
function receivedNumbers(topic: Awaited<ReturnType<typeof openTopic>>): number[] {
  return topic.consumer!.received.map((r) => r.body.n);
}

/** Every `amqp_reconnect` line, checked: it names the broker without its password. */
function reconnectLines(log: CaptureLog) {
  const lines = log.events.filter((e) => e.event === "amqp_reconnect");
  for (const line of lines) {
    assert.doesNotMatch(JSON.stringify(line.fields), /:guest@/, "no password in the log line");
  }
  return lines;
}

Deno.test("Publisher leaves a broker that opens the connection but never answers channel.open, for the next one", async () => {
  const topic = await openTopic();
  const stalling = await startProxy({ target: BROKER, stallChannels: true });
  const p = startPublisher(topic.exchange, [urlAt(stalling.port), RABBIT_URL], STALL_TUNING);
  try {
    for (let n = 1; n <= 100; n++) assert.ok(p.queue.offer(testMessage(n)));
    await topic.consumer!.waitForAll(100, 15_000);
    await deadline(p.queue.waitForEmpty(NEVER), 10_000, "lines 1..100 confirmed");
    assert.deepEqual(
      receivedNumbers(topic),
      Array.from({ length: 100 }, (_, i) => i + 1),
      "every line once, in order",
    );
    assert.deepEqual(connectedPorts(p.log), [BROKER.port]);
    const [left] = reconnectLines(p.log);
    assert.equal(new URL(String(left.fields.broker)).port, String(stalling.port));
    assert.match(String(left.fields.reason), /did not answer channel\.open within 1000 ms/);
    // The stalled connection was opened, left by karotten (a connection.close that the broker
    // answered), and is gone.
    assert.equal(stalling.stalled, 1);
    assert.equal(stalling.closedByClient, 1);
    await waitFor(() => stalling.open === 0, {
      timeoutMs: 10_000,
      what: "the stalled connection to be closed",
    });
  } finally {
    await stalling.stop(); // first: it ends a session that would otherwise hang forever
    await p.stop();
    await topic.remove();
  }
});

Deno.test("Publisher recovers when its only broker stops leaving channel.open unanswered", async () => {
  const topic = await openTopic();
  const proxy = await startProxy({ target: BROKER, stallChannels: true });
  const p = startPublisher(topic.exchange, [urlAt(proxy.port)], STALL_TUNING);
  try {
    for (let n = 1; n <= 50; n++) assert.ok(p.queue.offer(testMessage(n)));
    await waitFor(() => proxy.stalled >= 1, { timeoutMs: 10_000, what: "a stalled session" });
    // New connections pass everything from now on; the one already stalled stays stalled.
    proxy.stallChannels = false;
    await topic.consumer!.waitForAll(50, 15_000);
    await deadline(p.queue.waitForEmpty(NEVER), 10_000, "lines 1..50 confirmed");
    assert.deepEqual(
      receivedNumbers(topic),
      Array.from({ length: 50 }, (_, i) => i + 1),
      "every line once, in order",
    );
    assert.equal(p.log.count("amqp_connected"), 1);
    const lines = reconnectLines(p.log);
    assert.ok(lines.length >= 1);
    for (const line of lines) {
      assert.match(String(line.fields.reason), /did not answer channel\.open within 1000 ms/);
    }
    assert.equal(proxy.closedByClient, proxy.stalled, "every stalled connection left by karotten");
  } finally {
    await proxy.stop(); // first: it ends a session that would otherwise hang forever
    await p.stop();
    await topic.remove();
  }
});

/** How long the broker's app stays stopped in the bounce below (the scenario). */
const OUTAGE_MS = 7_000;

Deno.test("Publisher publishes again within 2 s after the broker's app comes back from a 7 s outage", async () => {
  // The daemon's own backoff and probe interval.
  const topic = await openTopic({ durable: true });
  let firstConfirmAt = 0;
  let measuring = false;
  const p = startPublisher(topic.exchange, [RABBIT_URL], DEFAULT_TUNING, () => {
    if (measuring) firstConfirmAt ||= performance.now();
  });
  let stopped = false;
  try {
    p.queue.offer(testMessage(1));
    await deadline(p.queue.waitForEmpty(NEVER), 10_000, "line 1 confirmed");
    await rabbitmqctl("stop_app");
    stopped = true;
    await p.log.waitFor("amqp_disconnected", 10_000);
    for (let n = 2; n <= 50; n++) assert.ok(p.queue.offer(testMessage(n)));
    // The outage itself is the scenario: the broker stays away this long.
    await delay(OUTAGE_MS);
    measuring = true;
    const startIssued = performance.now();
    await rabbitmqctl("start_app");
    stopped = false;
    const startReturned = performance.now();
    await deadline(p.queue.waitForEmpty(NEVER), 30_000, "lines 2..50 confirmed");
    const afterStart = firstConfirmAt - startReturned;
    console.log(
      `first message confirmed ${Math.round(afterStart)} ms after start_app returned ` +
        `(${Math.round(firstConfirmAt - startIssued)} ms after it was issued; ` +
        `start_app took ${Math.round(startReturned - startIssued)} ms; ` +
        `${p.log.count("amqp_reconnect")} attempts while away)`,
    );
    assert.ok(
      afterStart <= 5_000,
      `publishing resumed ${Math.round(afterStart)} ms after start_app`,
    );
    const consumer = await topic.consume();
    await consumer.waitForAll(50, 10_000);
  } finally {
    if (stopped) await rabbitmqctl("start_app"); // restores the broker after a failure
    await p.stop();
    await topic.remove();
  }
});
