/**
 * The publisher: moves messages from the `MessageQueue` to the broker with publisher confirms,
 * reconnecting (one loop, capped jittered backoff) until stopped.
 *
 * ```
 *  run() -- AmqpSession.open --> serve: pump() --publish--> broker
 *    ^          | fails: backoff          ^   +- stalls: empty | window | drain | blocked
 *    +----------+-- session lost <--------+-- ack/nack events settle InFlight -> queue.confirm/nack
 * ```
 *
 * Confirms come as the channel's 'ack'/'nack' events (delivery tag + `multiple`), not as
 * per-message callbacks: the hot path allocates no promise and no closure per message.
 * @module
 */
import type { Tuning } from "../config.ts";
import { redactUrl } from "../config.ts";
import type { BrokerConfig } from "../broker_config.ts";
import { backoff, type BackoffPolicy } from "../async/backoff.ts";
import { delay, sleep } from "../async/delay.ts";
import { BrokerTlsError, describe, ExchangeMissingError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { MessageQueue } from "../queue.ts";
import {
  AmqpSession,
  type BrokerTarget,
  type SessionEvents,
  type SessionTimeouts,
} from "./connection.ts";
import { InFlight } from "./in_flight.ts";

/** Options of `Publisher`. */
export interface PublisherOptions {
  /** The brokers, tried in order, and their TLS material (URLs logged only redacted). */
  brokers: BrokerConfig;
  /** Existing topic exchange, declared passively. */
  exchange: string;
  /** The shared buffer to publish from. */
  queue: MessageQueue;
  /** Uses `publishWindow`, `amqpBackoffInitialMs`, `amqpBackoffMaxMs`, `amqpProbeIntervalMs`. */
  tuning: Readonly<Tuning>;
  /** Event log. */
  log: Logger;
  /** Log every published message. */
  debug: boolean;
}

/** Why the pump stopped publishing. */
const enum Stall {
  None,
  Empty,
  Window,
  Drain,
  Blocked,
}

/** How the first session attempt that reached the broker ended. */
type FirstOutcome = { ok: true } | { ok: false; error: unknown };

/** Why the last connection attempt or session ended, and which policy the next wait follows. */
interface Failure {
  /** One line, without credentials. */
  reason: string;
  /** The broker refused the TCP connection (nothing listening): probe again soon. */
  refused: boolean;
  /** Its certificate was refused: a configuration problem, logged as an error. */
  tls: boolean;
  /** The broker it happened with (redacted URL). */
  broker: string;
}

/** Publishes the queue's messages to RabbitMQ; see the module doc. */
export class Publisher {
  #targets: BrokerTarget[];
  #exchange: string;
  #queue: MessageQueue;
  #log: Logger;
  #debug: boolean;
  #window: number;
  #timeouts: SessionTimeouts;
  #policy: BackoffPolicy;
  #probePolicy: BackoffPolicy;
  #inFlight: InFlight;
  #session: AmqpSession | undefined;
  #stall = Stall.None;
  #writable = true;
  #wake: (() => void) | undefined;
  /** How the first session attempt that reached the broker ended; undefined until then. */
  #first: FirstOutcome | undefined;
  #firstWaiters: { resolve: () => void; reject: (err: unknown) => void }[] = [];
  #stop = new AbortController();
  #finished = Promise.withResolvers<void>();
  #running = false;
  #sessionsOpened = 0;
  #events: SessionEvents;

  constructor(opts: PublisherOptions) {
    this.#targets = opts.brokers.urls.map((url) => ({ url, tls: opts.brokers.tls }));
    this.#exchange = opts.exchange;
    this.#queue = opts.queue;
    this.#log = opts.log;
    this.#debug = opts.debug;
    this.#window = opts.tuning.publishWindow;
    this.#timeouts = {
      connectMs: opts.tuning.amqpConnectTimeoutMs,
      closeMs: opts.tuning.amqpCloseTimeoutMs,
    };
    const { amqpBackoffInitialMs, amqpBackoffMaxMs, amqpProbeIntervalMs } = opts.tuning;
    this.#policy = { initialMs: amqpBackoffInitialMs, maxMs: amqpBackoffMaxMs };
    const probeMs = Math.min(amqpProbeIntervalMs, amqpBackoffMaxMs);
    this.#probePolicy = { initialMs: Math.min(amqpBackoffInitialMs, probeMs), maxMs: probeMs };
    this.#inFlight = new InFlight(this.#window);
    const queue = this.#queue;
    const confirm = (pos: number) => queue.confirm(pos);
    const nack = (pos: number) => queue.nack(pos);
    this.#events = {
      ack: (tag, multiple) => {
        this.#inFlight.settle(tag, multiple, confirm);
        if (this.#stall === Stall.Window) this.#wakeUp();
      },
      nack: (tag, multiple) => {
        this.#log.warn("amqp_nack", { tag, multiple });
        this.#inFlight.settle(tag, multiple, nack);
        if (this.#stall === Stall.Window) this.#wakeUp();
      },
      drain: () => {
        this.#writable = true;
        if (this.#stall === Stall.Drain) this.#wakeUp();
      },
      blocked: (reason) => {
        this.#log.warn("amqp_blocked", { reason });
        queue.setBlocked(true);
      },
      unblocked: () => {
        this.#log.info("amqp_unblocked");
        queue.setBlocked(false);
        if (this.#stall === Stall.Blocked) this.#wakeUp();
      },
    };
  }

  /** True while a session is open. */
  get connected(): boolean {
    return this.#session !== undefined;
  }

  /** Sessions opened after the first one: how often the publisher reconnected. */
  get reconnects(): number {
    return Math.max(0, this.#sessionsOpened - 1);
  }

  /**
   * Connects and publishes until `signal` aborts or `drain()` finishes, then closes. Connection
   * failures are logged and retried with backoff, a missing exchange too, except on the first
   * connection that opens: then it stops, and `firstConnect()` rejects. Never rejects.
   */
  run(signal: AbortSignal): Promise<void> {
    if (this.#running) return Promise.reject(new Error("Publisher.run: already running"));
    this.#running = true;
    return this.#loop(AbortSignal.any([signal, this.#stop.signal]));
  }

  /**
   * Resolves once the first session is open. Rejects with `ExchangeMissingError` when the first
   * connection that opens finds no exchange (fatal: the daemon exits 2), or with the abort reason
   * when `run()` stops before ever connecting. A refused connection is not fatal: it waits.
   */
  firstConnect(): Promise<void> {
    const first = this.#first;
    if (first?.ok) return Promise.resolve();
    if (first !== undefined) return Promise.reject(first.error);
    return new Promise((resolve, reject) => this.#firstWaiters.push({ resolve, reject }));
  }

  /**
   * After the readers stopped: keeps publishing until every buffered message is confirmed or
   * `graceMs` passed, then stops `run()` and waits for it. Returns the messages left unconfirmed.
   */
  async drain(graceMs: number): Promise<number> {
    if (this.#running) {
      const timer = new AbortController();
      const graceOver = delay(graceMs, { signal: timer.signal }).then(
        () => this.#log.warn("amqp_drain_timeout", { grace_ms: graceMs }),
        (err) => {
          if (!timer.signal.aborted) throw err;
        },
      );
      const emptied = this.#queue.waitForEmpty(timer.signal).then(
        () => {},
        (err) => {
          if (!timer.signal.aborted) throw err;
        },
      );
      try {
        await Promise.race([emptied, graceOver, this.#finished.promise]);
      } finally {
        timer.abort();
        await Promise.all([emptied, graceOver]);
      }
      this.#stop.abort();
      await this.#finished.promise;
    }
    return this.#queue.size;
  }

  /**
   * Opens sessions until `signal` aborts, trying the brokers in order: every failed attempt and
   * every lost session moves on to the next one, after a wait. The wait is the capped, jittered
   * backoff of the attempts since the last session opened; after an attempt the broker refused
   * outright (nothing listening) it is capped at `amqpProbeIntervalMs` instead, so publishing
   * resumes soon after a broker comes back. One log line per failed attempt.
   */
  async #loop(signal: AbortSignal): Promise<void> {
    const targets = this.#targets;
    let attempt = 0;
    let next = 0;
    let failure: Failure | undefined;
    try {
      while (!signal.aborted) {
        if (failure !== undefined) {
          const waitMs = backoff(failure.refused ? this.#probePolicy : this.#policy, attempt++);
          const fields = {
            attempt,
            wait_ms: waitMs,
            broker: failure.broker,
            reason: failure.reason,
          };
          if (failure.tls) this.#log.error("amqp_reconnect", fields);
          else this.#log.warn("amqp_reconnect", fields);
          if (!await sleep(waitMs, signal)) break;
        }
        const target = targets[next];
        const broker = redactUrl(target.url);
        next = (next + 1) % targets.length;
        let session: AmqpSession;
        try {
          session = await AmqpSession.open(target, this.#exchange, this.#events, this.#timeouts);
        } catch (err) {
          if (err instanceof ExchangeMissingError) {
            if (this.#first === undefined) {
              this.#settleFirst({ ok: false, error: err });
              break;
            }
            this.#log.error("exchange_missing", { exchange: this.#exchange, broker });
          }
          failure = {
            reason: describe(err),
            refused: errorCode(err) === "ECONNREFUSED",
            tls: err instanceof BrokerTlsError,
            broker,
          };
          continue;
        }
        this.#settleFirst({ ok: true });
        this.#sessionsOpened++;
        attempt = 0;
        this.#log.info("amqp_connected", { url: broker, exchange: this.#exchange });
        let reason: string;
        try {
          reason = await this.#serve(session, signal);
        } finally {
          await session.close();
        }
        if (!signal.aborted) this.#log.warn("amqp_disconnected", { broker, reason });
        failure = { reason, refused: false, tls: false, broker };
      }
      this.#log.info("amqp_closed", { unconfirmed: this.#queue.size });
    } finally {
      this.#settleFirst({ ok: false, error: signal.reason });
      this.#finished.resolve();
    }
  }

  #settleFirst(outcome: FirstOutcome): void {
    if (this.#first !== undefined) return;
    this.#first = outcome;
    for (const w of this.#firstWaiters.splice(0)) {
      if (outcome.ok) w.resolve();
      else w.reject(outcome.error);
    }
  }

  /** Publishes on `session` until it is lost or `signal` aborts; returns why it ended. */
  async #serve(session: AmqpSession, signal: AbortSignal): Promise<string> {
    const queue = this.#queue;
    const lost = AbortSignal.any([signal, session.lost]);
    const onLost = () => this.#wakeUp();
    lost.addEventListener("abort", onLost, { once: true });
    this.#session = session;
    this.#inFlight.reset();
    this.#writable = true;
    queue.rewind();
    try {
      while (!lost.aborted) {
        try {
          this.#stall = this.#pump(session);
        } catch (err) {
          session.abandon(err);
          break;
        }
        if (this.#stall === Stall.Empty) {
          await queue.waitForMessage(lost).catch((err) => {
            if (!lost.aborted) throw err;
          });
        } else {
          await new Promise<void>((resolve) => this.#wake = resolve);
        }
      }
    } finally {
      lost.removeEventListener("abort", onLost);
      this.#session = undefined;
      this.#stall = Stall.None;
      this.#wake = undefined;
      queue.setBlocked(false);
    }
    return signal.aborted ? "shutdown" : describe(session.lost.reason);
  }

  /**
   * Publishes while there is a message, window room, a writable socket and no block; the pass's
   * frames go out in one write (or a few, for a large pass) when it stops.
   */
  #pump(session: AmqpSession): Stall {
    const stall = this.#publishPass(session);
    if (session.flush()) return stall;
    this.#writable = false;
    return Stall.Drain;
  }

  #publishPass(session: AmqpSession): Stall {
    const queue = this.#queue;
    const inFlight = this.#inFlight;
    const window = this.#window;
    for (;;) {
      if (queue.blocked) return Stall.Blocked;
      if (!this.#writable) return Stall.Drain;
      if (inFlight.count >= window) return Stall.Window;
      const msg = queue.next();
      if (msg === undefined) return Stall.Empty;
      inFlight.add(queue.markPublished());
      if (this.#debug) {
        this.#log.debug("published", { key: msg.routingKey, bytes: msg.body.length });
      }
      if (!session.publish(msg.routingKey, msg.body, msg.messageId)) this.#writable = false;
    }
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

/** The `code` of a Node-style system error (`ECONNREFUSED`, ...), if any. */
function errorCode(err: unknown): unknown {
  return typeof err === "object" && err !== null ? (err as { code?: unknown }).code : undefined;
}
