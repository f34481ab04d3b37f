/**
 * The frames of `basic.publish` (method, content header, body), encoded for many messages into
 * one buffer: a publish pass becomes one socket write instead of one per message. The bytes are
 * the ones amqplib's `Channel.publish` writes for the same message and options (`persistent`,
 * `contentType`, `messageId`; see the byte-identity test).
 *
 * Memory: frames are appended to a slab; `take()` hands out a view of what was appended since
 * the last `take()` and never writes over it while a write may still hold it. `written()` says a
 * view's write is done: a slab none of whose views is still being written is used again (the
 * current one from its start, a full one kept as a spare) instead of being left to the garbage
 * collector, so a burst of lines makes no slab garbage at all. A view that `written()` is never
 * called for keeps its slab from reuse; that slab is the collector's, as before.
 * @module
 */
import { Buffer } from "node:buffer";

/** Bytes of a slab (a pass longer than this, or one long message, gets a larger one). */
const SLAB_BYTES = 256 * 1024;
/** Frame type, channel (2) and payload size (4). */
const FRAME_HEADER = 7;
/** Frame end octet. */
const FRAME_END = 0xce;
/** Header and end of a frame. */
const FRAME_OVERHEAD = FRAME_HEADER + 1;
const TYPE_METHOD = 1;
const TYPE_HEADER = 2;
const TYPE_BODY = 3;
/** Class `basic`, method `publish`. */
const BASIC_CLASS = 60;
const PUBLISH_METHOD = 40;
/** Property flags: content-type, headers, delivery-mode, message-id (amqplib always sends headers). */
const PROPERTY_FLAGS = 0x8000 | 0x2000 | 0x1000 | 0x0080;
/** `delivery-mode` of a persistent message. */
const PERSISTENT = 2;
/** Full slabs kept for reuse once their writes are done (beyond these, the GC takes them). */
const SPARE_SLABS = 3;

const utf8 = new TextEncoder();

/** Encodes publish frames for one channel and exchange; see the module doc. */
export class PublishFrames {
  readonly #channel: number;
  /** The method payload up to the routing key: class, method, ticket, exchange. */
  readonly #methodHead: Uint8Array;
  /** Largest body bytes in one body frame: the negotiated `frame_max` minus the overhead. */
  readonly #maxBodyFrame: number;
  /** The content-header payload up to the message id: fixed per content type. */
  readonly #headerHead: Uint8Array;
  #slab: Buffer = newSlab(SLAB_BYTES);
  #start = 0;
  #at = 0;
  /** Views handed out by `take()` and not yet `written()`, by their slab. */
  readonly #writing = new Map<ArrayBufferLike, number>();
  /** Slabs of `SLAB_BYTES` with nothing of them being written, ready for reuse. */
  readonly #spare: Buffer[] = [];

  /**
   * `channel`: the channel number; `frameMax`: the negotiated frame size limit (bytes, frame
   * overhead included); `contentType`: of every message.
   */
  constructor(channel: number, exchange: string, frameMax: number, contentType: string) {
    this.#channel = channel;
    const name = shortString(exchange, "exchange");
    // class, method, ticket 0, exchange
    const method = new Uint8Array(2 + 2 + 2 + 1 + name.length);
    method[1] = BASIC_CLASS;
    method[3] = PUBLISH_METHOD;
    method[6] = name.length;
    method.set(name, 7);
    this.#methodHead = method;
    this.#maxBodyFrame = frameMax - FRAME_OVERHEAD;
    if (this.#maxBodyFrame < 1) throw new RangeError(`frame_max ${frameMax} is too small`);
    const type = shortString(contentType, "contentType");
    // class, weight, body size (8), flags, content type, empty headers table, delivery mode
    const head = new Uint8Array(2 + 2 + 8 + 2 + 1 + type.length + 4 + 1);
    const view = new DataView(head.buffer);
    view.setUint16(0, BASIC_CLASS);
    view.setUint16(12, PROPERTY_FLAGS);
    head[14] = type.length;
    head.set(type, 15);
    head[head.length - 1] = PERSISTENT;
    this.#headerHead = head;
  }

  /** Bytes appended and not yet taken. */
  get pending(): number {
    return this.#at - this.#start;
  }

  /**
   * Appends the frames of one persistent message. Throws `TypeError` (appending nothing) when the
   * routing key or message id is longer than 255 bytes of UTF-8.
   */
  append(routingKey: string, body: Uint8Array, messageId: string): void {
    // Encoded into the slab for every message, never kept: a cache by key would grow by one
    // entry per container churned (each has a key of its own).
    const key = asciiOrUtf8(routingKey, "routingKey");
    const id = asciiOrUtf8(messageId, "messageId");
    const methodHead = this.#methodHead;
    const methodSize = methodHead.length + 1 + key.length + 1;
    const head = this.#headerHead;
    const headerSize = head.length + 1 + id.length;
    const max = this.#maxBodyFrame;
    const bodyFrames = Math.ceil(body.length / max);
    const size = methodSize + FRAME_OVERHEAD + headerSize + FRAME_OVERHEAD + body.length +
      bodyFrames * FRAME_OVERHEAD;
    const out = this.#room(size);
    // method frame: class, method, ticket, exchange, routing key, bits (mandatory, immediate)
    let at = frameHeader(out, this.#at, TYPE_METHOD, this.#channel, methodSize);
    out.set(methodHead, at);
    at = putShortString(out, at + methodHead.length, key);
    out[at++] = 0;
    out[at++] = FRAME_END;
    // content header frame
    at = frameHeader(out, at, TYPE_HEADER, this.#channel, headerSize);
    const sizeAt = at + 4;
    out.set(head, at);
    const high = Math.floor(body.length / 0x1_0000_0000);
    writeUint32(out, sizeAt, high);
    writeUint32(out, sizeAt + 4, body.length - high * 0x1_0000_0000);
    at = putShortString(out, at + head.length, id);
    out[at++] = FRAME_END;
    // body frames, at most frame_max each
    for (let from = 0; from < body.length; from += max) {
      const part = Math.min(max, body.length - from);
      at = frameHeader(out, at, TYPE_BODY, this.#channel, part);
      out.set(part === body.length ? body : body.subarray(from, from + part), at);
      at += part;
      out[at++] = FRAME_END;
    }
    this.#at = at;
  }

  /** The frames appended since the last `take()`, as one buffer that is never written again. */
  take(): Buffer {
    const out = this.#slab.subarray(this.#start, this.#at);
    this.#start = this.#at;
    if (out.length > 0) this.#writing.set(out.buffer, (this.#writing.get(out.buffer) ?? 0) + 1);
    return out;
  }

  /**
   * The write of `pass`, a buffer `take()` returned, is done (or failed): its bytes may be
   * written over once no other view of its slab is being written. Call at most once per view.
   */
  written(pass: Uint8Array): void {
    const slab = pass.buffer;
    const left = (this.#writing.get(slab) ?? 0) - 1;
    if (left > 0) {
      this.#writing.set(slab, left);
      return;
    }
    if (left < 0) return; // an empty view, or one from before a reuse: nothing is counted
    this.#writing.delete(slab);
    if (slab === this.#slab.buffer) {
      // The current slab: start it over when nothing is pending in it.
      if (this.#start === this.#at) this.#start = this.#at = 0;
    } else this.#keep(slab);
  }

  /** A slab nothing is written from any more becomes a spare (standard size, while few). */
  #keep(slab: ArrayBufferLike): void {
    if (slab.byteLength === SLAB_BYTES && this.#spare.length < SPARE_SLABS) {
      this.#spare.push(Buffer.from(slab as ArrayBuffer));
    }
  }

  /** The slab, with room for `size` more bytes after the pending ones. */
  #room(size: number): Buffer {
    if (this.#at + size <= this.#slab.length) return this.#slab;
    const pending = this.#at - this.#start;
    const need = pending + size;
    const next = need <= SLAB_BYTES
      ? this.#spare.pop() ?? newSlab(SLAB_BYTES)
      : newSlab(Math.max(SLAB_BYTES, need));
    next.set(this.#slab.subarray(this.#start, this.#at), 0);
    const old = this.#slab.buffer;
    this.#slab = next;
    this.#start = 0;
    this.#at = pending;
    if (!this.#writing.has(old)) this.#keep(old);
    return next;
  }
}

/** A slab of its own `ArrayBuffer` (never a pooled one: slabs are told apart by their buffer). */
function newSlab(bytes: number): Buffer {
  return Buffer.from(new ArrayBuffer(bytes));
}

/** Writes a frame's type, channel and payload size at `at`; returns where the payload starts. */
function frameHeader(
  out: Uint8Array,
  at: number,
  type: number,
  channel: number,
  size: number,
): number {
  out[at] = type;
  out[at + 1] = channel >>> 8;
  out[at + 2] = channel & 0xff;
  writeUint32(out, at + 3, size);
  return at + FRAME_HEADER;
}

function writeUint32(out: Uint8Array, at: number, v: number): void {
  out[at] = v >>> 24;
  out[at + 1] = (v >>> 16) & 0xff;
  out[at + 2] = (v >>> 8) & 0xff;
  out[at + 3] = v & 0xff;
}

/** The UTF-8 bytes of an AMQP short string; `TypeError` naming `field` when over 255 bytes. */
function shortString(s: string, field: string): Uint8Array {
  const bytes = utf8.encode(s);
  if (bytes.length > 255) {
    throw new TypeError(`${field} is ${bytes.length} bytes of UTF-8; AMQP allows at most 255`);
  }
  return bytes;
}

/** `s` itself when it is ASCII and fits a short string, else its UTF-8 bytes (checked). */
function asciiOrUtf8(s: string, field: string): string | Uint8Array {
  if (s.length <= 255) {
    let ascii = true;
    for (let i = 0; i < s.length; i++) {
      if (s.charCodeAt(i) > 0x7f) {
        ascii = false;
        break;
      }
    }
    if (ascii) return s;
  }
  return shortString(s, field);
}

/** Writes a short string (length octet, then bytes) at `at`; returns where it ends. */
function putShortString(out: Uint8Array, at: number, s: string | Uint8Array): number {
  out[at++] = s.length;
  if (typeof s === "string") {
    for (let i = 0; i < s.length; i++) out[at++] = s.charCodeAt(i);
  } else {
    out.set(s, at);
    at += s.length;
  }
  return at;
}
