/**
 * Test helpers for the real RabbitMQ: a random topic exchange with a queue bound `#`, a consumer
 * that resolves waiters as messages arrive, a log that resolves waiters on events, and
 * `rabbitmqctl`.
 * @module
 */
// @ts-types="@types/amqplib"
import amqp from "amqplib";
import { Buffer } from "node:buffer";
import { delay } from "../../lib/async/delay.ts";
import type { Fields, Logger } from "../../lib/log.ts";
import { messageId } from "../../lib/message.ts";
import type { OutMessage } from "../../lib/queue.ts";

/** The broker: env `TEST_RABBITMQ_URL`, or the local guest account. */
export const RABBIT_URL = Deno.env.get("TEST_RABBITMQ_URL") ?? "amqp://guest:guest@127.0.0.1:5672";

/** Resolves or rejects as `p` does, or rejects naming `what` once `ms` passed. */
export async function deadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  const timer = new AbortController();
  const expired = delay(ms, { signal: timer.signal }).then(
    () => {
      throw new Error(`deadline: ${what} did not happen within ${ms} ms`);
    },
    (err) => {
      if (!timer.signal.aborted) throw err;
    },
  );
  try {
    return await Promise.race([p, expired as Promise<never>]);
  } finally {
    timer.abort();
    await expired;
  }
}

/** Resolves once `cond()` holds; `check` runs it whenever something changed. */
class Condition {
  #waiters: { cond: () => boolean; resolve: () => void }[] = [];
  until(cond: () => boolean): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ cond, resolve }));
  }
  check(): void {
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.cond()) return true;
      w.resolve();
      return false;
    });
  }
}

/** One received message. */
export interface Received {
  /** Routing key. */
  key: string;
  /** Parsed JSON body. */
  body: { n: number };
  /** `content_type` property. */
  contentType: string | undefined;
  /** 2 = persistent. */
  deliveryMode: number | undefined;
}

/** A consumer of one queue. */
export interface Consumer {
  /** The queue consumed. */
  readonly queue: string;
  /** Everything received, in order. */
  readonly received: Received[];
  /** Resolves once `n` messages arrived, within `ms`. */
  waitForCount(n: number, ms: number): Promise<void>;
  /** Resolves once messages 1..n (by body `n`) all arrived, duplicates aside, within `ms`. */
  waitForAll(n: number, ms: number): Promise<void>;
  /** Binds the queue to `exchange` with `#` (on the consumer's own channel: exclusive queues). */
  bind(exchange: string): Promise<void>;
  /** Closes the consumer's connection. */
  close(): Promise<void>;
}

/** Consumes `queue`; with `exchange`, an exclusive queue bound to it with `#` instead. */
async function consume(queue: string, exchange?: string): Promise<Consumer> {
  const conn = await amqp.connect(RABBIT_URL);
  conn.on("error", (err: unknown) => console.error("test consumer connection error:", err));
  const ch = await conn.createChannel();
  if (exchange !== undefined) {
    queue = (await ch.assertQueue("", { exclusive: true })).queue;
    await ch.bindQueue(queue, exchange, "#");
  }
  const received: Received[] = [];
  const distinct = new Set<number>();
  const arrived = new Condition();
  await ch.consume(queue, (m) => {
    if (m === null) return;
    received.push({
      key: m.fields.routingKey,
      body: JSON.parse(m.content.toString()),
      contentType: m.properties.contentType,
      deliveryMode: m.properties.deliveryMode,
    });
    distinct.add(received[received.length - 1].body.n);
    arrived.check();
  }, { noAck: true });
  return {
    queue,
    received,
    waitForCount: (n, ms) =>
      deadline(arrived.until(() => received.length >= n), ms, `${n} messages (${queue})`),
    waitForAll: (n, ms) => {
      const all = () => {
        if (distinct.size < n) return false;
        for (let i = 1; i <= n; i++) if (!distinct.has(i)) return false;
        return true;
      };
      return deadline(arrived.until(all), ms, `messages 1..${n} (${queue})`);
    },
    bind: async (exchange) => {
      await ch.bindQueue(queue, exchange, "#");
    },
    close: () => conn.close(),
  };
}

/** A random topic exchange with a queue bound `#`. */
export interface Topic {
  /** Exchange name. */
  exchange: string;
  /** The consumer of the bound queue (none for a durable topic until `consume()`). */
  consumer: Consumer | undefined;
  /** Starts consuming the durable queue. */
  consume(): Promise<Consumer>;
  /** Deletes the exchange (and the durable queue); closes consumers. */
  remove(): Promise<void>;
}

/**
 * Declares `kt-<random>`. Default: a transient exchange and an exclusive queue consumed at once.
 * `durable`: both survive `rabbitmqctl stop_app`/`start_app`; consume later with `consume()`.
 */
export async function openTopic(opts: { durable?: boolean } = {}): Promise<Topic> {
  const exchange = `kt-${crypto.randomUUID().slice(0, 8)}`;
  const durableQueue = `${exchange}.q`;
  await admin(async (ch) => {
    await ch.assertExchange(exchange, "topic", { durable: opts.durable ?? false });
    if (opts.durable) {
      await ch.assertQueue(durableQueue, { durable: true });
      await ch.bindQueue(durableQueue, exchange, "#");
    }
  });
  const consumers: Consumer[] = [];
  const topic: Topic = {
    exchange,
    consumer: undefined,
    consume: async () => {
      const c = await consume(durableQueue);
      consumers.push(c);
      return c;
    },
    remove: async () => {
      for (const c of consumers) await c.close();
      await admin(async (ch) => {
        if (opts.durable) await ch.deleteQueue(durableQueue);
        await ch.deleteExchange(exchange);
      });
    },
  };
  if (!opts.durable) {
    topic.consumer = await consume("", exchange);
    consumers.push(topic.consumer);
  }
  return topic;
}

/** Runs `fn` on a fresh channel of a fresh connection, then closes both. */
export async function admin(fn: (ch: amqp.Channel) => Promise<void>): Promise<void> {
  const conn = await amqp.connect(RABBIT_URL);
  try {
    await fn(await conn.createChannel());
  } finally {
    await conn.close();
  }
}

/** Runs `rabbitmqctl args…`; throws with its output when it fails. */
export async function rabbitmqctl(...args: string[]): Promise<void> {
  const out = await new Deno.Command("rabbitmqctl", { args, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    throw new Error(`rabbitmqctl ${args.join(" ")} failed (${out.code}): ${text}`);
  }
}

/** Message number `n` (1-based) with a JSON body `{"n":n,...}` of about `size` bytes. */
export function testMessage(n: number, size = 64): OutMessage {
  const pad = "x".repeat(Math.max(0, size - 20));
  return {
    routingKey: `test.c${n % 3}.stdout`,
    body: Buffer.from(JSON.stringify({ n, pad })),
    containerId: "f".repeat(64),
    timestamp: "2024-01-01T00:00:00.000000000Z",
    seq: n,
    messageId: messageId("ffffffffffff", "2024-01-01T00:00:00.000000000Z", n),
  };
}

/** A logger that records events and resolves waiters on them; prints with `TEST_VERBOSE`. */
export class CaptureLog implements Logger {
  /** Every event so far. */
  readonly events: { level: string; event: string; fields: Fields }[] = [];
  #changed = new Condition();
  #verbose = Deno.env.get("TEST_VERBOSE") !== undefined;

  debug(event: string, fields: Fields = {}): void {
    this.#add("debug", event, fields);
  }
  info(event: string, fields: Fields = {}): void {
    this.#add("info", event, fields);
  }
  warn(event: string, fields: Fields = {}): void {
    this.#add("warn", event, fields);
  }
  error(event: string, fields: Fields = {}): void {
    this.#add("error", event, fields);
  }

  /** How often `event` was logged. */
  count(event: string): number {
    return this.events.filter((e) => e.event === event).length;
  }

  /** Resolves once `event` was logged `times` times in total, within `ms`. */
  waitFor(event: string, ms: number, times = 1): Promise<void> {
    return deadline(
      this.#changed.until(() => this.count(event) >= times),
      ms,
      `log event ${event} ×${times}`,
    );
  }

  #add(level: string, event: string, fields: Fields): void {
    this.events.push({ level, event, fields });
    if (this.#verbose) console.error(level, event, JSON.stringify(fields));
    this.#changed.check();
  }
}
