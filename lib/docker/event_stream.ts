/**
 * The engine's `/events` body as events: newline-delimited JSON, handed out as one batch of
 * events per socket read.
 * @module
 */

/** One `/events` message (container events only). */
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

/** Longest sample of an unparsable line passed on, characters. */
const SAMPLE_CHARS = 120;

/**
 * Frames an events body into JSON lines. Iterate it for one batch per read (possibly empty: the
 * read itself shows the stream is alive); a line that is not a JSON object is passed to
 * `onUnparsable` (its first 120 characters) and skipped.
 */
export class EventStream implements AsyncIterable<readonly DockerEvent[]> {
  readonly #body: AsyncIterable<Uint8Array>;
  readonly #onUnparsable: (sample: string) => void;

  /** `body`: the response body's byte pieces, in order. */
  constructor(body: AsyncIterable<Uint8Array>, onUnparsable: (sample: string) => void) {
    this.#body = body;
    this.#onUnparsable = onUnparsable;
  }

  /** One batch of events per read. */
  async *[Symbol.asyncIterator](): AsyncGenerator<readonly DockerEvent[], void, undefined> {
    const decoder = new TextDecoder();
    let text = "";
    for await (const piece of this.#body) {
      const batch: DockerEvent[] = [];
      text += decoder.decode(piece, { stream: true });
      let nl: number;
      while ((nl = text.indexOf("\n")) >= 0) {
        const line = text.slice(0, nl).trim();
        text = text.slice(nl + 1);
        if (line !== "") this.#parse(line, batch);
      }
      yield batch;
    }
  }

  #parse(line: string, batch: DockerEvent[]): void {
    let ev: unknown;
    try {
      ev = JSON.parse(line);
    } catch {
      this.#onUnparsable(line.slice(0, SAMPLE_CHARS));
      return;
    }
    if (ev && typeof ev === "object") batch.push(ev as DockerEvent);
  }
}
