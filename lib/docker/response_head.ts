/**
 * Push parser for the status line and headers of an HTTP/1.x response.
 * @module
 */
import { concatBytes, latin1 } from "../bytes.ts";
import { ProtocolError } from "../errors.ts";

/** Default cap for status line plus headers plus the blank line, bytes (64 KiB). */
export const DEFAULT_MAX_HEAD_BYTES = 64 * 1024;

/** Status line and headers of a response. */
export interface ResponseHead {
  /** Three-digit status code. */
  status: number;
  /** Reason phrase, possibly empty. */
  reason: string;
  /** Header values by lowercased name; repeated headers joined with ", ". */
  headers: Map<string, string>;
}

/** What {@link ResponseHeadReader.push} returns once the head is complete. */
export interface ResponseHeadResult {
  /** The parsed head. */
  head: ResponseHead;
  /** Bytes after the blank line: the start of the body (a subarray of the last push). */
  rest: Uint8Array;
}

const CR = 13;
const LF = 10;
const STATUS_LINE = /^HTTP\/1\.[0-9] ([0-9]{3})(?: (.*))?$/;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Accumulates bytes until `\r\n\r\n`, then parses the head; one response per reader. */
export class ResponseHeadReader {
  readonly #maxHeadBytes: number;
  #pieces: Uint8Array[] = [];
  #size = 0;
  /** How many bytes of `\r\n\r\n` the data seen so far ends with. */
  #matched = 0;
  #complete = false;

  /** `maxHeadBytes` caps the whole head, blank line included. */
  constructor(opts: { maxHeadBytes?: number } = {}) {
    this.#maxHeadBytes = opts.maxHeadBytes ?? DEFAULT_MAX_HEAD_BYTES;
  }

  /**
   * Feeds bytes; returns the head and the bytes after it once `\r\n\r\n` arrived, else
   * `undefined`. Throws `ProtocolError("http")` on a malformed or oversized head.
   */
  push(chunk: Uint8Array): ResponseHeadResult | undefined {
    if (this.#complete) throw new Error("ResponseHeadReader: the head was already read");
    let matched = this.#matched;
    let end = -1;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      if (b === (matched & 1 ? LF : CR)) {
        if (++matched === 4) {
          end = i + 1;
          break;
        }
      } else {
        matched = b === CR ? 1 : 0;
      }
    }
    const taken = end === -1 ? chunk.length : end;
    if (this.#size + taken > this.#maxHeadBytes) {
      throw new ProtocolError(
        "http",
        this.#maxHeadBytes,
        `response head longer than ${this.#maxHeadBytes} bytes`,
        this.#pieces[0] ?? chunk,
      );
    }
    this.#matched = matched;
    this.#size += taken;
    if (end === -1) {
      // The caller's buffer is fresh on every push: keep a reference, join once at the end.
      if (chunk.length > 0) this.#pieces.push(chunk);
      return undefined;
    }
    this.#pieces.push(chunk.subarray(0, end));
    this.#complete = true;
    const bytes = concatBytes(this.#pieces, this.#size);
    this.#pieces = [];
    return { head: parseHead(bytes), rest: chunk.subarray(end) };
  }
}

/** Parses a complete head ending in `\r\n\r\n`. */
function parseHead(bytes: Uint8Array): ResponseHead {
  const text = latin1(bytes.subarray(0, bytes.length - 4));
  const lines = text.split("\r\n");
  const statusLine = lines[0];
  const m = STATUS_LINE.exec(statusLine);
  if (m === null || statusLine.includes("\n") || statusLine.includes("\r")) {
    throw new ProtocolError("http", 0, "bad status line", bytes);
  }
  const headers = new Map<string, string>();
  let offset = statusLine.length + 2;
  for (let n = 1; n < lines.length; n++) {
    const line = lines[n];
    const colon = line.indexOf(":");
    const name = colon > 0 ? line.slice(0, colon) : "";
    const bare = line.includes("\n") || line.includes("\r");
    if (colon === -1 || !TOKEN.test(name) || bare) {
      throw new ProtocolError(
        "http",
        offset,
        bare
          ? "bare CR or LF in a header line"
          : colon === -1
          ? "header line without ':'"
          : "bad header name",
        bytes.subarray(offset),
      );
    }
    const key = name.toLowerCase();
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "");
    const prior = headers.get(key);
    headers.set(key, prior === undefined ? value : `${prior}, ${value}`);
    offset += line.length + 2;
  }
  return { status: Number(m[1]), reason: m[2] ?? "", headers };
}
