/**
 * Publisher throughput and CPU cost against the real broker, next to bare amqplib loops: without
 * confirms (the ceiling), and with the same confirm window using per-message confirm callbacks
 * or the channel's 'ack'/'nack' events. karotten's target: confirms cost ≤ 10 % throughput.
 *
 *   deno run -A bench/publisher_bench.ts [messages=50000] [url] [window]
 *
 * CPU is the process's utime+stime from /proc/self/stat (100 Hz ticks), so the broker's own
 * work is not counted. Each variant runs once to warm up, then measured.
 * @module
 */
// @ts-types="@types/amqplib"
import amqp from "amqplib";
import { Buffer } from "node:buffer";
import { Publisher } from "../lib/amqp/publisher.ts";
import { DEFAULT_TUNING } from "../lib/config.ts";
import { createLogger } from "../lib/log.ts";
import { MessageQueue, type OutMessage } from "../lib/queue.ts";
import { messageId } from "../lib/message.ts";

const TOTAL = Number(Deno.args[0] ?? 50_000);
const URL = Deno.args[1] ?? "amqp://guest:guest@127.0.0.1:5672";
const WARMUP = Math.min(TOTAL, 10_000);
const WINDOW = Number(Deno.args[2] ?? DEFAULT_TUNING.publishWindow);
const TICKS_PER_S = 100;
const OPTIONS = { contentType: "application/json", persistent: true };

/** utime + stime of this process, in clock ticks. */
function cpuTicks(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]); // fields 14 and 15 of proc(5)
}

function messages(n: number): OutMessage[] {
  return Array.from({ length: n }, (_, i) => ({
    routingKey: `bench.c${i % 16}.stdout`,
    body: Buffer.from(JSON.stringify({
      container: "f".repeat(12),
      ts: "2024-05-01T12:00:00.123456789Z",
      stream: "stdout",
      line: `${i} `.padEnd(200, "x"),
    })),
    containerId: "f".repeat(64),
    timestamp: "2024-05-01T12:00:00.123456789Z",
    seq: i + 1,
    messageId: messageId("f".repeat(12), "2024-05-01T12:00:00.123456789Z", i + 1),
  }));
}

/** A variant: `setup` connects (not timed) and returns the timed run. */
type Variant = (ex: string, msgs: OutMessage[]) => Promise<() => Promise<void>>;

/** Bare loop without confirms: the ceiling that the confirm window is measured against. */
const bareNoConfirms: Variant = async (ex, msgs) => {
  const ch = await conn.createChannel();
  return async () => {
    for (const m of msgs) {
      if (!ch.publish(ex, m.routingKey, m.body, OPTIONS)) {
        await new Promise<void>((resolve) => ch.once("drain", () => resolve()));
      }
    }
    // Wait until the broker has routed them all (a plain channel has no confirms).
    while ((await admin.checkQueue(q)).messageCount < msgs.length) {
      await new Promise<void>((resolve) => setTimeout(resolve, 5));
    }
    await ch.close();
  };
};

/** Bare loop: ConfirmChannel, one closure per message (what per-message correctness needs). */
const bareCallbacks: Variant = async (ex, msgs) => {
  const ch = await conn.createConfirmChannel();
  return async () => {
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    let sent = 0, confirmed = 0, inFlight = 0;
    const pump = () => {
      while (inFlight < WINDOW && sent < msgs.length) {
        const m = msgs[sent++];
        const n = sent;
        inFlight++;
        ch.publish(ex, m.routingKey, m.body, OPTIONS, (err: unknown) => {
          if (err !== null) return reject(new Error(`message ${n} nacked`, { cause: err }));
          inFlight--;
          if (++confirmed === msgs.length) resolve();
          else pump();
        });
      }
    };
    pump();
    await promise;
    await ch.close();
  };
};

/** Bare loop: ConfirmChannel without callbacks, counting the channel's 'ack' events. */
const bareEvents: Variant = async (ex, msgs) => {
  const ch = await conn.createConfirmChannel(); // delivery tags start at 1
  return async () => {
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    let sent = 0, confirmed = 0, lowest = 1;
    const pump = () => {
      while (sent - confirmed < WINDOW && sent < msgs.length) {
        const m = msgs[sent++];
        ch.publish(ex, m.routingKey, m.body, OPTIONS);
      }
    };
    ch.on("ack", (f: { deliveryTag: number; multiple: boolean }) => {
      const n = f.multiple ? f.deliveryTag - lowest + 1 : 1;
      if (f.multiple) lowest = f.deliveryTag + 1;
      else if (f.deliveryTag === lowest) lowest++;
      confirmed += n;
      if (confirmed === msgs.length) resolve();
      else pump();
    });
    ch.on("nack", () => reject(new Error("nacked")));
    pump();
    await promise;
    await ch.close();
  };
};

/** karotten's Publisher fed through the bounded queue; timed from the first offer to closed. */
const viaPublisher: Variant = async (ex, msgs) => {
  const queue = new MessageQueue(DEFAULT_TUNING.queueCapacity);
  const publisher = new Publisher({
    brokers: { urls: [URL], tls: {}, variable: "RABBITMQ_URL" },
    exchange: ex,
    queue,
    tuning: { ...DEFAULT_TUNING, publishWindow: WINDOW },
    log: createLogger({ write: () => {} }),
    debug: false,
  });
  const ctl = new AbortController();
  const running = publisher.run(ctl.signal);
  await publisher.firstConnect();
  return async () => {
    for (const m of msgs) {
      while (!queue.offer(m)) await queue.waitForRoom(ctl.signal);
    }
    const left = await publisher.drain(60_000);
    await running;
    if (left !== 0) throw new Error(`${left} messages left unconfirmed`);
  };
};

async function measure(name: string, variant: Variant, msgs: OutMessage[], quiet: boolean) {
  const run = await variant(ex, msgs);
  const t0 = performance.now();
  const c0 = cpuTicks();
  await run();
  const cpuUs = (cpuTicks() - c0) / TICKS_PER_S * 1e6;
  const wallMs = performance.now() - t0;
  await admin.purgeQueue(q);
  if (quiet) return;
  const rate = String(Math.round(msgs.length / (wallMs / 1000))).padStart(7);
  const perMsg = (cpuUs / msgs.length).toFixed(1).padStart(6);
  console.log(`${name.padEnd(38)} ${rate} msg/s   ${perMsg} µs CPU/msg`);
}

const conn = await amqp.connect(URL);
conn.on("error", (err: unknown) => console.error("bench connection error:", err));
const admin = await conn.createChannel();
const ex = `kt-bench-${crypto.randomUUID().slice(0, 8)}`;
await admin.assertExchange(ex, "topic", { durable: false });
const q = (await admin.assertQueue("", { exclusive: true })).queue;
await admin.bindQueue(q, ex, "#");

const warm = messages(WARMUP);
const all = messages(TOTAL);
console.log(
  `${TOTAL} messages of ~${all[0].body.length} bytes, window ${WINDOW}, persistent, confirms on`,
);
try {
  for (const [msgs, quiet] of [[warm, true], [all, false]] as const) {
    await measure("bare amqplib, no confirms", bareNoConfirms, msgs, quiet);
    await measure("bare amqplib, per-message callback", bareCallbacks, msgs, quiet);
    await measure("bare amqplib, ack/nack events", bareEvents, msgs, quiet);
    await measure("karotten Publisher (ack/nack events)", viaPublisher, msgs, quiet);
  }
} finally {
  await admin.deleteExchange(ex);
  await conn.close();
}
