/**
 * The supervisor: the one loop that owns the set of attached containers.
 *
 * ```
 *  events stream -+                      +-> tail(container A) -+
 *  reconciler ----+-> commands -> owner -+-> tail(container B) -+-> queue -> publisher
 *  tails ended ---+                      +-> ...                -+
 * ```
 * Only the owner loop changes `#tails`; it does no I/O itself.
 * @module
 */
import { Channel } from "../async/channel.ts";
import { ChildSignal } from "../async/child_signal.ts";
import type { CheckpointStore } from "../checkpoints.ts";
import type { Config } from "../config.ts";
import type { ContainerSummary, DockerClient, DockerEvent, LogsStart } from "../docker/api.ts";
import { shortId } from "../short_id.ts";
import { describe } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Position } from "../positions.ts";
import type { MessageQueue } from "../queue.ts";
import { followEvents } from "./events.ts";
import { Reconciler } from "./reconcile.ts";
import { tailContainer, type TailDeps, type TailEngine, type TailResult } from "./tail.ts";
import { compileFilter } from "../filter.ts";
import { type ContainerCounters, newContainerCounters } from "../telemetry/container_counters.ts";

type Command =
  | { kind: "event"; ev: DockerEvent }
  | { kind: "list"; running: ContainerSummary[]; requestedAt: number }
  | { kind: "ended"; id: string; tail: Tail; result: TailResult };

interface Tail {
  /** The tail's signal: follows the daemon's, aborted once the tail ended (see `#attach`). */
  signal: ChildSignal;
  /** A `start` event came while attached: the container restarted. */
  restarted: boolean;
  /** Aborted by the current run's `die` event; replaced on `start`. */
  died: AbortController;
  /** `performance.now()` when attached. */
  attachedAt: number;
  /** Wall-clock time when attached, ms (engine events carry wall-clock times). */
  attachedWallMs: number;
  /** A `destroy` event came while attached: its position is not kept. */
  destroyed: boolean;
  /** Lines read, identity: the tail increments, `/metrics` and the stats line read. */
  counters: ContainerCounters;
}

/** The engine calls the supervisor and its tails make. */
export type SupervisorEngine = TailEngine & Pick<DockerClient, "events" | "listRunning">;

/** What the supervisor needs. */
export interface SupervisorDeps {
  /** Engine client. */
  docker: SupervisorEngine;
  /** Buffer towards the broker. */
  queue: MessageQueue;
  /** Logger. */
  log: Logger;
  /** Configuration. */
  config: Config;
  /**
   * Read positions by full container id (from checkpoints when `STATE_DIR` is set): owned by the
   * owner loop, which hands a tail its entry and keeps the one the tail returns.
   */
  positions: Map<string, Position>;
  /** Confirmed positions on disk (`STATE_DIR`), told when a container is gone. */
  checkpoints?: CheckpointStore;
}

/** Attaches every running container and keeps that true until stopped. */
export class Supervisor {
  readonly #deps: SupervisorDeps;
  readonly #tailDeps: TailDeps;
  readonly #commands = new Channel<Command>();
  readonly #tails = new Map<string, Tail>();
  /** Containers whose logs cannot be read (log driver), with the wall-clock time (ms) found so. */
  readonly #unreadable = new Map<string, number>();
  /** Containers the filters keep out: never inspected again while they live. */
  readonly #filtered = new Set<string>();
  /** Lines read by tails that have ended. */
  #linesOfEnded = 0;
  readonly #tailsRunning = new Set<Promise<void>>();
  #listed = false;
  #eventsUp = false;
  /** `MAX_CONTAINERS` was reached and said so; cleared once a place is free again. */
  #atCapacity = false;
  #ready = false;

  constructor(deps: SupervisorDeps) {
    this.#deps = deps;
    this.#tailDeps = { ...deps, filter: compileFilter(deps.config.filters) };
  }

  /** Containers attached now. */
  get attached(): number {
    return this.#tails.size;
  }

  /** The counters of every attached container (identity `""` until inspected). */
  *counters(): IterableIterator<ContainerCounters> {
    for (const tail of this.#tails.values()) yield tail.counters;
  }

  /** Lines read since start, by every tail, ended or running. */
  get linesRead(): number {
    let n = this.#linesOfEnded;
    for (const { counters } of this.#tails.values()) n += counters.stdout + counters.stderr;
    return n;
  }

  /** Runs until the signal aborts; then every tail has stopped reading. Calls `onReady` once. */
  async run(signal: AbortSignal, onReady: (attached: number) => void): Promise<void> {
    const { docker, config, log } = this.#deps;
    const reconciler = new Reconciler();
    const background = [
      followEvents(
        docker,
        {
          connected: () => {
            this.#eventsUp = true;
            reconciler.poke();
          },
          event: (ev) => this.#commands.send({ kind: "event", ev }),
        },
        config.tuning,
        log,
        signal,
      ),
      reconciler.run(
        docker,
        (running, requestedAt) => this.#commands.send({ kind: "list", running, requestedAt }),
        config.tuning,
        log,
        signal,
      ),
    ];
    try {
      while (!signal.aborted) {
        const cmd = await this.#commands.receive(signal);
        this.#handle(cmd, signal);
        if (!this.#ready && this.#listed && this.#eventsUp) {
          this.#ready = true;
          onReady(this.#tails.size);
        }
      }
    } catch (err) {
      if (!signal.aborted) throw err;
    }
    await Promise.all(background);
    await Promise.all(this.#tailsRunning);
  }

  #handle(cmd: Command, signal: AbortSignal): void {
    const { log, positions } = this.#deps;
    switch (cmd.kind) {
      case "event": {
        const id = cmd.ev.Actor?.ID;
        if (!id || (cmd.ev.Type !== undefined && cmd.ev.Type !== "container")) return;
        if (cmd.ev.Action === "start") {
          if (this.#filtered.has(id)) return;
          // A start older than what karotten did since (Podman's events come about 1 s late):
          // the run it announces is being read already, or was found unreadable.
          const startedMs = cmd.ev.timeNano === undefined ? Infinity : cmd.ev.timeNano / 1e6;
          const unreadableSince = this.#unreadable.get(id);
          if (unreadableSince !== undefined && startedMs < unreadableSince) return;
          this.#unreadable.delete(id);
          const tail = this.#tails.get(id);
          if (tail && startedMs < tail.attachedWallMs) return;
          if (tail) {
            tail.restarted = true;
            tail.died = new AbortController();
          } else this.#attach(id, { kind: "run" }, signal);
        } else if (cmd.ev.Action === "die") {
          // The stream ends by itself once the engine has sent the last lines; the tail stops
          // waiting for a stream that stays silent after this.
          this.#tails.get(id)?.died.abort();
        } else if (cmd.ev.Action === "destroy") {
          log.debug("forgotten", { id: shortId(id) });
          positions.delete(id);
          this.#deps.checkpoints?.forget(id);
          this.#unreadable.delete(id);
          const tail = this.#tails.get(id);
          if (tail) tail.destroyed = true;
          this.#filtered.delete(id);
        }
        return;
      }
      case "list": {
        const first = !this.#listed;
        this.#listed = true;
        const listed = new Set<string>();
        for (const c of cmd.running) {
          if (c.State !== undefined && c.State !== "running") continue;
          listed.add(c.Id);
          if (this.#tails.has(c.Id) || this.#unreadable.has(c.Id) || this.#filtered.has(c.Id)) {
            continue;
          }
          if (!first) log.info("reconcile_attach", { id: shortId(c.Id) });
          this.#attach(c.Id, first ? { kind: "now" } : { kind: "run" }, signal);
        }
        // Attached before this listing was asked for, yet not running: its `die` event was
        // missed. Treated as one, so a stream still sending its last lines can finish.
        for (const [id, tail] of this.#tails) {
          if (listed.has(id) || tail.attachedAt >= cmd.requestedAt || tail.died.signal.aborted) {
            continue;
          }
          log.info("reconcile_gone", { id: shortId(id) });
          tail.died.abort();
        }
        for (const id of this.#unreadable.keys()) if (!listed.has(id)) this.#unreadable.delete(id);
        for (const id of this.#filtered) if (!listed.has(id)) this.#filtered.delete(id);
        return;
      }
      case "ended": {
        if (this.#tails.get(cmd.id) !== cmd.tail) return;
        this.#tails.delete(cmd.id);
        const { end, position } = cmd.result;
        this.#linesOfEnded += cmd.tail.counters.stdout + cmd.tail.counters.stderr;
        if (end === "filtered") {
          this.#filtered.add(cmd.id);
          return;
        }
        log.info("detached", { id: shortId(cmd.id), reason: end });
        if (end === "unreadable") this.#unreadable.set(cmd.id, Date.now());
        if (end === "gone") {
          positions.delete(cmd.id);
          this.#deps.checkpoints?.forget(cmd.id);
        } else if (position !== undefined && !cmd.tail.destroyed) {
          positions.set(cmd.id, position);
        }
        if (end === "stopped" && cmd.tail.restarted && !signal.aborted) {
          this.#attach(cmd.id, { kind: "run" }, signal);
        }
        return;
      }
    }
  }

  /**
   * Attaches unless `MAX_CONTAINERS` are attached already: then it warns once (again only after
   * the set fell below 90 % of the cap) and leaves the container to a later listing.
   */
  #attach(id: string, start: LogsStart, signal: AbortSignal): void {
    const max = this.#deps.config.maxContainers;
    if (this.#tails.size >= max) {
      if (!this.#atCapacity) {
        this.#atCapacity = true;
        this.#deps.log.warn("max_containers_reached", { max, skipped: shortId(id) });
      }
      return;
    }
    // Said again only after the set shrank well below the cap (no warning per churned container).
    if (this.#tails.size < max * 0.9) this.#atCapacity = false;
    const tail: Tail = {
      signal: new ChildSignal([signal]),
      restarted: false,
      died: new AbortController(),
      attachedAt: performance.now(),
      attachedWallMs: Date.now(),
      destroyed: false,
      counters: newContainerCounters(),
    };
    this.#tails.set(id, tail);
    const tailSignal = tail.signal.signal;
    const order = {
      id,
      start,
      position: this.#deps.positions.get(id),
      died: () => tail.died.signal,
      counters: tail.counters,
    };
    const done: Promise<void> = tailContainer(this.#tailDeps, order, tailSignal)
      .catch((err): TailResult => {
        this.#deps.log.error("tail_failed", { id: shortId(id), error: describe(err) });
        return { end: "aborted", position: undefined };
      })
      .then((result) => {
        // The tail is over: aborting its signal lets go of the daemon's signal, and so of every
        // signal derived from it with a listener still on (kept for the daemon's life otherwise).
        tail.signal.abort(new DOMException("tail ended", "AbortError"));
        this.#tailsRunning.delete(done);
        this.#commands.send({ kind: "ended", id, tail, result });
      });
    this.#tailsRunning.add(done);
  }
}
