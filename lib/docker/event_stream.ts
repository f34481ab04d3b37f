/**
 * The engine's `/events` body as events: newline-delimited JSON, handed out as one batch of
 * events per socket read that completed a line. One line may hold at most
 * `MAX_EVENT_LINE_BYTES`: a longer one (a body that never sends a newline) fails the stream
 * instead of growing without bound.
 * @module
 */
import { concatBytes } from "../bytes.ts";
import { MAX_EVENT_LINE_BYTES } from "../config.ts";
import { ProtocolError, ShapeError } from "../errors.ts";
import { checkEvent } from "./shapes.ts";

/** One `/events` message (container events only), as `checkEvent` passes it on. */
export interface DockerEvent {
  /** Object type: `container`. */
  Type?: string;
  /** `start`, `die`, `destroy`, ... */
  Action?: string;
  /** The container. */
  Actor?: { ID?: string; Attributes?: Record<string, string> };
  /** Event time, ns since the epoch. */
  timeNano?: number;
}

/** What becomes of lines that are not events. */
export interface EventStreamHandlers {
  /** A line that is not JSON: its first 120 characters. */
  onUnparsable(sample: string): void;
  /** JSON of the wrong shape: what is wrong, and the first 120 characters. */
  onInvalid(problem: string, sample: string): void;
}

/** Longest sample of a bad line passed on, characters. */
const SAMPLE_CHARS = 120;
const NEWLINE = 0x0a;

/**
 * Frames an events body into JSON lines. Iterate it for one batch per read that completed at
 * least one line (possibly empty, when every line in it was bad: the stream is alive); a read
 * without a newline yields nothing, so it is no sign of life for a watchdog.
 */
export class EventStream implements AsyncIterable<readonly DockerEvent[]> {
  readonly #body: AsyncIterable<Uint8Array>;
  readonly #handlers: EventStreamHandlers;
  readonly #maxLineBytes: number;

  /** `body`: the response body's byte pieces, in order. */
  constructor(
    body: AsyncIterable<Uint8Array>,
    handlers: EventStreamHandlers,
    maxLineBytes = MAX_EVENT_LINE_BYTES,
  ) {
    this.#body = body;
    this.#handlers = handlers;
    this.#maxLineBytes = maxLineBytes;
  }

  /** One batch of events per read that completed a line. */
  async *[Symbol.asyncIterator](): AsyncGenerator<readonly DockerEvent[], void, undefined> {
    const decoder = new TextDecoder();
    // The start of the current line, from earlier reads (copied: each read may reuse its buffer).
    let partial: Uint8Array[] = [];
    let partialBytes = 0;
    let offset = 0;
    for await (const piece of this.#body) {
      const batch: DockerEvent[] = [];
      let lines = 0;
      let start = 0;
      let nl: number;
      while ((nl = piece.indexOf(NEWLINE, start)) >= 0) {
        const tail = piece.subarray(start, nl);
        if (partialBytes + tail.length > this.#maxLineBytes) this.#tooLong(offset + nl);
        const bytes = partial.length === 0 ? tail : concatBytes([...partial, tail]);
        partial = [];
        partialBytes = 0;
        lines++;
        const line = decoder.decode(bytes).trim();
        if (line !== "") this.#parse(line, batch);
        start = nl + 1;
      }
      if (start < piece.length) {
        partialBytes += piece.length - start;
        if (partialBytes > this.#maxLineBytes) this.#tooLong(offset + piece.length);
        partial.push(piece.slice(start));
      }
      offset += piece.length;
      if (lines > 0) yield batch;
    }
  }

  #tooLong(offset: number): never {
    throw new ProtocolError(
      "events",
      offset,
      `event line longer than ${this.#maxLineBytes} bytes`,
    );
  }

  #parse(line: string, batch: DockerEvent[]): void {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      this.#handlers.onUnparsable(line.slice(0, SAMPLE_CHARS));
      return;
    }
    try {
      const event = checkEvent(value);
      const docker = typeof event.Action === "string" ? PODMAN_ACTIONS[event.Action] : undefined;
      batch.push(docker === undefined ? event : { ...event, Action: docker });
    } catch (err) {
      if (!(err instanceof ShapeError)) throw err;
      this.#handlers.onInvalid(err.message, line.slice(0, SAMPLE_CHARS));
    }
  }
}

/**
 * Podman's names of the container events karotten follows, and Docker's for them: Podman 4.3
 * filters on its own names (`died`, `remove`; 4.4 accepts `die` too), renames `died` to `die`
 * only on output, and never sends `destroy`: its `remove` is that event.
 */
const PODMAN_ACTIONS: Readonly<Record<string, string>> = { died: "die", remove: "destroy" };

/**
 * The `event` filter values for Docker's `start`, `die` and `destroy` on both engines: Docker's
 * names and Podman's own (an engine ignores names it does not know).
 */
export function eventFilterNames(docker: readonly string[]): string[] {
  const names = [...docker];
  for (const [podman, name] of Object.entries(PODMAN_ACTIONS)) {
    if (docker.includes(name)) names.push(podman);
  }
  return names;
}
