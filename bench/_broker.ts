/**
 * The benchmark's side of RabbitMQ: a fresh topic exchange with a queue bound by `#`, counted
 * without consuming (a passive declare), purged between runs, or consumed with the time of
 * arrival of each message.
 * @module
 */
// @ts-types="@types/amqplib"
import amqp from "amqplib";
import type { Buffer } from "node:buffer";
import { nowMs } from "./_stats.ts";

/**
 * The broker blocked publishing (a resource alarm) or dropped the connection (an app restart)
 * during a measurement: on this shared broker, most likely another engineer's test.
 */
export class BrokerDisturbedError extends Error {}

/** A connection with one exchange and one exclusive queue bound to it. */
export class BenchBinding {
  /** Topic exchange, `kt-bench-<random>`. */
  readonly exchange: string;
  /** Server-named exclusive queue bound with `#`. */
  readonly queue: string;
  /** The broker's version (`serverProperties.version`). */
  readonly version: string;
  /** Errors the connection reported. */
  readonly errors: Error[];
  readonly #disturbed = new AbortController();
  #closing = false;
  #closed = false;
  readonly #conn: amqp.ChannelModel;
  readonly #admin: amqp.Channel;
  #consumer: { ch: amqp.Channel; tag: string } | undefined;

  private constructor(
    conn: amqp.ChannelModel,
    admin: amqp.Channel,
    exchange: string,
    queue: string,
    errors: Error[],
  ) {
    this.#conn = conn;
    this.#admin = admin;
    this.exchange = exchange;
    this.queue = queue;
    this.errors = errors;
    this.version = conn.connection.serverProperties.version;
    const disturb = (why: string) => {
      if (!this.#disturbed.signal.aborted) this.#disturbed.abort(new BrokerDisturbedError(why));
    };
    conn.on("blocked", (reason: unknown) => disturb(`the broker blocked publishing: ${reason}`));
    conn.on("close", () => {
      this.#closed = true;
      if (!this.#closing) disturb(`the broker closed the connection: ${errors.at(-1)?.message}`);
    });
  }

  /** Declares `kt-bench-<random>` (topic, not durable) and an exclusive queue bound by `#`. */
  static async open(url: string): Promise<BenchBinding> {
    const errors: Error[] = [];
    const conn = await amqp.connect(url);
    conn.on("error", (err: Error) => errors.push(err));
    try {
      const admin = await conn.createChannel();
      admin.on("error", (err: Error) => errors.push(err));
      const exchange = `kt-bench-${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
      await admin.assertExchange(exchange, "topic", { durable: false, autoDelete: false });
      const { queue } = await admin.assertQueue("", { exclusive: true, autoDelete: true });
      await admin.bindQueue(queue, exchange, "#");
      return new BenchBinding(conn, admin, exchange, queue, errors);
    } catch (err) {
      await conn.close();
      throw err;
    }
  }

  /**
   * Aborts, with a `BrokerDisturbedError`, once the broker blocks this connection or drops it:
   * the binding is then of no more use.
   */
  get disturbed(): AbortSignal {
    return this.#disturbed.signal;
  }

  /** Messages ready in the queue (a passive declare: nothing is consumed). */
  async count(): Promise<number> {
    return (await this.#admin.checkQueue(this.queue)).messageCount;
  }

  /** Empties the queue. */
  async purge(): Promise<void> {
    await this.#admin.purgeQueue(this.queue);
  }

  /** Opens a confirm channel on this connection (for the raw publish loop). */
  confirmChannel(): Promise<amqp.ConfirmChannel> {
    return this.#conn.createConfirmChannel();
  }

  /**
   * Consumes the queue without acks; `onMessage` gets each body and the time it arrived
   * (epoch ms, read before anything else is done with it).
   */
  async consume(onMessage: (body: Buffer, receivedMs: number) => void): Promise<void> {
    if (this.#consumer) throw new Error("BenchBinding.consume: already consuming");
    const ch = await this.#conn.createChannel();
    ch.on("error", (err: Error) => this.errors.push(err));
    const { consumerTag } = await ch.consume(this.queue, (msg) => {
      if (msg !== null) onMessage(msg.content, nowMs());
    }, { noAck: true });
    this.#consumer = { ch, tag: consumerTag };
  }

  /** Cancels the consumer, deletes the exchange (the queue goes with the connection), closes. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    // After a broker restart the connection is gone, and the exchange and queue with it.
    if (this.#closed) return;
    try {
      if (this.#consumer) {
        await this.#consumer.ch.cancel(this.#consumer.tag);
        await this.#consumer.ch.close();
      }
      await this.#admin.deleteExchange(this.exchange);
    } finally {
      await this.#conn.close();
    }
  }
}

/**
 * A durable topic exchange without a queue, for a daemon that must find it again after the
 * broker app restarted. Returns its name and a function that deletes it (on a new connection:
 * a broker restart drops the old ones).
 */
export async function durableExchange(
  url: string,
): Promise<{ exchange: string; remove: () => Promise<void> }> {
  const exchange = `kt-bench-${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
  await withChannel(url, (ch) => ch.assertExchange(exchange, "topic", { durable: true }));
  return {
    exchange,
    remove: () => withChannel(url, (ch) => ch.deleteExchange(exchange)),
  };
}

async function withChannel(url: string, f: (ch: amqp.Channel) => Promise<unknown>): Promise<void> {
  const conn = await amqp.connect(url);
  const errors: Error[] = [];
  conn.on("error", (err: Error) => errors.push(err));
  try {
    await f(await conn.createChannel());
  } finally {
    await conn.close();
  }
}
