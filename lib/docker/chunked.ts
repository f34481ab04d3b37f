/**
 * Push decoder for the HTTP/1.1 chunked transfer coding.
 * @module
 */
import { concatBytes } from "../bytes.ts";
import { ProtocolError } from "../errors.ts";

/** Longest chunk-size line, CRLF included, bytes. */
export const MAX_SIZE_LINE_BYTES = 1024;
/** Longest trailer line, CRLF included, bytes. */
export const MAX_TRAILER_LINE_BYTES = 8 * 1024;
/** Largest chunk size accepted (2^31). */
export const MAX_CHUNK_BYTES = 2 ** 31;

const CR = 13;
const LF = 10;

/** Decoder states. */
const State = { Size: 0, Data: 1, DataCr: 2, DataLf: 3, Trailer: 4, Done: 5 } as const;

/** Decodes a chunked body and hands out the data as subarrays of the pushed buffers. */
export class ChunkedDecoder {
  readonly #onData: (piece: Uint8Array) => void;
  #state: number = State.Size;
  #failed: ProtocolError | undefined;
  /** Data bytes left in the current chunk. */
  #left = 0;
  /** Bytes pushed before the current push. */
  #consumed = 0;
  /** Start of a size or trailer line torn across pushes (references, joined once). */
  #linePieces: Uint8Array[] = [];
  #lineSize = 0;
  #restPieces: Uint8Array[] = [];

  /**
   * `onData` receives each piece of body data given to `push`, in order, never empty; a decoder
   * fed only through `pushInPlace` needs none.
   */
  constructor(onData: (piece: Uint8Array) => void = () => {}) {
    this.#onData = onData;
  }

  /** True once the last chunk and the trailer have been read. */
  get done(): boolean {
    return this.#state === State.Done;
  }

  /**
   * True between two chunks: the input so far ends after a whole chunk. Input that ends here
   * (and not `done`) was cut by the sender, not garbled.
   */
  get betweenChunks(): boolean {
    return this.#state === State.Size && this.#lineSize === 0;
  }

  /** Bytes pushed after the end of the chunked body. */
  get rest(): Uint8Array {
    const pieces = this.#restPieces;
    if (pieces.length === 0) return new Uint8Array(0);
    if (pieces.length > 1) this.#restPieces = [concatBytes(pieces)];
    return this.#restPieces[0];
  }

  /**
   * Feeds bytes; throws `ProtocolError("chunked")` on a coding error, and again on every later
   * push.
   */
  push(chunk: Uint8Array): void {
    this.#decode(chunk, false);
  }

  /**
   * Like `push`, but the data is not handed to `onData`: it is moved to the front of `chunk`
   * (overwriting the coding bytes there) and returned as one view of it, empty when the push
   * held no data. For a reader that owns each read's bytes: no view or copy per chunk.
   */
  pushInPlace(chunk: Uint8Array): Uint8Array {
    return chunk.subarray(0, this.#decode(chunk, true));
  }

  /** Decodes one push; in place, returns the data bytes moved to the front of `chunk`. */
  #decode(chunk: Uint8Array, inPlace: boolean): number {
    if (this.#failed) throw this.#failed;
    const n = chunk.length;
    let i = 0;
    let w = 0;
    try {
      while (i < n) {
        switch (this.#state) {
          case State.Data: {
            const take = Math.min(this.#left, n - i);
            const from = i;
            i += take;
            this.#left -= take;
            if (this.#left === 0) this.#state = State.DataCr;
            if (!inPlace) {
              this.#onData(chunk.subarray(from, i));
            } else {
              // Only bytes before `i` are overwritten: what is left to decode stays.
              if (w !== from) chunk.copyWithin(w, from, i);
              w += take;
            }
            break;
          }
          case State.DataCr:
          case State.DataLf: {
            const want = this.#state === State.DataCr ? CR : LF;
            if (chunk[i] !== want) {
              throw new ProtocolError(
                "chunked",
                this.#consumed + i,
                "missing CRLF after chunk data",
                chunk.subarray(i),
              );
            }
            i++;
            this.#state = want === CR ? State.DataLf : State.Size;
            break;
          }
          case State.Size:
          case State.Trailer:
            i = this.#line(chunk, i);
            break;
          case State.Done:
            this.#restPieces.push(i === 0 ? chunk : chunk.subarray(i));
            i = n;
            break;
        }
      }
    } catch (err) {
      if (err instanceof ProtocolError) this.#failed = err;
      throw err;
    } finally {
      this.#consumed += n;
    }
    return w;
  }

  /** Declares the end of input; throws `ProtocolError("chunked")` unless the body was complete. */
  end(): void {
    if (this.#state === State.Done) return;
    const where = this.#state === State.Data || this.#state === State.DataCr ||
        this.#state === State.DataLf
      ? `inside a chunk (${this.#left} data bytes missing)`
      : this.#state === State.Trailer
      ? "inside the trailer"
      : "before the last chunk";
    throw new ProtocolError("chunked", this.#consumed, `input ended ${where}`);
  }

  /** Reads (part of) a size or trailer line starting at `i`; returns the next index. */
  #line(chunk: Uint8Array, i: number): number {
    const max = this.#state === State.Size ? MAX_SIZE_LINE_BYTES : MAX_TRAILER_LINE_BYTES;
    const lf = chunk.indexOf(LF, i);
    const end = lf === -1 ? chunk.length : lf + 1;
    if (this.#lineSize + end - i > max) {
      const at = this.#consumed + i - this.#lineSize;
      const kind = this.#state === State.Size ? "chunk-size" : "trailer";
      throw new ProtocolError("chunked", at, `${kind} line longer than ${max} bytes`);
    }
    if (lf === -1) {
      this.#linePieces.push(chunk.subarray(i));
      this.#lineSize += chunk.length - i;
      return chunk.length;
    }
    let line = chunk.subarray(i, end);
    const lineOffset = this.#consumed + i - this.#lineSize;
    if (this.#lineSize > 0) {
      this.#linePieces.push(line);
      line = concatBytes(this.#linePieces);
      this.#linePieces = [];
      this.#lineSize = 0;
    }
    if (line.length < 2 || line[line.length - 2] !== CR) {
      throw new ProtocolError("chunked", lineOffset, "line does not end with CRLF", line);
    }
    if (this.#state === State.Trailer) {
      if (line.length === 2) this.#state = State.Done;
      return end;
    }
    const size = parseSize(line, lineOffset);
    if (size === 0) {
      this.#state = State.Trailer;
    } else {
      this.#left = size;
      this.#state = State.Data;
    }
    return end;
  }
}

/** Parses `HEX [BWS] [; ext]* CRLF`; rejects anything else. */
function parseSize(line: Uint8Array, offset: number): number {
  const end = line.length - 2;
  let size = 0;
  let i = 0;
  for (; i < end; i++) {
    const b = line[i];
    let d: number;
    if (b >= 48 && b <= 57) d = b - 48;
    else if (b >= 97 && b <= 102) d = b - 87;
    else if (b >= 65 && b <= 70) d = b - 55;
    else break;
    size = size * 16 + d;
    if (size > MAX_CHUNK_BYTES) {
      throw new ProtocolError("chunked", offset, "chunk size larger than 2^31", line);
    }
  }
  if (i === 0) throw new ProtocolError("chunked", offset, "chunk size is not hex", line);
  while (i < end && (line[i] === 32 || line[i] === 9)) i++;
  if (i < end && line[i] !== 59) {
    throw new ProtocolError("chunked", offset + i, "chunk size is not hex", line);
  }
  return size;
}
