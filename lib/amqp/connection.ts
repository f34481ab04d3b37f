/**
 * One AMQP session: a connection, one channel in confirm mode, the exchange checked passively.
 * Only this file talks to amqplib.
 *
 * Publishing bypasses amqplib's per-message path (an encode, a `Buffer` and a socket write per
 * message): `publish()` appends the frames to a `PublishFrames` pass and `flush()` writes the
 * pass to amqplib's socket in one write. What this relies on inside amqplib 0.10 (no public API
 * gives a batched publish): the connection's socket (`connection.stream`, written directly as
 * amqplib writes heartbeats), the negotiated `connection.frameMax`, the channel's number
 * (`channel.ch`) and `channel.pushConfirmCallback()`, called once per message as its own
 * `ConfirmChannel.publish` does so that its confirm bookkeeping stays as it was. Everything else
 * (handshake, confirms, blocked/unblocked, heartbeats, close, TLS) is amqplib's public API.
 * @module
 */
// @ts-types="@types/amqplib"
import amqp from "amqplib";
import { deadline } from "../async/deadline.ts";
import { delay } from "../async/delay.ts";
import { BrokerTlsError, describe, ExchangeMissingError } from "../errors.ts";
import type { TlsMaterial } from "../broker_config.ts";
import { PublishFrames } from "./publish_frames.ts";

/** Connect and close deadlines (from `Tuning`). */
export interface SessionTimeouts {
  /**
   * TCP connect plus AMQP handshake must finish within this; then, within as long again, the
   * broker must answer channel.open and the passive exchange.declare.
   */
  connectMs: number;
  /** A clean close (connection.close -> close-ok) gets this long before the socket is destroyed. */
  closeMs: number;
}

/** One broker to connect to: its URL (with credentials) and the TLS material for `amqps://`. */
export interface BrokerTarget {
  /** `amqp://` or `amqps://` URL. */
  url: string;
  /** CA, client certificate and key; used only for `amqps://`. */
  tls: TlsMaterial;
}

/** AMQP reply code of a passive declare of a missing exchange. */
const NOT_FOUND = 404;

/** Content type of every published message. */
const CONTENT_TYPE = "application/json";
/** A pass is written once it holds this many bytes of frames (and at its end). */
const FLUSH_BYTES = 128 * 1024;

/**
 * What a session reports; called synchronously from amqplib's frame handling, and only until the
 * session is lost (a late event must not reach the next session's state).
 */
export interface SessionEvents {
  /** The broker confirmed `tag` (and all lower tags when `multiple`). */
  ack(tag: number, multiple: boolean): void;
  /** The broker refused `tag` (and all lower tags when `multiple`). */
  nack(tag: number, multiple: boolean): void;
  /** The socket's write buffer drained after `publish` or `flush` returned false. */
  drain(): void;
  /** The broker blocked publishing on this connection (resource alarm). */
  blocked(reason: string): void;
  /** The broker lifted the block. */
  unblocked(): void;
}

interface ConfirmFields {
  deliveryTag: number;
  multiple: boolean;
}

interface Socket {
  destroy(err?: Error): void;
  once(event: "close", listener: () => void): void;
  on(event: "drain", listener: () => void): void;
  write(bytes: Uint8Array, done: () => void): boolean;
}

/** The parts of amqplib's connection this module uses beyond its public API. */
interface ConnectionInternals {
  stream: Socket;
  frameMax: number;
}

/** The parts of amqplib's channel this module uses beyond its public API. */
interface ChannelInternals {
  ch: number;
  pushConfirmCallback(cb: undefined): void;
}

/** An open connection with a confirm-mode channel on which the exchange exists. */
export class AmqpSession {
  /** Aborts, with an `Error` as reason, when the connection or the channel closes. */
  readonly lost: AbortSignal;

  #model: amqp.ChannelModel;
  #channel: ChannelInternals | undefined;
  #frames: PublishFrames | undefined;
  /** Set the moment the channel or connection closes, before `lost` aborts (a microtask later). */
  #closed = false;
  #socket: Socket;
  #exchange: string;
  #lost = new AbortController();
  #lastError: unknown;
  #connClosed: Promise<void>;
  #socketClosed: Promise<void>;
  #closing: Promise<void> | undefined;
  #closeMs: number;

  private constructor(
    model: amqp.ChannelModel,
    exchange: string,
    events: SessionEvents,
    closeMs: number,
  ) {
    this.#closeMs = closeMs;
    this.#model = model;
    this.#exchange = exchange;
    this.lost = this.#lost.signal;
    const socket = socketOf(model);
    this.#socket = socket;
    socket.on("drain", () => {
      if (!this.lost.aborted) events.drain();
    });
    this.#socketClosed = new Promise((resolve) => socket.once("close", resolve));
    this.#connClosed = new Promise((resolve) => {
      model.on("close", (err?: unknown) => {
        this.#closed = true;
        this.#fail(`connection closed: ${describe(err ?? this.#lastError ?? "by client")}`);
        resolve();
      });
    });
    model.on("error", (err: unknown) => {
      this.#lastError = err;
    });
    model.on("blocked", (reason: unknown) => {
      if (!this.lost.aborted) events.blocked(String(reason));
    });
    model.on("unblocked", () => {
      if (!this.lost.aborted) events.unblocked();
    });
  }

  /**
   * Connects, opens a confirm channel and passively declares `exchange`. Throws
   * `ExchangeMissingError` when the broker answers 404, `BrokerTlsError` when its certificate is
   * refused, a `TimeoutError` when, once connected, it leaves channel.open or the exchange check
   * unanswered for `connectMs` (a half-answering broker or proxy: heartbeats flow on channel 0,
   * so they cannot tell); any other failure as is. Nothing stays open when it throws.
   */
  static async open(
    target: BrokerTarget,
    exchange: string,
    events: SessionEvents,
    timeouts: SessionTimeouts,
  ): Promise<AmqpSession> {
    let model: amqp.ChannelModel;
    try {
      model = await amqp.connect(target.url, socketOptions(target, timeouts.connectMs));
    } catch (err) {
      throw tlsError(err, target.url) ?? err;
    }
    const session = new AmqpSession(model, exchange, events, timeouts.closeMs);
    let step = "channel.open";
    const opening = async () => {
      const channel = await model.createConfirmChannel();
      session.lost.throwIfAborted(); // the deadline passed meanwhile: the session is closing
      session.#attach(channel, events);
      step = "exchange.declare";
      await channel.checkExchange(exchange);
    };
    const ms = timeouts.connectMs;
    try {
      await deadline(
        opening(),
        ms,
        () => new DOMException(`the broker did not answer ${step} within ${ms} ms`, "TimeoutError"),
      );
      return session;
    } catch (err) {
      // Closing also ends a step still waiting: amqplib fails its channel's pending calls.
      await session.close();
      if (replyCode(err) === NOT_FOUND) throw new ExchangeMissingError(exchange, { cause: err });
      throw err;
    }
  }

  /**
   * Adds one persistent JSON message to the pass; the pass is written when it is large, else by
   * `flush()`. False means "wait for `drain`". Throws once the session is lost. `messageId`
   * lets consumers drop the rare repeat (see README).
   */
  publish(routingKey: string, body: Uint8Array, messageId: string): boolean {
    if (this.lost.aborted) throw this.lost.reason;
    if (this.#closed) {
      throw new Error(`channel closed: ${describe(this.#lastError ?? "by client")}`);
    }
    const frames = this.#frames!;
    frames.append(routingKey, body, messageId);
    this.#channel!.pushConfirmCallback(undefined);
    return frames.pending >= FLUSH_BYTES ? this.flush() : true;
  }

  /** Writes the pass to the socket; false means "wait for `drain`". */
  flush(): boolean {
    const frames = this.#frames;
    if (frames === undefined || frames.pending === 0) return true;
    const pass = frames.take();
    if (this.#closed || this.lost.aborted) return true;
    // Once written (or failed), the pass's slab may be filled again.
    return this.#socket.write(pass, () => frames.written(pass));
  }

  /** Marks the session lost because of `err` (e.g. a publish threw); `close()` must follow. */
  abandon(err: unknown): void {
    this.#fail(describe(err));
  }

  /**
   * Closes the connection: a clean AMQP close, or after `closeMs` (a blocked broker does
   * not read) the socket is destroyed. Resolves when the socket is closed; never throws.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  #attach(channel: amqp.ConfirmChannel, events: SessionEvents): void {
    const internals = channel as unknown as ChannelInternals;
    this.#channel = internals;
    const connection = this.#model.connection as unknown as ConnectionInternals;
    this.#frames = new PublishFrames(
      internals.ch,
      this.#exchange,
      connection.frameMax,
      CONTENT_TYPE,
    );
    channel.on("error", (err: unknown) => {
      this.#lastError = err;
    });
    channel.on("close", () => {
      this.#closed = true;
      // When the connection closes, its channels close first: let its 'close', emitted in the
      // same turn, give the reason.
      queueMicrotask(() =>
        this.#fail(`channel closed: ${describe(this.#lastError ?? "by client")}`)
      );
    });
    channel.on("ack", (f: ConfirmFields) => {
      if (!this.lost.aborted) events.ack(f.deliveryTag, f.multiple);
    });
    channel.on("nack", (f: ConfirmFields) => {
      if (!this.lost.aborted) events.nack(f.deliveryTag, f.multiple);
    });
  }

  #fail(reason: string): void {
    if (!this.#lost.signal.aborted) this.#lost.abort(new Error(reason));
  }

  async #close(): Promise<void> {
    this.#fail("closed by karotten");
    const timer = new AbortController();
    const timeout = delay(this.#closeMs, { signal: timer.signal }).then(
      () => "timeout" as const,
      (err) => {
        if (timer.signal.aborted) return "cancelled" as const;
        throw err;
      },
    );
    try {
      const done = Promise.all([this.#closeConnection(), this.#socketClosed]);
      const first = await Promise.race([done.then(() => "closed" as const), timeout]);
      if (first === "timeout") {
        socketOf(this.#model).destroy(new Error(`close timed out after ${this.#closeMs} ms`));
        await done;
      }
    } finally {
      timer.abort();
      await timeout;
    }
  }

  /**
   * Starts the AMQP close handshake and waits for the connection's 'close' event. The promise of
   * `close()` itself is not awaited: it never settles when the socket is destroyed instead.
   */
  #closeConnection(): Promise<void> {
    this.#model.close().then(
      () => {},
      (err: unknown) => {
        // Already closing or closed (the broker went away): the 'close' event still comes.
        this.#lastError ??= err;
      },
    );
    return this.#connClosed;
  }
}

/**
 * amqplib's socket options: the connect deadline and, for `amqps://`, the CA (instead of the
 * system's), the client certificate and key; with a certificate and no user name in the URL, the
 * `EXTERNAL` mechanism (the broker takes the user from the certificate).
 */
export function socketOptions(target: BrokerTarget, connectMs: number): Record<string, unknown> {
  const options: Record<string, unknown> = { timeout: connectMs };
  const url = new URL(target.url);
  if (url.protocol !== "amqps:") return options;
  const { ca, cert, key } = target.tls;
  if (ca !== undefined) options.ca = [ca];
  if (cert !== undefined && key !== undefined) {
    options.cert = cert;
    options.key = key;
    if (url.username === "" && url.password === "") {
      options.credentials = amqp.credentials.external();
    }
  }
  return options;
}

/** Node's codes for a server certificate that no trusted CA signed. */
const UNTRUSTED_CODES = new Set([
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_SIGNATURE_FAILURE",
  "CERT_UNTRUSTED",
]);

/** A `BrokerTlsError` for a refused server certificate, else undefined. */
function tlsError(err: unknown, rawUrl: string): BrokerTlsError | undefined {
  const code = typeof err === "object" && err !== null
    ? String((err as { code?: unknown }).code ?? "")
    : "";
  const url = new URL(rawUrl);
  const at = `${url.hostname}:${url.port || "5671"}`;
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") {
    return new BrokerTlsError(
      `TLS: the certificate of ${at} is not valid for the name ${url.hostname}`,
      { cause: err },
    );
  }
  if (UNTRUSTED_CODES.has(code)) {
    return new BrokerTlsError(
      `TLS: the certificate of ${at} is not signed by a trusted CA ` +
        `(${code}; RABBITMQ_CA_FILE names the CA to trust)`,
      { cause: err },
    );
  }
  if (code.startsWith("CERT_") || code.startsWith("ERR_TLS_") || code.startsWith("ERR_SSL_")) {
    return new BrokerTlsError(`TLS with ${at} failed (${code})`, { cause: err });
  }
  return undefined;
}

function socketOf(model: amqp.ChannelModel): Socket {
  return (model.connection as unknown as ConnectionInternals).stream;
}

function replyCode(err: unknown): unknown {
  return typeof err === "object" && err !== null ? (err as { code?: unknown }).code : undefined;
}
