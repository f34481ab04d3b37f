/**
 * The error classes karotten's modules throw and callers catch.
 * @module
 */
import { latin1 } from "./bytes.ts";

/** Bad configuration: names the environment variable. The daemon exits 2 on it. */
export class ConfigError extends Error {
  /** The environment variable at fault. */
  readonly variable: string;
  constructor(variable: string, message: string, options?: ErrorOptions) {
    super(`${variable}: ${message}`, options);
    this.name = "ConfigError";
    this.variable = variable;
  }
}

/** Podman's 500 for the logs of a container whose log driver keeps nothing. */
const UNREADABLE_LOG_DRIVER = /log driver, cannot read logs/;

/** A non-2xx answer of the Docker Engine API. */
export class DockerApiError extends Error {
  /** HTTP status code. */
  readonly status: number;
  /** Request path, without the host. */
  readonly path: string;
  constructor(status: number, path: string, detail: string, options?: ErrorOptions) {
    super(`docker API ${status} for GET ${path}: ${detail}`, options);
    this.name = "DockerApiError";
    this.status = status;
    this.path = path;
  }

  /**
   * True when retrying cannot help: the container is gone (404), being removed (409) or its
   * log driver cannot be read (501; Podman answers 500 "... using the 'none' log driver, cannot
   * read logs").
   */
  get permanent(): boolean {
    return this.status === 404 || this.status === 409 || this.status === 501 ||
      (this.status === 500 && UNREADABLE_LOG_DRIVER.test(this.message));
  }
}

/** Bytes from the engine that do not follow the protocol (HTTP, chunked, frames). */
export class ProtocolError extends SyntaxError {
  /** Which decoder found it: "http", "chunked", "frames", "lines". */
  readonly stage: string;
  /** Byte offset in that decoder's input. */
  readonly offset: number;
  constructor(stage: string, offset: number, message: string, sample?: Uint8Array) {
    super(
      `Cannot parse ${stage} at byte ${offset}: ${message}` +
        (sample ? ` (near ${JSON.stringify(latin1(sample.subarray(0, 32)))})` : ""),
    );
    this.name = "ProtocolError";
    this.stage = stage;
    this.offset = offset;
  }
}

/** An answer read whole (list, inspect, ping, an error) is longer than its limit. */
export class ResponseTooLargeError extends RangeError {
  /** Request path, without the host. */
  readonly path: string;
  /** The limit, bytes. */
  readonly limit: number;
  constructor(path: string, limit: number, seen: string) {
    super(`answer to GET ${path} is larger than its limit of ${limit} bytes (${seen})`);
    this.name = "ResponseTooLargeError";
    this.path = path;
    this.limit = limit;
  }
}

/** Valid JSON from the engine that does not have the shape karotten reads. */
export class ShapeError extends TypeError {
  constructor(what: string, problem: string) {
    super(`Cannot read ${what}: ${problem}`);
    this.name = "ShapeError";
  }
}

/**
 * The engine closed a chunked body after a whole chunk, without its last chunk: what an engine
 * that stops or restarts does to the streams it serves (Podman always; dockerd when killed).
 */
export class StreamCutError extends Error {
  constructor(path: string, options?: ErrorOptions) {
    super(`the engine closed GET ${path} before its end`, options);
    this.name = "StreamCutError";
  }
}

/** The log reason of a {@link StreamCutError}. */
export const STREAM_CUT = "cut by the engine (stopping or restarting?)";

/** The broker refused the exchange (404 on the passive declare): fatal at start. */
export class ExchangeMissingError extends Error {
  /** The exchange name. */
  readonly exchange: string;
  constructor(exchange: string, options?: ErrorOptions) {
    super(
      `exchange "${exchange}" does not exist on the broker (karotten never creates it; declare it first)`,
      options,
    );
    this.name = "ExchangeMissingError";
    this.exchange = exchange;
  }
}

/** The broker's TLS certificate was refused (untrusted CA, wrong name): retried with backoff. */
export class BrokerTlsError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "BrokerTlsError";
  }
}

/** True for the errors an abort produces (our signal fired). */
export function isAbort(err: unknown): boolean {
  return err instanceof DOMException && (err.name === "AbortError" || err.name === "TimeoutError");
}

/** A short, one-line description of any thrown value. */
export function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : "";
    return `${err.message}${cause}`.replaceAll("\n", " ");
  }
  return String(err);
}
