/**
 * Turns Docker log entries (read with `timestamps=1`) into capped log lines: frame payloads of
 * multiplexed streams, or the plain byte stream of TTY containers.
 * @module
 */
import {
  decodeTimestamp,
  isTimestampPrefix,
  PREFIX_SCAN,
  timestampPrefixEnd,
} from "./timestamp_prefix.ts";
import { concatBytes } from "../bytes.ts";
import type { StreamName } from "../message.ts";

/** The engine splits longer lines into pieces of this many bytes, each with the same timestamp. */
export const ENGINE_PIECE_BYTES = 16384;

/** Options of {@link LineAssembler}. */
export interface LineAssemblerOptions {
  /** Longest message; longer lines are emitted as several messages of at most this size. */
  maxLineBytes: number;
  /**
   * Receives each line (without its newline), the timestamp of its first piece ("" if none), and
   * whether it was joined from several engine entries (pieces of a split line).
   */
  onLine: (stream: StreamName, timestamp: string, message: Uint8Array, joined: boolean) => void;
  /** Called after each message cut off a line that goes on. */
  onOversize?: (stream: StreamName) => void;
  /**
   * Entries of a TTY container ({@link LineAssembler.pushEntry}): a line's `\r\n` is its end, a
   * CR before its LF is dropped, even when it came in an entry of its own.
   */
  crlf?: boolean;
}

/** A stream's line in progress. */
interface Pending {
  /** Timestamp of the line's first piece. */
  ts: string;
  /** Content so far: references to pushed buffers, joined once. */
  pieces: Uint8Array[];
  bytes: number;
  /** A line is in progress (it may have no content yet). */
  started: boolean;
  /** At least one capped message of this line was emitted. */
  cut: boolean;
  /** The line goes on past an engine entry (a piece without its newline, or a repeated prefix). */
  joined: boolean;
}

const LF = 10;
const CR = 13;
const SPACE = 32;
const EMPTY = new Uint8Array(0);

/** Raw mode phases. */
const Phase = { Prefix: 0, Content: 1, Repeat: 2 } as const;

function pending(): Pending {
  return { ts: "", pieces: [], bytes: 0, started: false, cut: false, joined: false };
}

/**
 * Reassembles log lines from entries, per stream, and caps their size. Use either
 * {@link LineAssembler.pushEntry} (multiplexed) or {@link LineAssembler.pushRaw} (TTY) on one
 * instance, not both. Messages are subarrays of the pushed buffers when a line lies in one.
 */
export class LineAssembler {
  readonly #max: number;
  readonly #onLine: LineAssemblerOptions["onLine"];
  readonly #onOversize: ((stream: StreamName) => void) | undefined;
  readonly #crlf: boolean;
  #out = pending();
  #err = pending();
  // Raw (TTY) mode state; raw lines are stdout's.
  #phase: number = Phase.Prefix;
  /** A timestamp prefix torn across pushes: its bytes so far. */
  readonly #pre = new Uint8Array(PREFIX_SCAN);
  #preLen = 0;
  /** The line's timestamp plus a space, as it repeats before each engine piece; or undefined. */
  #tsBytes: Uint8Array | undefined;
  /** Content bytes since the line's start or its last engine piece boundary. */
  #pieceBytes = 0;
  /** Bytes of a repeated prefix matched so far (Repeat phase). */
  #repeat = 0;

  /** See {@link LineAssemblerOptions}. */
  constructor(opts: LineAssemblerOptions) {
    if (!(opts.maxLineBytes >= 1)) throw new RangeError("maxLineBytes must be at least 1");
    this.#max = opts.maxLineBytes;
    this.#onLine = opts.onLine;
    this.#onOversize = opts.onOversize;
    this.#crlf = opts.crlf ?? false;
  }

  /**
   * Feeds one engine log entry (one frame payload, `bytes[start..end)`, all of `bytes` by
   * default): `<timestamp> <content>`. A line's message is the one view made of it.
   */
  pushEntry(stream: StreamName, bytes: Uint8Array, start = 0, end = bytes.length): void {
    const st = stream === "stdout" ? this.#out : this.#err;
    const sp = timestampPrefixEnd(bytes, start, end);
    const from = sp === -1 ? start : sp + 1;
    if (!st.started) {
      st.started = true;
      st.ts = sp === -1 ? "" : decodeTimestamp(bytes, start, sp);
    } else st.joined = true;
    const n = end - from;
    if (n > 0 && bytes[end - 1] === LF) {
      let last = end - 1;
      if (this.#crlf) {
        if (last > from) {
          if (bytes[last - 1] === CR) last--;
        } else if (st.bytes > 0) dropTrailingCr(st);
      }
      this.#finish(st, stream, bytes.subarray(from, last));
    } else if (n > 0) {
      st.pieces.push(bytes.subarray(from, end));
      st.bytes += n;
      if (this.#crlf) this.#capCrlf(st, stream);
      else while (st.bytes > this.#max) this.#cutFront(st, stream);
    }
  }

  /** Feeds bytes of a TTY container's log stream (no frames), chunked anyhow. */
  pushRaw(chunk: Uint8Array): void {
    const st = this.#out;
    const n = chunk.length;
    let i = 0;
    let nl = -2; // next LF at or after some earlier index; -1: none left; -2: not searched yet
    while (i < n) {
      if (this.#phase === Phase.Content) {
        if (nl === -2 || (nl !== -1 && nl < i)) nl = chunk.indexOf(LF, i);
        const limit = this.#tsBytes === undefined ? n : i + ENGINE_PIECE_BYTES - this.#pieceBytes;
        if (nl !== -1 && nl <= limit) {
          let seg = chunk.subarray(i, nl);
          if (seg.length > 0) {
            if (seg[seg.length - 1] === CR) seg = seg.subarray(0, seg.length - 1);
          } else if (st.bytes > 0) {
            dropTrailingCr(st);
          }
          i = nl + 1;
          this.#newRawLine();
          this.#finish(st, "stdout", seg);
          continue;
        }
        const end = limit < n ? limit : n;
        if (end > i) {
          st.pieces.push(chunk.subarray(i, end));
          st.bytes += end - i;
          this.#pieceBytes += end - i;
          this.#capCrlf(st, "stdout");
        }
        i = end;
        if (this.#pieceBytes === ENGINE_PIECE_BYTES && this.#tsBytes !== undefined) {
          this.#phase = Phase.Repeat;
          this.#repeat = 0;
        }
      } else if (this.#phase === Phase.Prefix) {
        i = this.#prefix(chunk, i);
      } else {
        i = this.#repeatPrefix(chunk, i);
      }
    }
  }

  /** Emits every line in progress as complete (input ended, the container stopped). */
  flush(): void {
    if (this.#phase === Phase.Prefix && this.#preLen > 0) {
      this.#out.started = true;
      this.#out.ts = "";
      this.#addRaw(this.#out, this.#pre.slice(0, this.#preLen));
    } else if (this.#phase === Phase.Repeat && this.#repeat > 0) {
      this.#addRaw(this.#out, this.#tsBytes!.subarray(0, this.#repeat));
    }
    this.#newRawLine();
    if (this.#out.started) this.#finish(this.#out, "stdout", EMPTY);
    if (this.#err.started) this.#finish(this.#err, "stderr", EMPTY);
  }

  /** Drops every line in progress (input ended while the container runs; it will be re-read). */
  discard(): void {
    this.#out = pending();
    this.#err = pending();
    this.#newRawLine();
  }

  /** Resets the raw-mode state for the next line. */
  #newRawLine(): void {
    this.#phase = Phase.Prefix;
    this.#preLen = 0;
    this.#tsBytes = undefined;
    this.#pieceBytes = 0;
    this.#repeat = 0;
  }

  /** Reads a line's timestamp prefix from `chunk[i..]` (raw mode); returns the next index. */
  #prefix(chunk: Uint8Array, i: number): number {
    const st = this.#out;
    const n = chunk.length;
    const had = this.#preLen;
    const lim = Math.min(n, i + PREFIX_SCAN - had);
    let j = i;
    while (j < lim && chunk[j] !== SPACE && chunk[j] !== LF) j++;
    if (j === lim && had + j - i < PREFIX_SCAN) {
      // Neither space nor LF yet: the prefix is torn; keep its bytes.
      this.#pre.set(chunk.subarray(i, n), had);
      this.#preLen += n - i;
      return n;
    }
    st.started = true;
    st.ts = "";
    this.#phase = Phase.Content;
    this.#preLen = 0;
    if (j < lim && chunk[j] === SPACE) {
      let bytes = chunk;
      let start = i;
      if (had > 0) {
        bytes = new Uint8Array(had + j - i + 1);
        bytes.set(this.#pre.subarray(0, had));
        bytes.set(chunk.subarray(i, j + 1), had);
        start = 0;
      }
      const end = start + had + j - i;
      if (isTimestampPrefix(bytes, start, end)) {
        st.ts = decodeTimestamp(bytes, start, end);
        this.#tsBytes = bytes.subarray(start, end + 1);
        return j + 1;
      }
    }
    // No timestamp: the bytes scanned are content.
    if (had > 0) this.#addRaw(st, this.#pre.slice(0, had));
    return i;
  }

  /** Matches the repeated `<timestamp> ` before an engine piece (raw mode). */
  #repeatPrefix(chunk: Uint8Array, i: number): number {
    const want = this.#tsBytes!;
    const n = chunk.length;
    let k = this.#repeat;
    let j = i;
    while (k < want.length && j < n && chunk[j] === want[k]) {
      k++;
      j++;
    }
    if (k === want.length) {
      this.#out.joined = true;
      this.#phase = Phase.Content;
      this.#pieceBytes = 0;
      this.#repeat = 0;
      return j;
    }
    if (j === n) {
      this.#repeat = k;
      return n;
    }
    // Not a piece boundary: bytes matched in earlier pushes are content, the rest is re-read.
    const earlier = this.#repeat;
    this.#phase = Phase.Content;
    this.#pieceBytes = 0;
    this.#repeat = 0;
    if (earlier > 0) this.#addRaw(this.#out, want.subarray(0, earlier));
    return i;
  }

  /** Appends content to the raw line and applies the cap. */
  #addRaw(st: Pending, piece: Uint8Array): void {
    st.pieces.push(piece);
    st.bytes += piece.length;
    this.#pieceBytes += piece.length;
    this.#capCrlf(st, "stdout");
  }

  /** Caps a TTY line; a trailing CR is not counted yet: it may belong to the line end. */
  #capCrlf(st: Pending, stream: StreamName): void {
    while (st.bytes > this.#max) {
      const last = st.pieces[st.pieces.length - 1];
      if (last[last.length - 1] === CR && st.bytes - 1 <= this.#max) return;
      this.#cutFront(st, stream);
    }
  }

  /** Completes a stream's line with its last piece. */
  #finish(st: Pending, stream: StreamName, last: Uint8Array): void {
    const ts = st.ts;
    let message = last;
    if (st.bytes > 0 || last.length > this.#max) {
      if (last.length > 0) {
        st.pieces.push(last);
        st.bytes += last.length;
      }
      while (st.bytes > this.#max) this.#cutFront(st, stream);
      message = concatBytes(st.pieces, st.bytes);
    }
    const skip = st.cut && message.length === 0;
    const joined = st.joined;
    // Emptied, not replaced: most lines never use it, and a new array per line is garbage.
    if (st.pieces.length > 0) st.pieces.length = 0;
    st.bytes = 0;
    st.started = false;
    st.cut = false;
    st.joined = false;
    st.ts = "";
    if (!skip) this.#onLine(stream, ts, message, joined);
  }

  /** Emits the first `maxLineBytes` bytes of a stream's pending line as a capped message. */
  #cutFront(st: Pending, stream: StreamName): void {
    const max = this.#max;
    const pieces = st.pieces;
    let message: Uint8Array;
    if (pieces[0].length >= max) {
      message = pieces[0].subarray(0, max);
      if (pieces[0].length === max) pieces.shift();
      else pieces[0] = pieces[0].subarray(max);
    } else {
      message = new Uint8Array(max);
      let at = 0;
      let k = 0;
      while (at < max) {
        const p = pieces[k];
        const take = Math.min(p.length, max - at);
        message.set(take === p.length ? p : p.subarray(0, take), at);
        at += take;
        if (take === p.length) k++;
        else pieces[k] = p.subarray(take);
      }
      pieces.splice(0, k);
    }
    st.bytes -= max;
    st.cut = true;
    this.#onLine(stream, st.ts, message, st.joined);
    this.#onOversize?.(stream);
  }
}

/** Removes one CR ending the pending content. */
function dropTrailingCr(st: Pending): void {
  const k = st.pieces.length - 1;
  const last = st.pieces[k];
  if (last[last.length - 1] !== CR) return;
  st.bytes--;
  if (last.length === 1) st.pieces.pop();
  else st.pieces[k] = last.subarray(0, last.length - 1);
}
