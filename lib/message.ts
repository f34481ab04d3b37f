/**
 * The routing key, the JSON envelope and the message id of the contract, as pure functions (no
 * clock, no I/O).
 *
 * Key: `<project>.<service>.<stream>`; project = label `com.docker.compose.project` or
 * `standalone`; service = label `com.docker.compose.service` or the container name without
 * its leading `/`; every `.` in project and service becomes `-`.
 * @module
 */
import { Buffer } from "node:buffer";
import { bodyBuffer } from "./body_slabs.ts";
import { shortId } from "./short_id.ts";
import { timestampInstant } from "./time.ts";

/** Compose project label. */
export const PROJECT_LABEL = "com.docker.compose.project";
/** Compose service label. */
export const SERVICE_LABEL = "com.docker.compose.service";
/** Project of containers without the compose label. */
export const STANDALONE = "standalone";
/** AMQP's limit for a routing key, bytes. */
export const MAX_ROUTING_KEY_BYTES = 255;
/** Longest project or service part of a shortened key, bytes (hash suffix included). */
export const MAX_NAME_PART_BYTES = 120;
/** Longest `container_name` and `image` in the envelope, bytes (hash suffix included). */
export const MAX_FIELD_BYTES = 255;

/** The output stream a line came from (a TTY container's merged stream is `stdout`). */
export type StreamName = "stdout" | "stderr";

/** What the envelope says about a container; fixed while it is attached. */
export interface ContainerIdentity {
  /** Project part, as in the routing key. */
  project: string;
  /** Service part, as in the routing key. */
  service: string;
  /** Name without the leading `/`. */
  containerName: string;
  /** First 12 characters of the id. */
  containerId: string;
  /** Image name as configured (`Config.Image`). */
  image: string;
}

/**
 * Derives the identity from inspect data, applying the contract's naming rules. Container name
 * and image longer than `MAX_FIELD_BYTES` are cut with the routing key's rule (`capBytes`);
 * project and service are bounded by the key's own limit.
 */
export function identify(
  id: string,
  name: string,
  image: string,
  labels: Record<string, string> | null | undefined,
): ContainerIdentity {
  const containerName = name.replace(/^\//, "");
  const project = labels?.[PROJECT_LABEL] || STANDALONE;
  const service = labels?.[SERVICE_LABEL] || containerName;
  const [p, s] = fitKeyParts(project.replaceAll(".", "-"), service.replaceAll(".", "-"));
  return {
    project: p,
    service: s,
    containerName: capBytes(containerName, MAX_FIELD_BYTES),
    containerId: shortId(id),
    image: capBytes(image, MAX_FIELD_BYTES),
  };
}

/** The routing key of a container's stream. */
export function routingKey(identity: ContainerIdentity, stream: StreamName): string {
  return `${identity.project}.${identity.service}.${stream}`;
}

/**
 * Shortens project and service so that the key stays within 255 bytes. Only when the full key
 * would be too long: each part longer than 120 bytes is cut at a character boundary to 111 bytes
 * and ends in `~` plus 8 hex digits of the FNV-1a hash of the whole original part. Deterministic:
 * the same names always give the same key.
 */
export function fitKeyParts(project: string, service: string): [string, string] {
  const bytes = (s: string) => Buffer.byteLength(s, "utf8");
  if (bytes(project) + bytes(service) + 2 + "stdout".length <= MAX_ROUTING_KEY_BYTES) {
    return [project, service];
  }
  return [capBytes(project, MAX_NAME_PART_BYTES), capBytes(service, MAX_NAME_PART_BYTES)];
}

/**
 * `part` when it fits in `maxBytes` of UTF-8; else cut at a character boundary so that `~` plus
 * the 8 hex digits of the FNV-1a hash of the whole `part` end it within `maxBytes`.
 */
export function capBytes(part: string, maxBytes: number): string {
  if (part.length <= maxBytes / 3 || Buffer.byteLength(part, "utf8") <= maxBytes) return part;
  const suffix = `~${fnv1a32(part)}`;
  let cut = "";
  let size = 0;
  for (const ch of part) {
    const n = Buffer.byteLength(ch, "utf8");
    if (size + n > maxBytes - suffix.length) break;
    cut += ch;
    size += n;
  }
  return cut + suffix;
}

/** FNV-1a 32-bit hash of the UTF-8 bytes of `s`, as 8 hex digits. */
export function fnv1a32(s: string): string {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(s, "utf8")) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, "0");
}

/** `{"timestamp":"` */
const BODY_HEAD = new TextEncoder().encode('{"timestamp":"');
/** `"}` */
const BODY_END = new TextEncoder().encode('"}');
/** Decodes the messages that are not plain ASCII (no streaming: one decoder serves all). */
const decoder = new TextDecoder();
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Builds envelopes for one container and stream. The fixed fields are serialised once. A line
 * of printable ASCII without `"` or `\` (the usual log line) is copied into the body as it is;
 * any other line costs one UTF-8 decode, one string escape and one UTF-8 encode.
 */
export class EnvelopeEncoder {
  /** Routing key of this container and stream. */
  readonly routingKey: string;
  readonly #middle: string;
  /** `","project":...,"message":"`: from the end of the timestamp to the start of the message. */
  readonly #between: Uint8Array;

  constructor(identity: ContainerIdentity, stream: StreamName) {
    this.routingKey = routingKey(identity, stream);
    this.#middle = `,"project":${JSON.stringify(identity.project)},"service":${
      JSON.stringify(identity.service)
    },"container_name":${JSON.stringify(identity.containerName)},"container_id":${
      JSON.stringify(identity.containerId)
    },"image":${JSON.stringify(identity.image)},"stream":"${stream}","message":`;
    this.#between = new TextEncoder().encode(`"${this.#middle}"`);
  }

  /** The JSON body of one line; `message` bytes are decoded as UTF-8 (invalid bytes -> U+FFFD). */
  encode(timestamp: string, message: Uint8Array): Buffer {
    if (isPlain(message) && isPlainText(timestamp)) return this.#copy(timestamp, message);
    const text = decoder.decode(message);
    return Buffer.from(
      `{"timestamp":${JSON.stringify(timestamp)}${this.#middle}${JSON.stringify(text)}}`,
      "utf8",
    );
  }

  /** The body of a line and timestamp that JSON takes as they are: byte copies only. */
  #copy(timestamp: string, message: Uint8Array): Buffer {
    const between = this.#between;
    const size = BODY_HEAD.length + timestamp.length + between.length + message.length +
      BODY_END.length;
    const out = bodyBuffer(size);
    out.set(BODY_HEAD, 0);
    let at = BODY_HEAD.length;
    for (let i = 0; i < timestamp.length; i++) out[at++] = timestamp.charCodeAt(i);
    out.set(between, at);
    at += between.length;
    out.set(message, at);
    at += message.length;
    out[at] = BODY_END[0];
    out[at + 1] = BODY_END[1];
    return out;
  }
}

/** True when every byte is printable ASCII (0x20-0x7e) other than `"` and `\`. */
function isPlain(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b < 0x20 || b > 0x7e || b === QUOTE || b === BACKSLASH) return false;
  }
  return true;
}

/** The same test for a string's UTF-16 code units. */
function isPlainText(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === QUOTE || c === BACKSLASH) return false;
  }
  return true;
}

/**
 * The message id: the 12-hex container id, the engine timestamp in nanoseconds as 13 base-36
 * digits, and the message's count at that timestamp in base 36 (e.g.
 * `0123456789ab0kxw3p1z4q9m61`). The same line read again gets the same id. Compact on purpose:
 * the broker's ingest cost grows with the id's length (57 characters cost ~25 %, measured).
 * `shortId` is the container id's first 12 characters.
 */
export function messageId(shortId: string, timestamp: string, seq: number): string {
  const { seconds, nanos } = timestampInstant(timestamp);
  if (!(seconds >= 0 && seconds < MAX_SECONDS)) {
    const digits = (BigInt(seconds) * 1_000_000_000n + BigInt(nanos)).toString(36);
    return shortId + digits.padStart(13, "0") + seq.toString(36);
  }
  // One flat string from char codes: an id is held until the broker confirms it, and one built
  // by concatenation would keep a chain of a dozen partial strings alive as long (~80 bytes).
  const codes = idCodes;
  let at = 0;
  for (let i = 0; i < shortId.length; i++) codes[at++] = shortId.charCodeAt(i);
  base36Nanos(seconds, nanos, codes, at);
  at += 13;
  let rest = seq;
  const seqAt = at;
  do {
    const r = rest % 36;
    codes[at++] = BASE36_CODES[r];
    rest = (rest - r) / 36;
  } while (rest > 0);
  codes.length = at;
  reverse(codes, seqAt, at);
  return String.fromCharCode.apply(null, codes);
}

/** Seconds below which `seconds * 1e9 + nanos` has at most 13 base-36 digits (year 7375). */
const MAX_SECONDS = 36 ** 13 / 1e9;
const BASE36_CODES = Array.from("0123456789abcdefghijklmnopqrstuvwxyz", (c) => c.charCodeAt(0));
/** The character codes of the id being built (reused: one id at a time). */
const idCodes: number[] = [];

/**
 * Writes `seconds * 1e9 + nanos` (beyond 2^53) as 13 base-36 digit codes at `codes[at..]`,
 * divided by 36 in two limbs of base 1e9 so that every step stays exact in a double: the id
 * without a `BigInt` per line.
 */
function base36Nanos(seconds: number, nanos: number, codes: number[], at: number): void {
  let high = seconds;
  let low = nanos;
  for (let i = 12; i >= 0; i--) {
    const r = high % 36;
    high = (high - r) / 36;
    const t = r * 1e9 + low;
    low = Math.floor(t / 36);
    codes[at + i] = BASE36_CODES[t - low * 36];
  }
}

/** Reverses `codes[from..to)` in place. */
function reverse(codes: number[], from: number, to: number): void {
  for (let i = from, j = to - 1; i < j; i++, j--) {
    const c = codes[i];
    codes[i] = codes[j];
    codes[j] = c;
  }
}
