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
import {
  type DockerEvent,
  eventFilterNames,
  EventStream,
  type EventStreamHandlers,
} from "./event_stream.ts";
import { httpGet, type HttpResponse } from "./http.ts";
import { type LogEntries, LogStream, type LogStreamOptions } from "./log_stream.ts";
import { checkContainerInfo, checkContainerList } from "./shapes.ts";
import { Limiter } from "../async/limiter.ts";

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

/**
 * Inspects in progress at once. Hundreds of containers attached at start would otherwise each
 * hold an inspect's answer (text, parsed JSON, read buffers) at the same moment: memory the
 * runtime keeps long after that peak.
 */
export const MAX_INSPECTS = 8;
/**
 * The longest an inspect waits for its place: an engine that holds some inspects unanswered
 * delays the others by at most this.
 */
export const MAX_INSPECT_WAIT_MS = 1_000;

/** The events karotten follows (Docker's names; Podman's are asked for beside them). */
export const FOLLOWED_EVENTS = ["start", "die", "destroy"] as const;

/** A libpod version as Podman's router takes it in a path (`/v4.3.1/libpod/...`). */
const LIBPOD_VERSION = /^[0-9][0-9A-Za-z.-]{0,31}$/;

/** Read-only client of one engine. */
export class DockerClient {
  readonly #pool: ConnectionPool;
  readonly #headerTimeoutMs: number;
  readonly #log: Logger | undefined;
  readonly #inspects = new Limiter(MAX_INSPECTS, MAX_INSPECT_WAIT_MS);
  /** The libpod version of the engine's last answer (a Podman service names it); or undefined. */
  #libpod: string | undefined;

  /** `log`: with DEBUG, every request is logged (`docker_get path=...`). */
  constructor(pool: ConnectionPool, headerTimeoutMs: number, log?: Logger) {
    this.#pool = pool;
    this.#headerTimeoutMs = headerTimeoutMs;
    this.#log = log;
  }

  /** `GET /_ping`; resolves with the engine's API version. */
  async ping(signal: AbortSignal): Promise<string> {
    const res = await this.#get("/_ping", signal, this.#headerTimeoutMs);
    const text = await this.#smallBody(res, "/_ping", MAX_PING_BYTES);
    if (res.status !== 200) throw new DockerApiError(res.status, "/_ping", errorMessage(text));
    return res.headers.get("api-version") ?? "";
  }

  /**
   * `GET /containers/json`: the running containers. Not a list -> `ShapeError`; items of the
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

  /**
   * `GET /containers/{id}/json`, at most `MAX_INSPECTS` at once (a wait over
   * `MAX_INSPECT_WAIT_MS` goes ahead anyway); an answer of the wrong shape -> `ShapeError`.
   */
  async inspect(id: string, signal: AbortSignal): Promise<ContainerInfo> {
    const path = `/containers/${encodeURIComponent(id)}/json`;
    return await this.#inspects.run(
      async () => checkContainerInfo(await this.#json(path, MAX_INSPECT_BYTES, signal), path),
      signal,
    );
  }

  /**
   * Follows a container's logs with engine timestamps: resolves once the engine answered, with
   * its entries; `signal` ends the stream (read it to its end or abort it). No header deadline:
   * Podman sends the head of a follow stream only with its first line (fixed in 5.3), so a
   * silent container's request waits; `/_ping` watches the engine meanwhile.
   */
  async logs(
    id: string,
    start: LogsStart,
    options: LogStreamOptions,
    signal: AbortSignal,
  ): Promise<LogEntries> {
    return await this.#logs(id, start, options, signal, true);
  }

  /**
   * The container's log as it is now, from `start`, without following: for completing a stream
   * the engine ended early (`LogEntries.mayEndEarly`).
   */
  async logsUntilNow(
    id: string,
    start: LogsStart,
    options: LogStreamOptions,
    signal: AbortSignal,
  ): Promise<LogEntries> {
    return await this.#logs(id, start, options, signal, false);
  }

  async #logs(
    id: string,
    start: LogsStart,
    options: LogStreamOptions,
    signal: AbortSignal,
    follow: boolean,
  ): Promise<LogEntries> {
    // Podman's compat endpoint writes a TTY container's entries without frames, so a line it read
    // in pieces would keep the later pieces' timestamps; its own endpoint frames every entry.
    const ttyFrames = options.tty && this.#libpod !== undefined;
    const base = ttyFrames ? `/v${this.#libpod}/libpod` : "";
    let path = `${base}/containers/${encodeURIComponent(id)}/logs?follow=${follow ? 1 : 0}` +
      "&stdout=1&stderr=1&timestamps=1";
    if (start.kind === "now") path += "&tail=0";
    if (start.kind === "since") path += `&since=${start.since}`;
    if (start.kind === "run") throw new TypeError("resolve a run start before asking for logs");
    const res = await this.#stream(path, signal, follow ? undefined : this.#headerTimeoutMs);
    // Every answer of Podman's service names its libpod version.
    return new LogStream(
      res.body(),
      ttyFrames ? { ...options, ttyFrames } : options,
      res.headers.has("libpod-api-version"),
    );
  }

  /**
   * Follows container events: resolves once the engine answered, with its events; a line that is
   * not JSON goes to `onUnparsable`. `signal` ends the stream.
   */
  async events(
    signal: AbortSignal,
    handlers: EventStreamHandlers,
  ): Promise<AsyncIterable<readonly DockerEvent[]>> {
    const filters = JSON.stringify({
      type: ["container"],
      event: eventFilterNames(FOLLOWED_EVENTS),
    });
    const res = await this.#stream(
      `/events?filters=${encodeURIComponent(filters)}`,
      signal,
      this.#headerTimeoutMs,
    );
    return new EventStream(res.body(), handlers);
  }

  async #get(
    path: string,
    signal: AbortSignal,
    headerTimeoutMs: number | undefined,
  ): Promise<HttpResponse> {
    this.#log?.debug("docker_get", { path });
    const res = await httpGet(this.#pool, path, { signal, headerTimeoutMs });
    const libpod = res.headers.get("libpod-api-version");
    this.#libpod = libpod !== undefined && LIBPOD_VERSION.test(libpod) ? libpod : undefined;
    return res;
  }

  async #stream(
    path: string,
    signal: AbortSignal,
    headerTimeoutMs: number | undefined,
  ): Promise<HttpResponse> {
    const res = await this.#get(path, signal, headerTimeoutMs);
    if (res.status === 200) return res;
    throw new DockerApiError(
      res.status,
      path,
      errorMessage(await this.#smallBody(res, path, MAX_ERROR_BODY_BYTES)),
    );
  }

  async #json(path: string, maxBytes: number, signal: AbortSignal): Promise<unknown> {
    const res = await this.#get(path, signal, this.#headerTimeoutMs);
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
