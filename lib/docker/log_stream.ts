/**
 * A container's log stream as entries: the body of `/containers/{id}/logs` (status line, headers
 * and chunked coding already undone by `http.ts`) -> frames (multiplexed streams) -> lines, handed
 * out as one batch of `{stream, ts, message}` entries per socket read.
 * @module
 */
import { FrameDemuxer } from "./frames.ts";
import type { StreamName } from "../message.ts";
import { LineAssembler } from "./lines.ts";

/** One log line as the engine sent it. */
export interface LogEntry {
  /** Output stream (a TTY container's merged stream is `stdout`). */
  stream: StreamName;
  /** The engine's timestamp of the line's first piece; "" when it sent none. */
  ts: string;
  /** The line without its newline (TTY: without `\r\n`), at most `maxLineBytes`. */
  message: Uint8Array;
  /**
   * Joined from several engine entries (a line the engine split into pieces). An engine that
   * drops entries (Podman 4.3 after a container died) can make such a line wrong.
   */
  joined?: boolean;
}

/** Options of {@link LogStream}. */
export interface LogStreamOptions {
  /** A TTY container: lines end in `\r\n`, in one raw stream without frames unless `ttyFrames`. */
  tty: boolean;
  /**
   * A TTY container's stream comes in frames, one per engine entry (Podman's own logs endpoint):
   * a line Podman read in pieces is joined without the timestamps of the later pieces.
   */
  ttyFrames?: boolean;
  /** Longest message; longer lines become several entries. */
  maxLineBytes: number;
  /** Called after each entry that cut a line which goes on. */
  onOversize?: (stream: StreamName) => void;
  /** The engine reported an error inside the stream (frame stream 3). */
  onEngineError?: (text: string) => void;
}

/**
 * What a reader of log entries sees: iterate it for one batch per read (possibly empty; an
 * entry and its batch are valid until the next iteration step), then, once it ended, take the
 * lines still without their newline (`flush`) or drop them (`discard`).
 */
export interface LogEntries extends AsyncIterable<readonly LogEntry[]> {
  /** The lines in progress, as complete entries (the container stopped: nothing more comes). */
  flush(): readonly LogEntry[];
  /** Drops the lines in progress (they will be read again). */
  discard(): void;
  /**
   * The engine may end this follow stream before the last lines of a container that stopped
   * (Podman 4.3: see `supervisor/sent_lines.ts`); its log is then read once more, completely.
   */
  readonly mayEndEarly?: boolean;
}

/**
 * Decodes a log body into entry batches, one array per read (reused). An entry is a small object
 * that dies young (pooling them measured slower: old objects written with young values); a
 * message is a subarray of the read when its line lies in one.
 */
export class LogStream implements LogEntries {
  readonly #body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
  readonly #assembler: LineAssembler;
  readonly #demux: FrameDemuxer | undefined;
  readonly #batch: LogEntry[] = [];
  /** See {@link LogEntries.mayEndEarly}. */
  readonly mayEndEarly: boolean;

  /**
   * `body`: the response body's byte pieces, in order (one socket read each); `mayEndEarly`: see
   * {@link LogEntries.mayEndEarly}.
   */
  constructor(
    body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    opts: LogStreamOptions,
    mayEndEarly = false,
  ) {
    this.#body = body;
    this.mayEndEarly = mayEndEarly;
    this.#assembler = new LineAssembler({
      maxLineBytes: opts.maxLineBytes,
      onLine: (stream, ts, message, joined) => this.#add(stream, ts, message, joined),
      onOversize: opts.onOversize,
      crlf: opts.tty,
    });
    const assembler = this.#assembler;
    const onEngineError = opts.onEngineError;
    this.#demux = opts.tty && !opts.ttyFrames ? undefined : new FrameDemuxer({
      onRange: (stream, bytes, start, end) => {
        if (stream === 1) assembler.pushEntry("stdout", bytes, start, end);
        else if (stream === 2) assembler.pushEntry("stderr", bytes, start, end);
        else if (stream === 3) {
          onEngineError?.(new TextDecoder().decode(bytes.subarray(start, end)));
        }
      },
    });
  }

  /**
   * One batch per read. A decoding error is thrown after the batch of the lines completed before
   * it (they are real), and drops the lines in progress.
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<readonly LogEntry[], void, undefined> {
    const batch = this.#batch;
    try {
      for await (const piece of this.#body) {
        batch.length = 0;
        let failure: { err: unknown } | undefined;
        try {
          if (this.#demux) this.#demux.push(piece);
          else this.#assembler.pushRaw(piece);
        } catch (err) {
          failure = { err };
        }
        yield batch;
        if (failure) throw failure.err;
      }
      batch.length = 0;
      this.#demux?.end();
    } catch (err) {
      this.#assembler.discard();
      throw err;
    }
  }

  /** See {@link LogEntries.flush}. */
  flush(): readonly LogEntry[] {
    this.#batch.length = 0;
    this.#assembler.flush();
    return this.#batch;
  }

  /** See {@link LogEntries.discard}. */
  discard(): void {
    this.#assembler.discard();
  }

  #add(stream: StreamName, ts: string, message: Uint8Array, joined: boolean): void {
    this.#batch.push({ stream, ts, message, joined });
  }
}
