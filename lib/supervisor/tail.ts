/**
 * One container's task, as policy only: where to resume, which lines to skip, the position, the
 * overflow rule, the die grace, and re-attaching with backoff while the container runs. The
 * bytes are decoded by the log stream (`docker/log_stream.ts`); messages are made by
 * `message.ts`; the owner loop keeps the position this task returns.
 *
 * ```
 *  tailContainer: inspect -> followOnce -> (EOF) inspect -+- stopped: flush last lines -> end
 *        ^                    | batches of entries         +- stopped, the stream may have
 *        |                    |                            |  ended early: full read -> end
 *        |                    v                            +- running: discard, backoff --+
 *        |     LineSender.send: skip -> advance position -> encode -> Handoff (turns)     |
 *        +--------------------------------------------------------------------------------+
 * ```
 * On an engine that may drop entries (Podman 4.3), joined lines and those after them first wait
 * in `HeldLines` for an inspect that proves them (`RunProof`, which also lets go of the kept sent
 * lines it proves).
 * @module
 */
import { backoff, reattachBackoff } from "../async/backoff.ts";
import { sleep } from "../async/delay.ts";
import { type Watchdog, watchdog } from "../async/watchdog.ts";
import type { Config } from "../config.ts";
import type {
  ContainerInfo,
  DockerClient,
  LogEntries,
  LogEntry,
  LogsStart,
  LogStreamOptions,
} from "../docker/api.ts";
import { describe, DockerApiError, ShapeError, STREAM_CUT, StreamCutError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { type ContainerIdentity, EnvelopeEncoder, identify, messageId } from "../message.ts";
import { advance, type Position, raise } from "../positions.ts";
import type { MessageQueue, OutMessage } from "../queue.ts";
import {
  type Completion,
  SENT_PROOF_AT,
  type SentLine,
  SentLines,
  type SentShape,
} from "./sent_lines.ts";
import { LagWatch } from "../lag.ts";
import { Handoff } from "./handoff.ts";
import { HeldLines } from "./held_lines.ts";
import { type RunningCheck, RunProof } from "./run_proof.ts";
import { shortId } from "../short_id.ts";
import type { ContainerFilter } from "../filter.ts";
import type { ContainerCounters } from "../telemetry/container_counters.ts";
import {
  isZeroTime,
  nanosToSince,
  normalizeTimestamp,
  nowRfc3339Nano,
  timestampToNanos,
  toSinceParam,
} from "../time.ts";

/** The engine calls a tail makes (`logsUntilNow` only for an engine whose streams end early). */
export type TailEngine =
  & Pick<DockerClient, "inspect" | "logs">
  & Partial<Pick<DockerClient, "logsUntilNow">>;

/** What a tail needs. */
export interface TailDeps {
  /** Engine client. */
  docker: TailEngine;
  /** The buffer towards the broker. */
  queue: MessageQueue;
  /** Logger. */
  log: Logger;
  /** Configuration. */
  config: Config;
  /** Which containers are shipped (`INCLUDE`, `EXCLUDE`, `INCLUDE_LABEL`, ignore label). */
  filter: ContainerFilter;
}

/** What the owner asks of a tail. */
export interface TailOrder {
  /** Full container id. */
  id: string;
  /** Where to begin when no position is known; a known position always wins. */
  start: LogsStart;
  /** Where the previous tail of this container stopped (read, not kept), if known. */
  position?: Position;
  /** The current run's `die` notice. */
  died: () => AbortSignal;
  /** Lines read and identity, kept in the owner's per-container state; the tail fills them. */
  counters: ContainerCounters;
}

/** Why a tail ended; `filtered`: the filters keep it out, no logs were requested. */
export type TailEnd = "stopped" | "unreadable" | "gone" | "aborted" | "filtered";

/** How a tail ended and where it stopped reading: the owner keeps the position. */
export interface TailResult {
  /** Why it ended. */
  end: TailEnd;
  /** The last line sent (timestamp and count), when the tail got as far as resolving it. */
  position: Position | undefined;
}

/**
 * Follows one container until it stops. After `died()` aborts, a stream that sends nothing for
 * `dieGraceMs` (while not paused by a full buffer) counts as ended. The filters are decided on
 * the first inspect, before any logs request.
 */
export async function tailContainer(
  deps: TailDeps,
  order: TailOrder,
  signal: AbortSignal,
): Promise<TailResult> {
  const { docker, log, config } = deps;
  const short = shortId(order.id);
  const policy = reattachBackoff(config.tuning);
  let position = order.position && { ...order.position };
  const ended = (end: TailEnd): TailResult => ({ end, position });
  let attempt = 0;
  let firstPass = true;
  let info: ContainerInfo | undefined;
  let options: LogStreamOptions | undefined;
  let handoff: Handoff | undefined;
  while (!signal.aborted) {
    try {
      info = await docker.inspect(order.id, signal);
      if (firstPass && !shipped(deps, info)) return ended("filtered");
      // A container announced by its `start` event may already have exited: its run's lines
      // are still read once. Any other stopped container is never attached.
      if (!info.State.Running && (order.start.kind !== "run" || !firstPass)) {
        return ended("stopped");
      }
      firstPass = false;
      handoff ??= new Handoff(
        deps.queue,
        config.overflow,
        new LagWatch(order.id, info.Name.replace(/^\//, ""), config.tuning.lagWarnMs, log),
      );
      handoff.paused = false;
      const from = resumeFrom(position, order.start, info);
      position = from.position;
      // An exited container's run is read without following: that read is complete on every
      // engine, where a follow stream may not be (Podman 4.3, see `sent_lines.ts`).
      const follow = info.State.Running;
      // One set of decoding options per tail: a line cut is warned about once per container.
      options ??= streamOptions(deps, info);
      const read = { follow, options };
      const { stream, sender } = await followOnce(deps, info, from, signal, order, read, handoff);
      if (sender.linesRead > 0) attempt = 0;
      if (!(await docker.inspect(order.id, signal)).State.Running) {
        // Only the engine says a container stopped; its stream may end before the reader took
        // every line (Podman 4.3 does, 250 ms after the death; dockerd 20.10 too, even unpaused).
        if (
          follow && sender.keepsSent &&
          docker.logsUntilNow !== undefined
        ) {
          // The line in progress may lack pieces the engine dropped: the full read has it.
          stream.discard();
          await completeLog(deps, info, from.start, sender, options, signal);
        } else {
          // Its last lines (no final newline) wait for room like every other line.
          await sender.send(stream.flush(), signal);
        }
        return ended("stopped");
      }
      stream.discard();
      log.info("logs_stream_ended", { id: short, reason: "eof while running" });
    } catch (err) {
      if (signal.aborted) break;
      const end = permanentEnd(err, log, short, info);
      if (end !== undefined) return ended(end);
      // An engine that stops or restarts cuts its streams: not a failure of the stream's bytes.
      if (err instanceof StreamCutError) {
        log.info("logs_stream_ended", { id: short, reason: STREAM_CUT });
      } else log.warn("logs_stream_failed", { id: short, error: describe(err) });
    }
    const wait = backoff(policy, attempt++);
    log.debug("reattach_wait", { id: short, wait_ms: wait });
    if (!await sleep(wait, signal)) break;
  }
  return ended("aborted");
}

/** The filters' verdict on a container, logged once when it is kept out. */
function shipped(deps: TailDeps, info: ContainerInfo): boolean {
  const verdict = deps.filter({ name: info.Name, labels: info.Config.Labels });
  if (verdict === "ship") return true;
  deps.log.info("filtered", {
    id: shortId(info.Id),
    name: info.Name.replace(/^\//, ""),
    reason: verdict,
  });
  return false;
}

/** The end for an error no retry can mend, or undefined. */
function permanentEnd(
  err: unknown,
  log: Logger,
  short: string,
  info: ContainerInfo | undefined,
): TailEnd | undefined {
  if (err instanceof ShapeError) {
    // Retrying cannot fix what the engine says about it: left alone while it runs.
    log.warn("container_invalid", { id: short, error: err.message });
    return "unreadable";
  }
  if (!(err instanceof DockerApiError)) return undefined;
  if (err.status === 404) return "gone";
  if (!err.permanent) return undefined;
  log.warn("logs_unavailable", {
    id: short,
    name: info?.Name.replace(/^\//, ""),
    status: err.status,
    error: err.message,
  });
  return "unreadable";
}

/** How far before `StartedAt` a run's first line can be timestamped (set after the process starts). */
export const RUN_START_MARGIN_MS = 200;

/**
 * The start of the container's current (or just finished) run. While it runs, `FinishedAt` is
 * the end of its previous run: lines after it, or the whole log when there was none. When it
 * has already exited, `FinishedAt` is this run's end: lines from `StartedAt` minus a margin.
 */
export function runStart(info: ContainerInfo): LogsStart {
  const { Running, StartedAt, FinishedAt } = info.State;
  if (!Running && !isZeroTime(StartedAt)) {
    const nanos = timestampToNanos(StartedAt!) - BigInt(RUN_START_MARGIN_MS) * 1_000_000n;
    return { kind: "since", since: nanosToSince(nanos) };
  }
  if (isZeroTime(FinishedAt)) return { kind: "beginning" };
  return { kind: "since", since: toSinceParam(FinishedAt!) };
}

/** Where one attach reads from, and what it skips. */
interface ResumePoint {
  /** The request's start. */
  start: LogsStart;
  /** The tail's position (known before the request: a failed one resumes from it). */
  position: Position;
  /** Resumed from a known position. */
  resumed: boolean;
  /** `since` is inclusive: the first `skip` lines at `position.ts` were sent already. */
  skip: number;
}

/** A known position wins; else the order's start (a run resolved from the container's state). */
function resumeFrom(
  known: Position | undefined,
  fallback: LogsStart,
  info: ContainerInfo,
): ResumePoint {
  if (known !== undefined && known.ts !== "") {
    return {
      start: { kind: "since", since: toSinceParam(known.ts) },
      position: known,
      resumed: true,
      skip: known.count,
    };
  }
  const start = fallback.kind === "run" ? runStart(info) : fallback;
  const position = known ?? { ts: "", count: 0 };
  if (start.kind === "now") position.ts = nowRfc3339Nano();
  return { start, position, resumed: false, skip: 0 };
}

/**
 * Reads one logs stream (following it, or the log as it is now) to its end; the caller flushes
 * or discards its last lines.
 */
async function followOnce(
  deps: TailDeps,
  info: ContainerInfo,
  from: ResumePoint,
  signal: AbortSignal,
  order: TailOrder,
  read: { follow: boolean; options: LogStreamOptions },
  handoff: Handoff,
): Promise<{ stream: LogEntries; sender: LineSender }> {
  const { docker, log, config } = deps;
  const short = shortId(info.Id);
  const identity = identify(info.Id, info.Name, info.Config.Image, info.Config.Labels);
  const { counters } = order;
  counters.project = identity.project;
  counters.service = identity.service;
  counters.name = identity.containerName;
  const grace = new DieGrace(config.tuning.dieGraceMs, signal);
  const logs = read.follow || docker.logsUntilNow === undefined ? docker.logs : docker.logsUntilNow;
  // Ends the request when reading stops early (a pending read is not left behind).
  const readDone = new AbortController();
  const stream = await logs.call(
    docker,
    info.Id,
    from.start,
    read.options,
    AbortSignal.any([signal, grace.silence, readDone.signal]),
  );
  grace.arm(order.died());
  // Paused by our own buffer: not the engine's silence.
  handoff.onWait = (waiting) => waiting ? grace.pause() : grace.kick();
  // Any engine may end a follow stream before its last lines once the container stopped
  // (Podman 4.3 250 ms after the death, dropping lines; dockerd 20.10 too, after a complete
  // prefix, in either overflow mode): the lines handed off (dropped ones included) are kept, so
  // that a full read completes it. A read without following is never completed.
  const keepSent: SentShape | undefined = !read.follow
    ? undefined
    : stream.mayEndEarly === true
    ? "sparse"
    : "prefix";
  // An engine that may drop entries (a sparse stream), completed: inspects prove the lines read
  // before them (`run_proof.ts`). Joined lines wait for a proof (`held_lines.ts`); the kept sent
  // lines proven are let go of.
  const run = keepSent === "sparse" && docker.logsUntilNow !== undefined
    ? new RunProof(runningCheck(deps, info), AbortSignal.any([signal, readDone.signal]))
    : undefined;
  const hold = run && new HeldLines(run);
  const sender = new LineSender(info.Id, identity, from, handoff, counters, keepSent, run, hold);
  log.info("attached", {
    id: short,
    name: identity.containerName,
    key: `${identity.project}.${identity.service}`,
    tty: info.Config.Tty,
    from: from.resumed
      ? `${from.position.ts}+${from.skip}`
      : from.start.kind === "since"
      ? from.start.since
      : from.start.kind,
  });
  try {
    await readStream(stream, sender, grace, signal);
  } catch (err) {
    stream.discard();
    if (!grace.fired || signal.aborted) throw err;
    log.warn("logs_stream_silent", { id: short, after_die_ms: config.tuning.dieGraceMs });
  } finally {
    grace.stop();
    // Ends the proof: lines still held are read again (the stopped container's log whole, or
    // from the position).
    readDone.abort();
  }
  return { stream, sender };
}

/**
 * Hands each batch to the sender; lines held until proven (see `held_lines.ts`) are sent as soon
 * as a proof comes, between reads.
 */
async function readStream(
  stream: LogEntries,
  sender: LineSender,
  grace: DieGrace,
  signal: AbortSignal,
): Promise<void> {
  const hold = sender.hold;
  const reader = stream[Symbol.asyncIterator]();
  let next = reader.next();
  for (;;) {
    const step = hold === undefined || hold.size === 0
      ? await next
      : await Promise.race([next, hold.proof()]);
    if (step === "proven") {
      await sender.sendHeld(signal);
      continue;
    }
    if (step === "stopped") continue;
    if (step === "closed") return signal.throwIfAborted();
    if (step.done) return;
    grace.kick();
    if (step.value.length > 0 && !signal.aborted) await sender.send(step.value, signal);
    // Too much held: no more reading until a proof (or the stop) comes.
    while (hold?.full) {
      const proof = await hold.proof();
      if (proof === "proven") await sender.sendHeld(signal);
      else if (proof === "closed") return signal.throwIfAborted();
    }
    next = reader.next();
  }
}

/**
 * Whether the run being followed still runs (a restart meanwhile counts as its end), for proving
 * the lines read before (`run_proof.ts`); undefined when the engine can't tell.
 */
function runningCheck(deps: TailDeps, attached: ContainerInfo): RunningCheck {
  const id = attached.Id;
  return async (signal) => {
    try {
      const { State } = await deps.docker.inspect(id, signal);
      return State.Running && State.StartedAt === attached.State.StartedAt;
    } catch (err) {
      if (signal.aborted) throw err;
      if (err instanceof DockerApiError && err.status === 404) return false;
      deps.log.debug("held_lines_check_failed", { id: shortId(id), error: describe(err) });
      return undefined;
    }
  };
}

/** How a container's log is decoded: its TTY mode, the line cap (warned about once). */
function streamOptions(deps: TailDeps, info: ContainerInfo): LogStreamOptions {
  const { log, config } = deps;
  const short = shortId(info.Id);
  let warnedOversize = false;
  return {
    tty: info.Config.Tty,
    maxLineBytes: config.maxLineBytes,
    onOversize: () => {
      if (warnedOversize) return;
      warnedOversize = true;
      log.warn("line_cut", { id: short, max_line_bytes: config.maxLineBytes });
    },
    onEngineError: (text) => log.warn("engine_stream_error", { id: short, error: text }),
  };
}

/**
 * A stopped container whose engine may have ended its stream early (see `sent_lines.ts`): its
 * log is read once more, without following, from where the kept sent lines begin, and only
 * the lines not sent yet are sent.
 */
async function completeLog(
  deps: TailDeps,
  info: ContainerInfo,
  start: LogsStart,
  sender: LineSender,
  options: LogStreamOptions,
  signal: AbortSignal,
): Promise<void> {
  const { docker, log } = deps;
  const completion = sender.completion();
  if (completion === undefined || docker.logsUntilNow === undefined) return;
  const from: LogsStart = completion.floor.ts === ""
    ? start
    : { kind: "since", since: toSinceParam(completion.floor.ts) };
  // Two reads of the same (stopped) log: the first finds what was never sent, the second sends it.
  const first = await docker.logsUntilNow(info.Id, from, options, signal);
  for await (const batch of first) sender.observe(batch, completion);
  sender.observe(first.flush(), completion);
  const second = await docker.logsUntilNow(info.Id, from, options, signal);
  let added = 0;
  for await (const batch of second) added += await sender.sendMissing(batch, completion, signal);
  added += await sender.sendMissing(second.flush(), completion, signal);
  if (added > 0 || completion.unmatched > 0) {
    log.info("logs_completed", {
      id: shortId(info.Id),
      lines: added,
      reason: "the engine ended the stream before the last lines",
      ...(completion.unmatched > 0 ? { unmatched: completion.unmatched } : {}),
    });
  }
}

/**
 * The die grace: after `die`, the engine closes the stream once it sent the last lines; a
 * stream that stays silent instead is given up after `ms` (time paused by a full buffer is not
 * silence).
 */
class DieGrace {
  readonly #ms: number;
  readonly #signal: AbortSignal;
  readonly #silence = new AbortController();
  #dog: Watchdog | undefined;
  #died: AbortSignal | undefined;
  #paused = false;

  constructor(ms: number, signal: AbortSignal) {
    this.#ms = ms;
    this.#signal = signal;
  }

  /** Aborts when the stream was silent for the grace period after `die`. */
  get silence(): AbortSignal {
    return this.#silence.signal;
  }

  /** Whether the grace period ran out. */
  get fired(): boolean {
    return this.#silence.signal.aborted;
  }

  /** Starts counting once `died` aborts (at once if it has). */
  arm(died: AbortSignal): void {
    this.#died = died;
    if (died.aborted) this.#onDied();
    else died.addEventListener("abort", this.#onDied, { once: true });
  }

  /** The stream sent something, or reading resumed after a pause. */
  kick(): void {
    this.#paused = false;
    this.#dog?.kick();
  }

  /** Reading paused by our own buffer: not the engine's silence (a `die` meanwhile waits too). */
  pause(): void {
    this.#paused = true;
    this.#dog?.stop();
  }

  /** Stops counting for good. */
  stop(): void {
    this.#dog?.stop();
    this.#died?.removeEventListener("abort", this.#onDied);
  }

  #onDied = (): void => {
    const signal = this.#signal;
    this.#dog = watchdog(this.#ms, signal);
    if (this.#paused) this.#dog.stop();
    this.#dog.signal.addEventListener("abort", () => {
      if (!signal.aborted) {
        this.#silence.abort(new DOMException("silent after die", "TimeoutError"));
      }
    }, { once: true });
  };
}

/**
 * Turns entries into messages: skips what a resume sent already, advances the position, hands
 * them off (`Handoff`: the overflow policy, turns at a full buffer, lag warnings).
 */
class LineSender {
  /** Entries seen, skipped ones included. */
  linesRead = 0;
  readonly #handoff: Handoff;
  readonly #id: string;
  readonly #short: string;
  readonly #identity: ContainerIdentity;
  /** Made at the stream's first line: a silent container keeps neither. */
  #stdout: EnvelopeEncoder | undefined;
  #stderr: EnvelopeEncoder | undefined;
  readonly #position: Position;
  readonly #skipTs: string;
  #skipLeft: number;
  readonly #counters: ContainerCounters;
  /** The lines sent, kept when the engine may end the stream early. */
  readonly #sent: SentLines | undefined;
  /** Lines waiting for a proof, when the engine may drop entries (`held_lines.ts`). */
  readonly hold: HeldLines | undefined;
  /** A sparse stream's proof: asked for once many sent lines are kept, which it lets go of. */
  readonly #run: RunProof | undefined;

  constructor(
    id: string,
    identity: ContainerIdentity,
    from: ResumePoint,
    handoff: Handoff,
    counters: ContainerCounters,
    keepSent: SentShape | undefined,
    run?: RunProof,
    hold?: HeldLines,
  ) {
    this.hold = hold;
    this.#run = run;
    this.#handoff = handoff;
    this.#counters = counters;
    this.#id = id;
    this.#short = shortId(id);
    this.#identity = identity;
    this.#position = from.position;
    this.#skipTs = from.position.ts;
    this.#skipLeft = from.skip;
    this.#sent = keepSent === undefined ? undefined : new SentLines(from.position, keepSent);
    if (this.#sent !== undefined) run?.join(this.#sent);
  }

  /**
   * Hands a batch's messages off (those the hold takes wait for their proof); with
   * `OVERFLOW=pause`, waits for its turn when full.
   */
  async send(batch: readonly LogEntry[], signal: AbortSignal): Promise<void> {
    this.linesRead += batch.length;
    const hold = this.hold;
    if (hold === undefined) return await this.#handOff(batch, signal);
    // Up to the first line the hold takes (it then takes every later one, in order).
    let i = 0;
    while (i < batch.length && !hold.take(batch[i])) i++;
    for (let k = i + 1; k < batch.length; k++) hold.take(batch[k]);
    await this.#handOff(i === batch.length ? batch : batch.slice(0, i), signal);
  }

  /** Hands off the held lines proven so far. */
  async sendHeld(signal: AbortSignal): Promise<void> {
    const lines = this.hold?.release() ?? [];
    if (lines.length > 0) await this.#handOff(lines, signal);
  }

  async #handOff(batch: readonly LogEntry[], signal: AbortSignal): Promise<void> {
    const handoff = this.#handoff;
    try {
      for (let i = 0; i < batch.length; i++) {
        const msg = this.#message(batch[i]);
        if (msg === undefined) continue;
        while (!handoff.tryAdd(msg)) await handoff.waitForTurn(msg, signal);
      }
    } finally {
      handoff.end();
    }
    if (this.#position.ts !== "") handoff.checkLag(this.#position.ts);
  }

  /** Whether the lines sent are kept (a stream that may end early can be completed). */
  get keepsSent(): boolean {
    return this.#sent !== undefined;
  }

  /** The kept sent lines, matched against a complete read from here on; once. */
  completion(): Completion | undefined {
    return this.#sent?.completion();
  }

  /** Shows a complete read's lines to the completion (its first pass). */
  observe(batch: readonly LogEntry[], completion: Completion): void {
    for (const entry of batch) completion.observe(this.#sentLine(entry));
  }

  /** Offers the lines of a complete read that were never sent; returns how many. */
  async sendMissing(
    batch: readonly LogEntry[],
    completion: Completion,
    signal: AbortSignal,
  ): Promise<number> {
    const handoff = this.#handoff;
    let added = 0;
    try {
      for (const entry of batch) {
        const line = this.#sentLine(entry);
        const seq = completion.next(line);
        if (seq === undefined) continue;
        raise(this.#position, line.ts, seq);
        const msg = this.#envelope(entry, line.ts, seq);
        while (!handoff.tryAdd(msg)) await handoff.waitForTurn(msg, signal);
        added++;
      }
    } finally {
      handoff.end();
    }
    return added;
  }

  #sentLine(entry: LogEntry): SentLine {
    const ts = entry.ts === "" ? nowRfc3339Nano() : normalizeTimestamp(entry.ts);
    return { stream: entry.stream === "stdout" ? 1 : 2, ts, message: entry.message };
  }

  #message(entry: LogEntry): OutMessage | undefined {
    const timestamp = entry.ts === "" ? nowRfc3339Nano() : normalizeTimestamp(entry.ts);
    if (this.#skipLeft > 0 && timestamp === this.#skipTs) {
      this.#skipLeft--;
      return undefined;
    }
    const seq = advance(this.#position, timestamp);
    const sent = this.#sent;
    if (sent !== undefined) {
      sent.record(
        { stream: entry.stream === "stdout" ? 1 : 2, ts: timestamp, message: entry.message },
        seq,
      );
      // Lets go of the kept lines an inspect proves (`run_proof.ts`; a failed one keeps them).
      if (sent.size >= SENT_PROOF_AT) this.#run?.ask();
    }
    return this.#envelope(entry, timestamp, seq);
  }

  #envelope(entry: LogEntry, timestamp: string, seq: number): OutMessage {
    let encoder: EnvelopeEncoder;
    if (entry.stream === "stdout") {
      this.#counters.stdout++;
      encoder = this.#stdout ??= new EnvelopeEncoder(this.#identity, "stdout");
    } else {
      this.#counters.stderr++;
      encoder = this.#stderr ??= new EnvelopeEncoder(this.#identity, "stderr");
    }
    return {
      routingKey: encoder.routingKey,
      body: encoder.encode(timestamp, entry.message),
      containerId: this.#id,
      timestamp,
      seq,
      messageId: messageId(this.#short, timestamp, seq),
    };
  }
}
