/**
 * The real RabbitMQ for tests: a fresh topic exchange and queue per test (`freshBinding`), and
 * the broker-wide knobs a test may turn (`rabbitStopApp`, `rabbitStartApp`,
 * `setMemoryWatermark`), which need `rabbitmqctl` and root.
 * @module
 */
// @ts-types="@types/amqplib"
import amqp from "amqplib";
import { delay } from "../../lib/async/delay.ts";
import { waitFor } from "./deadline.ts";

/** The broker tests use: env `TEST_RABBITMQ_URL`, or the local guest account. */
export const RABBIT_URL: string = Deno.env.get("TEST_RABBITMQ_URL") ||
  "amqp://guest:guest@127.0.0.1:5672";

/** The memory watermark RabbitMQ runs with normally (its default). */
export const DEFAULT_MEMORY_WATERMARK = 0.4;

/** Longest run of one `rabbitmqctl` command. */
export const RABBITMQCTL_TIMEOUT_MS = 120_000;

/** One message as the test consumer got it. */
export interface Received {
  /** The routing key it was published with. */
  routingKey: string;
  /** `JSON.parse` of the content; `{}` when that failed or gave no object (see `bodyError`). */
  body: Record<string, unknown>;
  /** Why `body` is `{}` although the content was not `{}`; undefined when it parsed. */
  bodyError?: string;
  /** The content bytes. */
  raw: Uint8Array;
  /** The `content_type` property, if set. */
  contentType?: string;
  /** The `delivery_mode` property (2 = persistent), if set. */
  deliveryMode?: number;
  /** The `message_id` property, if set. */
  messageId?: string;
  /** When the consumer got it: epoch milliseconds (`Date.now()`). */
  receivedMs: number;
}

/** A unique exchange with a queue bound to it by `#`, and everything it received. */
export interface Binding {
  /** The exchange's name, `kt-<random>`. */
  readonly exchange: string;
  /** The queue's name (server-named unless durable; a new one after a reconnect then). */
  readonly queue: string;
  /** Every message so far, in order of arrival. */
  readonly messages: Received[];
  /** What the connection reported: a broker bounce shows up here, and is then recovered from. */
  readonly errors: Error[];
  /** How often the consumer came back after its connection dropped. */
  readonly reconnects: number;
  /** Resolves once `messages` holds at least `n`; throws naming the count it reached. */
  waitForCount(n: number, timeoutMs: number): Promise<void>;
  /** Cancels the consumer, deletes the exchange (and a durable queue), closes the connection. */
  close(): Promise<void>;
}

/** Options of `freshBinding`. */
export interface FreshBindingOptions {
  /**
   * Declare the exchange durable, and bind a durable named queue (`<exchange>.q`) instead of an
   * exclusive one, so both outlive `rabbitStopApp()` / `rabbitStartApp()` and messages routed
   * while the consumer is away wait for it. @default false
   */
  durableExchange?: boolean;
}

/** Wait between two attempts to get the consumer back after its connection dropped. */
export const RECONNECT_INTERVAL_MS = 200;

/**
 * Declares a topic exchange `kt-<random>` and an exclusive auto-delete queue bound to it with
 * `#`, and consumes it (no-ack) into `messages`. When the connection drops (a broker bounce),
 * it reconnects and declares and binds again until `close()`. Call `close()` before the test
 * ends.
 *
 * @example
 * ```ts
 * const binding = await freshBinding();
 * try {
 *   // ... make karotten publish to binding.exchange ...
 *   await binding.waitForCount(1, 5000);
 * } finally {
 *   await binding.close();
 * }
 * ```
 */
export async function freshBinding(opts: FreshBindingOptions = {}): Promise<Binding> {
  const binding = new TestBinding(
    `kt-${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`,
    opts.durableExchange ?? false,
  );
  await binding.setUp();
  return binding;
}

/** One AMQP connection with the consumer on it. */
interface Link {
  conn: amqp.ChannelModel;
  ch: amqp.Channel;
  consumerTag: string;
  /** `open` turns false when the connection closes, for whatever reason. */
  state: { open: boolean };
}

class TestBinding implements Binding {
  readonly exchange: string;
  readonly messages: Received[] = [];
  readonly errors: Error[] = [];
  reconnects = 0;
  #queue = "";
  readonly #durable: boolean;
  #link: Link | undefined;
  #recovery: Promise<void> | undefined;
  readonly #closing = new AbortController();

  constructor(exchange: string, durable: boolean) {
    this.exchange = exchange;
    this.#durable = durable;
  }

  get queue(): string {
    return this.#queue;
  }

  /** Connects, declares exchange and queue, binds and consumes. */
  async setUp(): Promise<void> {
    const conn = await amqp.connect(RABBIT_URL);
    const state = { open: true };
    conn.on("error", (err: Error) => this.errors.push(err));
    conn.on("close", () => {
      state.open = false;
      const ours = this.#link?.conn === conn;
      if (ours && !this.#closing.signal.aborted) this.#recovery ??= this.#recover();
    });
    try {
      const ch = await conn.createChannel();
      ch.on("error", (err: Error) => this.errors.push(err));
      await ch.assertExchange(this.exchange, "topic", {
        durable: this.#durable,
        autoDelete: false,
      });
      const { queue } = this.#durable
        ? await ch.assertQueue(`${this.exchange}.q`, { durable: true })
        : await ch.assertQueue("", { exclusive: true, autoDelete: true });
      await ch.bindQueue(queue, this.exchange, "#");
      // A durable queue outlives broker bounces: its consumer acknowledges each message once it
      // holds it, so that one the broker had handed out when it stopped comes again instead of
      // vanishing (with automatic acks it counts as delivered once handed to the channel). Such
      // a redelivery of a message already held is not recorded twice.
      const durable = this.#durable;
      const { consumerTag } = await ch.consume(queue, (msg) => {
        if (msg === null) return;
        const r = received(msg);
        if (!(msg.fields.redelivered && this.#seen(r))) this.messages.push(r);
        if (!durable) return;
        try {
          ch.ack(msg);
        } catch {
          // The channel closed (a bounce): the broker hands the message out again.
        }
      }, { noAck: !durable });
      this.#queue = queue;
      this.#link = { conn, ch, consumerTag, state };
    } catch (err) {
      if (state.open) await conn.close();
      throw err;
    }
  }

  async waitForCount(n: number, timeoutMs: number): Promise<void> {
    try {
      await waitFor(() => this.messages.length >= n, { timeoutMs, what: `${n} messages` });
    } catch (err) {
      throw new Error(
        `${(err as Error).message} on exchange ${this.exchange} (got ${this.messages.length})`,
        { cause: err },
      );
    }
  }

  async close(): Promise<void> {
    if (this.#closing.signal.aborted) return;
    this.#closing.abort();
    await this.#recovery;
    let link = this.#link;
    if (link === undefined || !link.state.open) {
      // The broker dropped us and we did not get back: clean up on a new connection.
      const conn = await amqp.connect(RABBIT_URL);
      conn.on("error", (err: Error) => this.errors.push(err));
      link = { conn, ch: await conn.createChannel(), consumerTag: "", state: { open: true } };
    }
    try {
      if (link.consumerTag !== "") await link.ch.cancel(link.consumerTag);
      if (this.#durable) await link.ch.deleteQueue(this.#queue);
      await link.ch.deleteExchange(this.exchange);
      await link.ch.close();
    } finally {
      await link.conn.close();
    }
  }

  /** A message with `r`'s id and content was recorded already (a redelivery of it). */
  #seen(r: Received): boolean {
    if (r.messageId === undefined) return false;
    const raw = new TextDecoder().decode(r.raw);
    return this.messages.some((m) =>
      m.messageId === r.messageId && new TextDecoder().decode(m.raw) === raw
    );
  }

  /** Sets up again every `RECONNECT_INTERVAL_MS` until it works or `close()` is called. */
  async #recover(): Promise<void> {
    const signal = this.#closing.signal;
    try {
      while (!signal.aborted) {
        try {
          await this.setUp();
          this.reconnects++;
          return;
        } catch (err) {
          this.errors.push(err instanceof Error ? err : new Error(String(err)));
        }
        try {
          await delay(RECONNECT_INTERVAL_MS, { signal });
        } catch (err) {
          if (!signal.aborted) throw err;
        }
      }
    } finally {
      this.#recovery = undefined;
    }
  }
}

/** Stops the RabbitMQ application (the node keeps running): every connection drops. */
export async function rabbitStopApp(): Promise<void> {
  await rabbitmqctl("stop_app");
}

/** Starts the RabbitMQ application again and waits until it accepts connections. */
export async function rabbitStartApp(): Promise<void> {
  await rabbitmqctl("start_app");
  await rabbitmqctl("await_startup");
}

/**
 * Sets the memory high watermark (a fraction of RAM): `0.0001` raises a memory alarm that
 * blocks publishers, `DEFAULT_MEMORY_WATERMARK` (0.4) clears it.
 */
export async function setMemoryWatermark(x: number): Promise<void> {
  if (!(x > 0 && x <= 1)) {
    throw new RangeError(`Cannot set the memory watermark: current value is ${x}`);
  }
  await rabbitmqctl("set_vm_memory_high_watermark", String(x));
}

/**
 * Throws when `rabbitmqctl` would act on another node than the tests' broker: a
 * `TEST_RABBITMQ_URL` on a port other than 5672 without `RABBITMQ_NODENAME` naming its node
 * would bounce the machine's default node instead.
 */
function assertOwnNode(): void {
  const port = new URL(RABBIT_URL).port || "5672";
  if (port !== "5672" && !Deno.env.get("RABBITMQ_NODENAME")) {
    throw new Error(
      `TEST_RABBITMQ_URL names port ${port} but RABBITMQ_NODENAME is not set: ` +
        "rabbitmqctl would act on the default node, not the tests' broker",
    );
  }
}

/** Runs `rabbitmqctl ...args` under a deadline; throws with its output when it fails. */
async function rabbitmqctl(...args: string[]): Promise<string> {
  assertOwnNode();
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), RABBITMQCTL_TIMEOUT_MS);
  try {
    const out = await new Deno.Command("rabbitmqctl", {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: ac.signal,
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    if (!out.success) {
      throw new Error(
        `rabbitmqctl ${args.join(" ")} failed with exit code ${out.code}: ` +
          `${new TextDecoder().decode(out.stderr).trim()} ${text.trim()}`,
      );
    }
    return text;
  } finally {
    clearTimeout(timer);
  }
}

/** What the consumer keeps of one delivery. */
function received(msg: amqp.ConsumeMessage): Received {
  const raw = new Uint8Array(msg.content);
  const r: Received = { routingKey: msg.fields.routingKey, body: {}, raw, receivedMs: Date.now() };
  try {
    const parsed: unknown = JSON.parse(new TextDecoder().decode(raw));
    if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) {
      r.body = parsed as Record<string, unknown>;
    } else {
      r.bodyError = `content is JSON but not an object: ${typeof parsed}`;
    }
  } catch (err) {
    r.bodyError = `content is not JSON: ${(err as Error).message}`;
  }
  const { contentType, deliveryMode, messageId } = msg.properties;
  if (typeof messageId === "string") r.messageId = messageId;
  if (typeof contentType === "string") r.contentType = contentType;
  if (typeof deliveryMode === "number") r.deliveryMode = deliveryMode;
  return r;
}
