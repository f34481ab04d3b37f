/**
 * Request parsing for `FakeEngine`: request heads and Content-Length bodies off a keep-alive
 * connection, and the small byte and error helpers it shares with the engine.
 * @module
 */
import type { FakeRequest } from "./fake_engine.ts";
import { concatBytes } from "../../lib/bytes.ts";

/** Longest request head the fake accepts. */
const MAX_HEAD_BYTES = 64 * 1024;

/** A request as parsed, before the engine adds `signal` and `hold`. */
export type RequestHead = Omit<FakeRequest, "signal" | "hold">;

/** Reads requests off one connection, keeping bytes that belong to the next one. */
export class RequestReader {
  readonly #conn: Deno.Conn;
  #buf: Uint8Array = new Uint8Array(0);

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /** The next request, or null when the client closed the connection between requests. */
  async next(): Promise<RequestHead | null> {
    let end: number;
    while ((end = indexOfHeadEnd(this.#buf)) === -1) {
      if (this.#buf.length > MAX_HEAD_BYTES) throw new Error("FakeEngine: request head too long");
      if (!await this.#fill()) {
        if (this.#buf.length === 0) return null;
        throw new Error("FakeEngine: connection closed in the middle of a request head");
      }
    }
    const text = new TextDecoder().decode(this.#buf.subarray(0, end));
    this.#buf = this.#buf.slice(end + 4);
    const [requestLine, ...headerLines] = text.split("\r\n");
    const [method, path, version] = requestLine.split(" ");
    if (version === undefined || !version.startsWith("HTTP/1.")) {
      throw new Error(`FakeEngine: bad request line "${requestLine}"`);
    }
    const headers = new Headers();
    for (const line of headerLines) {
      const colon = line.indexOf(":");
      if (colon <= 0) throw new Error(`FakeEngine: bad header line "${line}"`);
      headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    }
    if (headers.has("transfer-encoding")) {
      throw new Error("FakeEngine: chunked request bodies are not supported");
    }
    const length = Number(headers.get("content-length") ?? "0");
    while (this.#buf.length < length) {
      if (!await this.#fill()) throw new Error("FakeEngine: connection closed inside a body");
    }
    const body = this.#buf.slice(0, length);
    this.#buf = this.#buf.slice(length);
    return { method, path, url: new URL(path, "http://docker"), version, headers, body };
  }

  /** Reads and drops everything until EOF or until the connection is closed under it. */
  async drain(): Promise<void> {
    this.#buf = new Uint8Array(0);
    const scratch = new Uint8Array(16 * 1024);
    try {
      while (await this.#conn.read(scratch) !== null) {
        // dropped
      }
    } catch (err) {
      if (!isDisconnect(err)) throw err;
    }
  }

  async #fill(): Promise<boolean> {
    const scratch = new Uint8Array(16 * 1024);
    const n = await this.#conn.read(scratch);
    if (n === null) return false;
    this.#buf = concatBytes([this.#buf, scratch.subarray(0, n)]);
    return true;
  }
}

/** Offset of the CRLFCRLF that ends a request head, or -1. */
function indexOfHeadEnd(buf: Uint8Array): number {
  for (let i = 0; i + 3 < buf.length; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) return i;
  }
  return -1;
}

/** Whether the client asked for the connection to close after this request. */
export function wantsClose(req: RequestHead): boolean {
  const connection = req.headers.get("connection")?.toLowerCase();
  return connection === "close" || (req.version === "HTTP/1.0" && connection !== "keep-alive");
}

/** Errors that only mean the client went away, or the engine closed the connection itself. */
export function isDisconnect(err: unknown): boolean {
  return err instanceof Deno.errors.BrokenPipe || err instanceof Deno.errors.ConnectionReset ||
    err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted ||
    err instanceof Deno.errors.NotConnected;
}
