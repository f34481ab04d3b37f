/**
 * Push demuxer for Docker's multiplexed stdout/stderr stream (8-byte frame headers).
 * @module
 */
import { ProtocolError } from "../errors.ts";

/** Size of a frame header, bytes. */
export const FRAME_HEADER_BYTES = 8;
/** Default cap for one frame's payload, bytes (4 MiB). */
export const DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024;

/**
 * Receives a frame as its stream id and the range `bytes[start..end)` holding its payload: the
 * push it lay in, or the one copy of a torn payload. No view is made per frame.
 */
export type FrameRangeHandler = (
  stream: number,
  bytes: Uint8Array,
  start: number,
  end: number,
) => void;

/** The range form of a frame handler (see {@link FrameRangeHandler}). */
export interface FrameRanges {
  onRange: FrameRangeHandler;
}

/**
 * Splits the multiplexed stream into frames: stream id (0 stdin, 1 stdout, 2 stderr, 3 system
 * error) and payload. A payload lying in one push is a subarray of it (or, for a range handler,
 * a range of it); a torn one is copied once.
 */
export class FrameDemuxer {
  readonly #onFrame: FrameRangeHandler;
  readonly #maxFrameBytes: number;
  /** Bytes pushed before the current push. */
  #consumed = 0;
  /** A torn header: its bytes so far. */
  readonly #header = new Uint8Array(FRAME_HEADER_BYTES);
  #headerFill = 0;
  /** A torn payload: the buffer being filled, or undefined. */
  #payload: Uint8Array | undefined;
  #payloadFill = 0;
  #payloadStream = 0;
  /** Offset of the pending frame's header. */
  #frameOffset = 0;
  #failed: ProtocolError | undefined;

  /**
   * `onFrame` gets every frame in order, zero-length ones as empty payloads: as a view, or as a
   * range (`{ onRange }`, for a reader that makes its own views only where it needs them).
   */
  constructor(
    onFrame: ((stream: number, payload: Uint8Array) => void) | FrameRanges,
    maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES,
  ) {
    if (typeof onFrame === "function") {
      this.#onFrame = (stream, bytes, start, end) => onFrame(stream, bytes.subarray(start, end));
    } else this.#onFrame = onFrame.onRange;
    this.#maxFrameBytes = maxFrameBytes;
  }

  /**
   * Feeds bytes; throws `ProtocolError("frames")` on a bad header, and again on every later
   * push.
   */
  push(chunk: Uint8Array): void {
    if (this.#failed) throw this.#failed;
    try {
      this.#push(chunk);
    } catch (err) {
      if (err instanceof ProtocolError) this.#failed = err;
      throw err;
    } finally {
      this.#consumed += chunk.length;
    }
  }

  /** Declares the end of input; throws `ProtocolError("frames")` if a frame is incomplete. */
  end(): void {
    if (this.#failed) throw this.#failed;
    const at = this.#consumed;
    if (this.#headerFill > 0) {
      throw new ProtocolError(
        "frames",
        at,
        `input ended inside a frame header (${this.#headerFill} of 8 bytes)`,
        this.#header.subarray(0, this.#headerFill),
      );
    }
    if (this.#payload !== undefined) {
      throw new ProtocolError(
        "frames",
        at,
        `input ended inside a frame payload (${this.#payloadFill} of ${this.#payload.length} bytes)`,
      );
    }
  }

  #push(chunk: Uint8Array): void {
    const n = chunk.length;
    let i = 0;
    if (this.#payload !== undefined) i = this.#fillPayload(chunk, 0);
    while (i < n) {
      if (this.#headerFill === 0 && n - i >= FRAME_HEADER_BYTES) {
        // Fast path: the whole header is in this push.
        const length = this.#check(chunk, i, this.#consumed + i);
        const stream = chunk[i];
        const start = i + FRAME_HEADER_BYTES;
        if (n - start >= length) {
          i = start + length;
          this.#onFrame(stream, chunk, start, i);
          continue;
        }
        this.#frameOffset = this.#consumed + i;
        this.#startPayload(stream, length);
        i = this.#fillPayload(chunk, start);
        continue;
      }
      // Torn header: collect it.
      if (this.#headerFill === 0) this.#frameOffset = this.#consumed + i;
      const take = Math.min(FRAME_HEADER_BYTES - this.#headerFill, n - i);
      this.#header.set(chunk.subarray(i, i + take), this.#headerFill);
      this.#headerFill += take;
      i += take;
      if (this.#headerFill < FRAME_HEADER_BYTES) break;
      this.#headerFill = 0;
      const length = this.#check(this.#header, 0, this.#frameOffset);
      const stream = this.#header[0];
      if (n - i < length) {
        this.#startPayload(stream, length);
        i = this.#fillPayload(chunk, i);
      } else {
        // Header torn, payload whole in this push.
        const start = i;
        i += length;
        this.#onFrame(stream, chunk, start, i);
      }
    }
  }

  /** Validates the header at `buf[i..i+8]`; returns the payload length. */
  #check(buf: Uint8Array, i: number, offset: number): number {
    const stream = buf[i];
    if (stream > 3) {
      throw new ProtocolError(
        "frames",
        offset,
        `bad stream id ${stream} in frame header`,
        buf.subarray(i, i + FRAME_HEADER_BYTES),
      );
    }
    if ((buf[i + 1] | buf[i + 2] | buf[i + 3]) !== 0) {
      throw new ProtocolError(
        "frames",
        offset,
        "non-zero padding in frame header",
        buf.subarray(i, i + FRAME_HEADER_BYTES),
      );
    }
    const length = buf[i + 4] * 0x1000000 + ((buf[i + 5] << 16) | (buf[i + 6] << 8) | buf[i + 7]);
    if (length > this.#maxFrameBytes) {
      throw new ProtocolError(
        "frames",
        offset,
        `frame length ${length} exceeds ${this.#maxFrameBytes} bytes`,
        buf.subarray(i, i + FRAME_HEADER_BYTES),
      );
    }
    return length;
  }

  #startPayload(stream: number, length: number): void {
    this.#payloadStream = stream;
    this.#payload = new Uint8Array(length);
    this.#payloadFill = 0;
  }

  /** Copies payload bytes from `chunk[i..]`; emits the frame when full; returns the next index. */
  #fillPayload(chunk: Uint8Array, i: number): number {
    const payload = this.#payload!;
    const take = Math.min(payload.length - this.#payloadFill, chunk.length - i);
    if (take > 0) payload.set(chunk.subarray(i, i + take), this.#payloadFill);
    this.#payloadFill += take;
    if (this.#payloadFill === payload.length) {
      this.#payload = undefined;
      this.#payloadFill = 0;
      this.#onFrame(this.#payloadStream, payload, 0, payload.length);
    }
    return i + take;
  }
}
