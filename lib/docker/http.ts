/**
 * A small HTTP/1.1 GET client over the pooled unix-socket connections: request writer,
 * response head with a deadline, bodies by Content-Length, chunked coding or EOF, exposed as a
 * stream of byte pieces (one per socket read) so that `/logs` and `/events` can follow forever.
 * @module
 */
import { concatBytes } from "../bytes.ts";
import { ProtocolError, ResponseTooLargeError, StreamCutError } from "../errors.ts";
import { ChildSignal } from "../async/child_signal.ts";
import { ChunkedDecoder } from "./chunked.ts";
import { closeQuietly, type ConnectionPool } from "./conn.ts";
import { ResponseHeadReader } from "./response_head.ts";

/**
 * Read sizes: a body's reads start at `READ_MIN_BYTES` (an idle follow stream keeps only that
 * buffer while it waits: a few log lines, and little memory for hundreds of silent containers);
 * a read that fills its buffer doubles the next one up to `READ_MAX_BYTES` (a busy stream takes
 * many lines per read), and a read under a quarter of it halves it again.
 */
export const READ_MIN_BYTES = 512;
/** See {@link READ_MIN_BYTES}. */
export const READ_MAX_BYTES = 256 * 1024;

/** The read size of one stream, following how full its reads come back. */
export class ReadSize {
  #bytes = READ_MIN_BYTES;

  /** The size of the next read. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Takes the length of the read just done. */
  after(n: number): void {
    if (n >= this.#bytes) this.#bytes = Math.min(READ_MAX_BYTES, this.#bytes * 2);
    else if (n < this.#bytes / 4) this.#bytes = Math.max(READ_MIN_BYTES, this.#bytes / 2);
  }
}

const encoder = new TextEncoder();

/** Options of one request. */
export interface GetOptions {
  /** Aborts the request at any stage; the connection is closed. */
  signal: AbortSignal;
  /** Deadline for the status line and headers; none when undefined. */
  headerTimeoutMs: number | undefined;
}

/** A response whose head has arrived; read its body once, or cancel it. */
export interface HttpResponse {
  /** Status code. */
  readonly status: number;
  /** Headers, lowercased names. */
  readonly headers: Map<string, string>;
  /** The body, decoded from chunked coding, one piece per socket read; ends with the body. */
  body(): AsyncGenerator<Uint8Array, void, undefined>;
  /**
   * The whole body as text, at most `maxBytes` of it: a longer body (by its Content-Length, or
   * once that many bytes arrived) closes the connection and throws `ResponseTooLargeError`.
   */
  text(maxBytes: number): Promise<string>;
  /** Closes the connection without reading further. */
  cancel(): void;
}

/** Sends `GET path` and resolves once the response head arrived. Retries once on a stale reused connection. */
export async function httpGet(
  pool: ConnectionPool,
  path: string,
  options: GetOptions,
): Promise<HttpResponse> {
  options.signal.throwIfAborted();
  const first = await pool.acquire();
  try {
    return await exchange(pool, first.conn, path, options);
  } catch (err) {
    if (!first.reused || !(err instanceof StaleConnection)) throw err;
  }
  const fresh = await pool.acquire();
  if (fresh.reused) {
    // Every idle connection is suspect now.
    closeQuietly(fresh.conn);
    pool.clear();
    return exchange(pool, (await pool.acquire()).conn, path, options);
  }
  return exchange(pool, fresh.conn, path, options);
}

/** The connection closed before any byte of the response: it was stale. */
class StaleConnection extends Error {}

async function exchange(
  pool: ConnectionPool,
  conn: Deno.Conn,
  path: string,
  options: GetOptions,
): Promise<HttpResponse> {
  // The request's signal, or the head's deadline: a child of the request's (long-lived) signal
  // that lets go of it once the head is in.
  const head = new ChildSignal([options.signal]);
  const ms = options.headerTimeoutMs;
  if (ms !== undefined) {
    head.abortAfter(
      ms,
      () => new DOMException(`no response headers within ${ms} ms for GET ${path}`, "TimeoutError"),
    );
  }
  const headSignal = head.signal;
  headSignal.addEventListener("abort", () => closeQuietly(conn), { once: true });
  const buf = new Uint8Array(READ_MIN_BYTES);
  const reader = new ResponseHeadReader();
  let gotBytes = false;
  try {
    try {
      await writeAll(
        conn,
        encoder.encode(
          `GET ${path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: karotten\r\nAccept: */*\r\n\r\n`,
        ),
      );
    } catch (err) {
      if (headSignal.aborted) throw headSignal.reason;
      throw new StaleConnection("write failed", { cause: err });
    }
    for (;;) {
      let n: number | null;
      try {
        n = await conn.read(buf);
      } catch (err) {
        if (headSignal.aborted) throw headSignal.reason;
        if (!gotBytes) throw new StaleConnection("read failed", { cause: err });
        throw err;
      }
      if (n === null) {
        if (headSignal.aborted) throw headSignal.reason;
        if (!gotBytes) throw new StaleConnection("closed before the response");
        throw new ProtocolError("http", 0, "connection closed inside the response head");
      }
      gotBytes = true;
      const parsed = reader.push(buf.slice(0, n));
      if (parsed) {
        head.dispose();
        return makeResponse(
          pool,
          conn,
          path,
          parsed.head.status,
          parsed.head.headers,
          parsed.rest,
          options,
        );
      }
    }
  } catch (err) {
    head.dispose();
    closeQuietly(conn);
    throw err;
  }
}

function makeResponse(
  pool: ConnectionPool,
  conn: Deno.Conn,
  path: string,
  status: number,
  headers: Map<string, string>,
  rest: Uint8Array,
  options: GetOptions,
): HttpResponse {
  let consumed = false;
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    closeQuietly(conn);
  };
  const framed = headers.has("content-length") ||
    (headers.get("transfer-encoding")?.toLowerCase().includes("chunked") ?? false) ||
    status === 204 || status === 304;
  const keepAlive = framed && headers.get("connection")?.toLowerCase() !== "close";
  const { signal } = options;
  const onAbort = () => close();
  const reading: BodyReading = {
    begin() {
      if (consumed) throw new Error("response body already read");
      consumed = true;
      signal.addEventListener("abort", onAbort, { once: true });
    },
    end(finished) {
      signal.removeEventListener("abort", onAbort);
      if (finished && keepAlive && !closed) {
        closed = true;
        pool.release(conn);
      } else close();
    },
  };
  // One generator per body, not one wrapping another: a step of each costs every read.
  const body = () => bodyPieces(conn, path, status, headers, rest, signal, reading);
  return {
    status,
    headers,
    body,
    async text(maxBytes: number) {
      const declared = headers.get("content-length");
      if (declared !== undefined && Number(declared) > maxBytes) {
        close();
        throw new ResponseTooLargeError(path, maxBytes, `Content-Length ${declared}`);
      }
      const parts: Uint8Array[] = [];
      let size = 0;
      for await (const piece of body()) {
        size += piece.length;
        if (size > maxBytes) {
          // Leaving the loop closes the connection (the body is not finished).
          throw new ResponseTooLargeError(path, maxBytes, `more than ${maxBytes} bytes sent`);
        }
        parts.push(piece);
      }
      return new TextDecoder().decode(concatBytes(parts));
    },
    cancel: close,
  };
}

/** What a body's generator tells its response: it starts, and it ends (read whole or not). */
interface BodyReading {
  /** At the first step; throws when the body was read already. */
  begin(): void;
  /** Once, when the generator ends; `finished` when the whole body was read. */
  end(finished: boolean): void;
}

/** The body's pieces, one per socket read. */
async function* bodyPieces(
  conn: Deno.Conn,
  path: string,
  status: number,
  headers: Map<string, string>,
  rest: Uint8Array,
  signal: AbortSignal,
  reading: BodyReading,
): AsyncGenerator<Uint8Array, void, undefined> {
  reading.begin();
  let finished = false;
  try {
    if (status === 204 || status === 304 || (status >= 100 && status < 200)) {
      finished = true;
      return;
    }
    const size = new ReadSize();
    let buf = new Uint8Array(size.bytes);
    /** The next read's bytes, a copy that is the reader's to keep (or overwrite); null at EOF. */
    const read = async (): Promise<Uint8Array | null> => {
      if (buf.length !== size.bytes) buf = new Uint8Array(size.bytes);
      let n: number | null;
      try {
        n = await conn.read(buf);
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        throw err;
      }
      if (signal.aborted) throw signal.reason;
      if (n === null) return null;
      size.after(n);
      return buf.slice(0, n);
    };
    if (headers.get("transfer-encoding")?.toLowerCase().includes("chunked")) {
      const decoder = new ChunkedDecoder();
      let chunk: Uint8Array | null = rest;
      for (;;) {
        // The chunks of one read go on as one piece, their data moved together in the read's
        // own copy: the engine sends a chunk per log entry, and each piece costs the readers a
        // step of their async iteration.
        if (chunk.length > 0) {
          const piece = decoder.pushInPlace(chunk);
          if (piece.length > 0) yield piece;
        }
        if (decoder.done) {
          finished = true;
          return;
        }
        chunk = await read();
        if (chunk === null) {
          if (decoder.betweenChunks) throw new StreamCutError(path);
          decoder.end();
          finished = true;
          return;
        }
      }
    }
    const lengthHeader = headers.get("content-length");
    if (lengthHeader !== undefined) {
      let left = Number(lengthHeader);
      if (!Number.isSafeInteger(left) || left < 0) {
        throw new ProtocolError("http", 0, `bad Content-Length ${JSON.stringify(lengthHeader)}`);
      }
      let chunk: Uint8Array | null = rest;
      while (left > 0) {
        if (chunk.length > 0) {
          const piece = chunk.length > left ? chunk.subarray(0, left) : chunk;
          left -= piece.length;
          yield piece;
        }
        if (left === 0) break;
        chunk = await read();
        if (chunk === null) {
          throw new ProtocolError("http", 0, `connection closed with ${left} body bytes missing`);
        }
      }
      finished = true;
      return;
    }
    if (rest.length > 0) yield rest;
    for (;;) {
      const chunk = await read();
      if (chunk === null) {
        finished = true;
        return;
      }
      yield chunk;
    }
  } finally {
    reading.end(finished);
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}
