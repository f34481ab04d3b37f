/**
 * A fake Docker engine on a unix socket, for the faults a real engine can't show on demand:
 * hung headers, silent streams, torn frames, EOF in the middle of a chunk.
 *
 * It parses requests (method, path, headers, a Content-Length body), keeps connections alive
 * across requests, and hands each to the handler of the last `route()` whose pattern matches
 * the path (query included). A handler writes a whole response with `json()` / `respond()`, or a
 * chunked one with `chunkedStart()` / `chunk()` / `chunkEnd()`, or nothing at all, and may
 * `await req.hold()` to keep the connection open until the client or `close()` ends it.
 *
 * @example
 * ```ts
 * const engine = await FakeEngine.start();
 * engine.route(api("/containers/[0-9a-f]+/logs"), async (req, conn) => {
 *   await chunkedStart(conn, 200, {});
 *   await chunk(conn, frame(1, "2024-01-01T00:00:00.000000000Z hello\n"));
 *   await req.hold(); // never ends the stream
 *   return "close";
 * });
 * // ... point karotten at engine.sock ...
 * await engine.close();
 * ```
 * @module
 */
import { isDisconnect, RequestReader, wantsClose } from "./_fake_http.ts";
import { concatBytes } from "../../lib/bytes.ts";

/** The API version the fake engine announces. */
export const FAKE_API_VERSION = "1.41";

/** A parsed request, as a handler gets it. */
export interface FakeRequest {
  /** `GET`, `HEAD`, `POST`, ... */
  method: string;
  /** The request target as sent: path and query (`/v1.41/events?filters=...`). */
  path: string;
  /** The target parsed against `http://docker`: `url.pathname`, `url.searchParams`. */
  url: URL;
  /** `HTTP/1.1` or `HTTP/1.0`. */
  version: string;
  /** Request headers. */
  headers: Headers;
  /** The body (Content-Length bytes; empty without one). */
  body: Uint8Array;
  /** Aborted when the engine closes. */
  signal: AbortSignal;
  /**
   * Keeps the connection open, reading and dropping whatever comes, until the client closes it
   * or the engine closes. Never throws.
   */
  hold(): Promise<void>;
}

/** What the connection does after a handler: `"keep"` (the default) reads the next request. */
export type HandlerResult = "keep" | "close" | void;

/** Answers one request; see the module doc. */
export type Handler = (req: FakeRequest, conn: Deno.Conn) => Promise<HandlerResult>;

/** One request the engine got. */
export interface RecordedRequest {
  /** The method. */
  method: string;
  /** Path and query as sent. */
  path: string;
  /** When it arrived, `performance.now()` ms. */
  at: number;
}

/** The pattern of an API path with an optional `/vX.Y` prefix and query, as `route()` wants. */
export function api(pathPattern: string): RegExp {
  return new RegExp(`^(/v[0-9.]+)?${pathPattern}(\\?.*)?$`);
}

/** A fake engine; see the module doc. */
export class FakeEngine {
  /** The socket it listens on (in its own temp folder). */
  readonly sock: string;
  /** Every request so far, in order of arrival. */
  readonly requests: RecordedRequest[] = [];
  readonly #dir: string;
  readonly #listener: Deno.Listener;
  readonly #routes: { pattern: RegExp; handler: Handler }[] = [];
  readonly #conns = new Set<Deno.Conn>();
  readonly #tasks = new Set<Promise<void>>();
  readonly #errors: Error[] = [];
  readonly #closing = new AbortController();
  #accepting: Promise<void> = Promise.resolve();

  private constructor(dir: string, listener: Deno.Listener) {
    this.#dir = dir;
    this.sock = `${dir}/docker.sock`;
    this.#listener = listener;
  }

  /**
   * Listens on a fresh socket with the default routes: a healthy, empty engine. `prefix` names
   * its temp folder in `/tmp` (a test can put a space in the socket's path).
   */
  static async start(prefix = "kt."): Promise<FakeEngine> {
    const dir = await Deno.makeTempDir({ dir: "/tmp", prefix });
    const listener = Deno.listen({ transport: "unix", path: `${dir}/docker.sock` });
    const engine = new FakeEngine(dir, listener);
    for (const [pattern, handler] of defaultRoutes()) engine.route(pattern, handler);
    engine.#accepting = engine.#acceptLoop();
    return engine;
  }

  /** Adds a route; it takes precedence over every route added before it (and the defaults). */
  route(pattern: RegExp, handler: Handler): void {
    this.#routes.unshift({ pattern, handler });
  }

  /**
   * Stops listening, closes every connection, waits for every handler to return and removes the
   * socket. Throws an AggregateError when a handler failed other than by a client going away.
   */
  async close(): Promise<void> {
    if (this.#closing.signal.aborted) return;
    this.#closing.abort();
    this.#listener.close();
    await this.#accepting;
    for (const conn of [...this.#conns]) this.#closeConn(conn);
    while (this.#tasks.size > 0) await Promise.all([...this.#tasks]);
    await Deno.remove(this.#dir, { recursive: true });
    if (this.#errors.length > 0) {
      throw new AggregateError(this.#errors, `FakeEngine: ${this.#errors.length} handler error(s)`);
    }
  }

  async #acceptLoop(): Promise<void> {
    try {
      for await (const conn of this.#listener) {
        this.#conns.add(conn);
        const task = this.#serve(conn).finally(() => this.#tasks.delete(task));
        this.#tasks.add(task);
      }
    } catch (err) {
      if (!this.#closing.signal.aborted) this.#errors.push(asError(err));
    }
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    const reader = new RequestReader(conn);
    try {
      while (!this.#closing.signal.aborted) {
        const head = await reader.next();
        if (head === null) break;
        const req: FakeRequest = {
          ...head,
          signal: this.#closing.signal,
          hold: () => reader.drain(),
        };
        this.requests.push({ method: req.method, path: req.path, at: performance.now() });
        const route = this.#routes.find((r) => r.pattern.test(req.path));
        const result = route === undefined
          ? await json(conn, 404, { message: "page not found" }, { close: wantsClose(req) })
          : await route.handler(req, conn);
        if (result === "close" || wantsClose(req)) break;
      }
    } catch (err) {
      if (!this.#closing.signal.aborted && !isDisconnect(err)) this.#errors.push(asError(err));
    } finally {
      this.#closeConn(conn);
    }
  }

  #closeConn(conn: Deno.Conn): void {
    if (this.#conns.delete(conn)) conn.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Responses

/** Extra options of `respond()` and `json()`. */
export interface RespondOptions {
  /** Send `Connection: close` (the handler should then return `"close"`). @default false */
  close?: boolean;
}

/** Writes a whole response with a Content-Length; returns `"keep"`, or `"close"` with `close`. */
export async function respond(
  conn: Deno.Conn,
  status: number,
  body: string | Uint8Array,
  headers: Record<string, string> = {},
  opts: RespondOptions = {},
): Promise<HandlerResult> {
  const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
  const all: Record<string, string> = { ...headers, "Content-Length": String(bytes.length) };
  if (opts.close) all["Connection"] = "close";
  await write(conn, concatBytes([statusHead(status, all), bytes]));
  return opts.close ? "close" : "keep";
}

/** Writes a JSON response (Content-Type and Content-Length set). */
export function json(
  conn: Deno.Conn,
  status: number,
  value: unknown,
  opts: RespondOptions = {},
): Promise<HandlerResult> {
  return respond(conn, status, JSON.stringify(value), { "Content-Type": "application/json" }, opts);
}

/** Writes the head of a chunked response (`Transfer-Encoding: chunked` added). */
export async function chunkedStart(
  conn: Deno.Conn,
  status: number,
  headers: Record<string, string>,
): Promise<void> {
  await write(conn, statusHead(status, { ...headers, "Transfer-Encoding": "chunked" }));
}

/**
 * `bytes` encoded as one chunk of a chunked body (size line, bytes, CRLF): to write many chunks in
 * one write. Throws on empty bytes (that is the last chunk: `chunkEnd()`).
 */
export function chunkBytes(bytes: string | Uint8Array): Uint8Array {
  const data = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
  if (data.length === 0) throw new RangeError("Cannot write an empty chunk: use chunkEnd()");
  const enc = new TextEncoder();
  return concatBytes([enc.encode(`${data.length.toString(16)}\r\n`), data, enc.encode("\r\n")]);
}

/** Writes one chunk (size line, bytes, CRLF) in one write; `chunkEnd()` ends the body. */
export async function chunk(conn: Deno.Conn, bytes: string | Uint8Array): Promise<void> {
  await write(conn, chunkBytes(bytes));
}

/** Writes the last, empty chunk. */
export async function chunkEnd(conn: Deno.Conn): Promise<void> {
  await write(conn, new TextEncoder().encode("0\r\n\r\n"));
}

/** Writes raw bytes, all of them (for torn frames, bodies cut short and broken heads). */
export async function write(conn: Deno.Conn, bytes: string | Uint8Array): Promise<void> {
  const data = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

/**
 * One frame of Docker's multiplexed stream: byte 0 the stream (0 stdin, 1 stdout, 2 stderr,
 * 3 system error), three zero bytes, the payload length as a big-endian uint32, the payload.
 */
export function frame(stream: number, payload: string | Uint8Array): Uint8Array {
  if (!Number.isInteger(stream) || stream < 0 || stream > 255) {
    throw new RangeError(`Cannot frame: stream is ${stream}`);
  }
  const data = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
  const out = new Uint8Array(8 + data.length);
  out[0] = stream;
  new DataView(out.buffer).setUint32(4, data.length, false);
  out.set(data, 8);
  return out;
}

/** The routes of a healthy engine with no containers. */
function defaultRoutes(): [RegExp, Handler][] {
  return [
    [api("/_ping"), (req, conn) => {
      const headers = { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-cache" };
      return respond(conn, 200, req.method === "HEAD" ? "" : "OK", headers, {
        close: wantsClose(req),
      });
    }],
    [api("/containers/json"), (req, conn) => json(conn, 200, [], { close: wantsClose(req) })],
    [api("/events"), async (req, conn) => {
      await chunkedStart(conn, 200, { "Content-Type": "application/json" });
      await req.hold();
      return "close";
    }],
  ];
}

const STATUS_TEXT: Record<number, string> = {
  200: "OK",
  204: "No Content",
  304: "Not Modified",
  400: "Bad Request",
  404: "Not Found",
  409: "Conflict",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
};

/** Status line and headers, with the headers Docker sends on every response. */
function statusHead(status: number, headers: Record<string, string>): Uint8Array {
  const all: Record<string, string> = {
    "Api-Version": FAKE_API_VERSION,
    "Docker-Experimental": "false",
    "Ostype": "linux",
    "Server": "Docker/20.10.24 (linux)",
    "Date": new Date().toUTCString(),
    ...headers,
  };
  const lines = [`HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? "Status"}`];
  for (const [name, value] of Object.entries(all)) lines.push(`${name}: ${value}`);
  return new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n");
}

/** Anything thrown, as an Error. */
function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
