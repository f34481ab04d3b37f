/**
 * An in-process engine behind the supervisor's narrow interface (`SupervisorEngine`): containers
 * that start, write lines and stop on command, their log streams (TTY form, decoded by the real
 * `LogStream`), the events stream and the listing. No socket, no subprocess.
 * @module
 */
import { Channel } from "../../lib/async/channel.ts";
import type {
  ContainerInfo,
  ContainerSummary,
  DockerEvent,
  LogEntries,
  LogsStart,
  LogStreamOptions,
} from "../../lib/docker/api.ts";
import { LogStream } from "../../lib/docker/log_stream.ts";
import { DockerApiError } from "../../lib/errors.ts";
import type { SupervisorEngine } from "../../lib/supervisor/containers.ts";
import { timestampToNanos } from "../../lib/time.ts";

const encoder = new TextEncoder();

interface Container {
  id: string;
  name: string;
  running: boolean;
  startedAt: string;
  finishedAt: string;
  /** Every line written: engine timestamp and text. */
  lines: { ts: string; text: string }[];
  /** Open log streams: a piece of bytes, or null at the end of the stream. */
  followers: Set<Channel<Uint8Array | null>>;
}

/** One logs request as asked. */
export interface LogsRequest {
  /** Container id. */
  id: string;
  /** Where it started. */
  start: LogsStart;
}

/** A scriptable engine; see the module doc. */
export class ScriptedEngine implements SupervisorEngine {
  readonly #containers = new Map<string, Container>();
  readonly #eventSubscribers = new Set<Channel<DockerEvent[]>>();
  #clock = 0;
  /** Every logs request, in order. */
  readonly logsRequests: LogsRequest[] = [];
  /** Logs requests fail with this error while it is set. */
  failLogs: Error | undefined;
  /** The signal of every inspect and logs request, in order. */
  readonly requestSignals: AbortSignal[] = [];

  /** The engine's next timestamp (distinct, increasing). */
  now(): string {
    this.#clock++;
    const s = Math.floor(this.#clock / 1000);
    const ms = this.#clock % 1000;
    return `2026-01-01T00:${String(Math.floor(s / 60)).padStart(2, "0")}:${
      String(s % 60).padStart(2, "0")
    }.${String(ms).padStart(3, "0")}000000Z`;
  }

  /** Creates and starts a container; `announce: false` loses its `start` event. */
  start(id: string, name: string, announce = true): void {
    const c = this.#containers.get(id) ?? {
      id,
      name,
      running: false,
      startedAt: "0001-01-01T00:00:00Z",
      finishedAt: "0001-01-01T00:00:00Z",
      lines: [],
      followers: new Set(),
    };
    this.#containers.set(id, c);
    c.running = true;
    c.startedAt = this.now();
    if (announce) this.#event({ Type: "container", Action: "start", Actor: { ID: id } });
  }

  /** Writes lines to a container's log (and its open streams). */
  write(id: string, ...texts: string[]): void {
    const c = this.#get(id);
    for (const text of texts) {
      const line = { ts: this.now(), text };
      c.lines.push(line);
      for (const f of c.followers) f.send(encoder.encode(`${line.ts} ${text}\r\n`));
    }
  }

  /**
   * Stops a container: its streams end (unless `keepStreams`: a stream that stays open, as a
   * stuck engine's would) and, unless `announce` is false, a `die` event follows.
   */
  stop(id: string, opts: { announce?: boolean; keepStreams?: boolean } = {}): void {
    const c = this.#get(id);
    c.running = false;
    c.finishedAt = this.now();
    if (!opts.keepStreams) {
      for (const f of c.followers) f.send(null);
      c.followers.clear();
    }
    if (opts.announce !== false) {
      this.#event({ Type: "container", Action: "die", Actor: { ID: id } });
    }
  }

  /** Removes a stopped container: a `destroy` event follows. */
  remove(id: string): void {
    if (this.#get(id).running) throw new Error(`container ${id} is running`);
    this.#containers.delete(id);
    this.#event({ Type: "container", Action: "destroy", Actor: { ID: id } });
  }

  /** Open log streams of a container. */
  followers(id: string): number {
    return this.#get(id).followers.size;
  }

  /** See `DockerClient.listRunning`. */
  listRunning(signal: AbortSignal): Promise<ContainerSummary[]> {
    signal.throwIfAborted();
    return Promise.resolve(
      [...this.#containers.values()].filter((c) => c.running).map((c) => ({
        Id: c.id,
        Names: [`/${c.name}`],
        State: "running",
      })),
    );
  }

  /** See `DockerClient.inspect`. */
  inspect(id: string, signal: AbortSignal): Promise<ContainerInfo> {
    signal.throwIfAborted();
    this.requestSignals.push(signal);
    const c = this.#containers.get(id);
    if (!c) return Promise.reject(new DockerApiError(404, `/containers/${id}/json`, "no such"));
    return Promise.resolve({
      Id: c.id,
      Name: `/${c.name}`,
      State: { Running: c.running, StartedAt: c.startedAt, FinishedAt: c.finishedAt },
      Config: { Image: "img", Labels: null, Tty: true },
    });
  }

  /** See `DockerClient.logs`: the lines from `start`, then new ones while it runs. */
  logs(
    id: string,
    start: LogsStart,
    options: LogStreamOptions,
    signal: AbortSignal,
  ): Promise<LogEntries> {
    signal.throwIfAborted();
    this.requestSignals.push(signal);
    this.logsRequests.push({ id, start });
    if (this.failLogs) return Promise.reject(this.failLogs);
    const c = this.#get(id);
    const pipe = new Channel<Uint8Array | null>();
    const from = start.kind === "since" ? sinceNanos(start.since) : undefined;
    if (start.kind !== "now") {
      for (const line of c.lines) {
        if (from === undefined || timestampToNanos(line.ts) >= from) {
          pipe.send(encoder.encode(`${line.ts} ${line.text}\r\n`));
        }
      }
    }
    if (c.running) c.followers.add(pipe);
    else pipe.send(null);
    async function* body(): AsyncGenerator<Uint8Array> {
      try {
        for (;;) {
          const piece = await pipe.receive(signal);
          if (piece === null) return;
          yield piece;
        }
      } finally {
        c.followers.delete(pipe);
      }
    }
    return Promise.resolve(new LogStream(body(), options));
  }

  /** See `DockerClient.events`. */
  events(signal: AbortSignal): Promise<AsyncIterable<readonly DockerEvent[]>> {
    signal.throwIfAborted();
    const channel = new Channel<DockerEvent[]>();
    this.#eventSubscribers.add(channel);
    const subscribers = this.#eventSubscribers;
    async function* stream(): AsyncGenerator<readonly DockerEvent[]> {
      try {
        for (;;) yield await channel.receive(signal);
      } finally {
        subscribers.delete(channel);
      }
    }
    return Promise.resolve(stream());
  }

  #event(ev: DockerEvent): void {
    for (const s of this.#eventSubscribers) s.send([ev]);
  }

  #get(id: string): Container {
    const c = this.#containers.get(id);
    if (!c) throw new Error(`no container ${id}`);
    return c;
  }
}

function sinceNanos(since: string): bigint {
  const [s, ns] = since.split(".");
  return BigInt(s) * 1_000_000_000n + BigInt(ns ?? "0");
}
