/**
 * The Docker Engine API calls karotten makes: all GETs, all read-only.
 * @module
 */
import {
  MAX_ERROR_BODY_BYTES,
  MAX_INSPECT_BYTES,
  MAX_LIST_BYTES,
  MAX_PING_BYTES,
} from "../config.ts";
import { DockerApiError, ResponseTooLargeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { ConnectionPool } from "./conn.ts";
import { type DockerEvent, EventStream, type EventStreamHandlers } from "./event_stream.ts";
import { httpGet, type HttpResponse } from "./http.ts";
import { type LogEntries, LogStream, type LogStreamOptions } from "./log_stream.ts";
import { checkContainerInfo, checkContainerList } from "./shapes.ts";

export type { DockerEvent } from "./event_stream.ts";
export type { LogEntries, LogEntry, LogStreamOptions } from "./log_stream.ts";

/** A running container as `/containers/json` lists it. */
export interface ContainerSummary {
  /** Full id. */
  Id: string;
  /** Names with a leading `/`. */
  Names?: string[];
  /** Image name. */
  Image?: string;
  /** Labels. */
  Labels?: Record<string, string> | null;
  /** `running`, `exited`, ... */
  State?: string;
}

/** The parts of `/containers/{id}/json` karotten reads. */
export interface ContainerInfo {
  /** Full id. */
  Id: string;
  /** Name with a leading `/`. */
  Name: string;
  /** Run state. */
  State: { Running: boolean; Status?: string; StartedAt?: string; FinishedAt?: string };
  /** Config of the container. */
  Config: { Image: string; Labels?: Record<string, string> | null; Tty: boolean };
  /** Host config: the log driver. */
  HostConfig?: { LogConfig?: { Type?: string } };
}

/**
 * Where a logs stream starts: new lines only (`now`), the start of the container's current run
 * (`run`: resolved from its state by the caller into `beginning` or `since`), the whole log
 * (`beginning`), or an engine timestamp in `since` form (`seconds.nanoseconds`, inclusive).
 */
export type LogsStart =
  | { kind: "now" }
  | { kind: "run" }
  | { kind: "beginning" }
  | { kind: "since"; since: string };

/** A `tail=1` answer's line is cut at this many bytes (only its timestamp is read). */
const LAST_ENTRY_MAX_BYTES = 64 * 1024;

/** The events karotten follows. */
export const FOLLOWED_EVENTS = ["start", "die", "destroy"] as const;

/** Read-only client of one engine. */
export class DockerClient {
  readonly #pool: ConnectionPool;
  readonly #headerTimeoutMs: number;
  readonly #log: Logger | undefined;

  /** `log`: with DEBUG, every request is logged (`docker_get path=...`). */
  constructor(pool: ConnectionPool, headerTimeoutMs: number, log?: Logger) {
    this.#pool = pool;
    this.#headerTimeoutMs = headerTimeoutMs;
    this.#log = log;
  }

  /** `GET /_ping`; resolves with the engine's API version. */
  async ping(signal: AbortSignal): Promise<string> {
    const res = await this.#get("/_ping", signal);
    const text = await this.#smallBody(res, "/_ping", MAX_PING_BYTES);
    if (res.status !== 200) throw new DockerApiError(res.status, "/_ping", errorMessage(text));
    return res.headers.get("api-version") ?? "";
  }

  /**
   * `GET /containers/json`: the running containers. Not a list → `ShapeError`; items of the
   * wrong shape are left out, with one warning per listing.
   */
  async listRunning(signal: AbortSignal): Promise<ContainerSummary[]> {
    const answer = await this.#json("/containers/json", MAX_LIST_BYTES, signal);
    const { items, rejected } = checkContainerList(answer);
    if (rejected.length > 0) {
      this.#log?.warn("list_items_invalid", { count: rejected.length, first: rejected[0] });
    }
    return items;
  }

  /** `GET /containers/{id}/json`; an answer of the wrong shape → `ShapeError`. */
  async inspect(id: string, signal: AbortSignal): Promise<ContainerInfo> {
    const path = `/containers/${encodeURIComponent(id)}/json`;
    return checkContainerInfo(await this.#json(path, MAX_INSPECT_BYTES, signal), path);
  }

  /**
   * Follows a container's logs with engine timestamps: resolves once the engine answered, with
   * its entries; `signal` ends the stream (read it to its end or abort it).
   */
  async logs(
    id: string,
    start: LogsStart,
    options: LogStreamOptions,
    signal: AbortSignal,
  ): Promise<LogEntries> {
    let path = `/containers/${encodeURIComponent(id)}/logs?follow=1&stdout=1&stderr=1&timestamps=1`;
    if (start.kind === "now") path += "&tail=0";
    if (start.kind === "since") path += `&since=${start.since}`;
    if (start.kind === "run") throw new TypeError("resolve a run start before asking for logs");
    return new LogStream((await this.#stream(path, signal)).body(), options);
  }

  /**
   * The engine timestamp of the container's last log entry (`tail=1`, no follow: the json-file
   * and local drivers read it from the end of the file), or undefined when it has none. The
   * answer must come whole within the header timeout.
   */
  async lastLogTimestamp(
    id: string,
    tty: boolean,
    signal: AbortSignal,
  ): Promise<string | undefined> {
    const path = `/containers/${encodeURIComponent(id)}/logs?stdout=1&stderr=1&timestamps=1&tail=1`;
    const deadline = AbortSignal.any([signal, AbortSignal.timeout(this.#headerTimeoutMs)]);
    const res = await this.#stream(path, deadline);
    const entries = new LogStream(res.body(), { tty, maxLineBytes: LAST_ENTRY_MAX_BYTES });
    let last = "";
    for await (const batch of entries) {
      for (const e of batch) if (e.ts !== "") last = e.ts;
    }
    for (const e of entries.flush()) if (e.ts !== "") last = e.ts;
    return last === "" ? undefined : last;
  }

  /**
   * Follows container events: resolves once the engine answered, with its events; a line that is
   * not JSON goes to `onUnparsable`. `signal` ends the stream.
   */
  async events(
    signal: AbortSignal,
    handlers: EventStreamHandlers,
  ): Promise<AsyncIterable<readonly DockerEvent[]>> {
    const filters = JSON.stringify({ type: ["container"], event: [...FOLLOWED_EVENTS] });
    const res = await this.#stream(`/events?filters=${encodeURIComponent(filters)}`, signal);
    return new EventStream(res.body(), handlers);
  }

  async #get(path: string, signal: AbortSignal): Promise<HttpResponse> {
    this.#log?.debug("docker_get", { path });
    return await httpGet(this.#pool, path, { signal, headerTimeoutMs: this.#headerTimeoutMs });
  }

  async #stream(path: string, signal: AbortSignal): Promise<HttpResponse> {
    const res = await this.#get(path, signal);
    if (res.status === 200) return res;
    throw new DockerApiError(
      res.status,
      path,
      errorMessage(await this.#smallBody(res, path, MAX_ERROR_BODY_BYTES)),
    );
  }

  async #json(path: string, maxBytes: number, signal: AbortSignal): Promise<unknown> {
    const res = await this.#get(path, signal);
    const text = await this.#smallBody(res, path, maxBytes);
    if (res.status !== 200) throw new DockerApiError(res.status, path, errorMessage(text));
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new DockerApiError(res.status, path, "body is not JSON", { cause: err });
    }
  }

  /**
   * The whole body of an answer that is small and sent at once (JSON, an error): a frozen engine
   * must not hang it after the head either, so it gets the header timeout as well. At most
   * `maxBytes` when the status is 200, `MAX_ERROR_BODY_BYTES` otherwise: a longer error body
   * keeps its status (a 404 stays a 404) with a note instead of its text.
   */
  async #smallBody(res: HttpResponse, path: string, maxBytes: number): Promise<string> {
    const ms = this.#headerTimeoutMs;
    const timeout = AbortSignal.timeout(ms);
    const onTimeout = () => res.cancel();
    timeout.addEventListener("abort", onTimeout, { once: true });
    try {
      return await res.text(res.status === 200 ? maxBytes : MAX_ERROR_BODY_BYTES);
    } catch (err) {
      if (res.status !== 200 && err instanceof ResponseTooLargeError) return err.message;
      if (!timeout.aborted) throw err;
      throw new DOMException(`no complete body within ${ms} ms for GET ${path}`, "TimeoutError");
    } finally {
      timeout.removeEventListener("abort", onTimeout);
    }
  }
}

function errorMessage(body: string): string {
  try {
    const parsed: unknown = JSON.parse(body);
    if (parsed && typeof parsed === "object" && "message" in parsed) {
      return String(parsed.message);
    }
  } catch {
    // Not JSON: use the text itself.
  }
  return body.trim().slice(0, 200) || "(empty body)";
}
