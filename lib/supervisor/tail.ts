/**
 * One container's task: inspect it, follow its logs, turn lines into messages, and re-attach
 * (resuming where it stopped) while the container runs. Ends when the container stops, when its
 * logs cannot be read (permanent error), or when its signal aborts.
 * @module
 */
import { backoff } from "../async/backoff.ts";
import { delay } from "../async/delay.ts";
import { type Watchdog, watchdog } from "../async/watchdog.ts";
import type { Config } from "../config.ts";
import type { ContainerInfo, DockerClient, LogsStart } from "../docker/api.ts";
import { FrameDemuxer } from "../docker/frames.ts";
import { LineAssembler, type StreamName } from "../docker/lines.ts";
import { timestampToNanos, toSinceParam } from "../docker/timestamp.ts";
import { describe, DockerApiError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { EnvelopeEncoder, identify, nowRfc3339Nano } from "../message.ts";
import { advance, type Position } from "../positions.ts";
import type { MessageQueue, OutMessage } from "../queue.ts";

/** What a tail needs. */
export interface TailDeps {
  /** Engine client. */
  docker: DockerClient;
  /** The buffer towards the broker. */
  queue: MessageQueue;
  /** Logger. */
  log: Logger;
  /** Configuration. */
  config: Config;
  /** Read positions by full container id (shared with the supervisor). */
  positions: Map<string, Position>;
}

const NEVER = new AbortController().signal;

/** Why a tail ended. */
export type TailEnd = "stopped" | "unreadable" | "gone" | "aborted";

/**
 * Follows one container until it stops. `start` says where to begin when no position is known
 * for it; a known position always wins. `died()` is the current run's `die` notice: after it, a
 * stream that sends nothing for `dieGraceMs` (while not paused by a full buffer) counts as ended.
 */
export async function tailContainer(
  deps: TailDeps,
  id: string,
  start: LogsStart,
  signal: AbortSignal,
  died: () => AbortSignal = () => NEVER,
): Promise<TailEnd> {
  const { docker, log, config } = deps;
  const short = id.slice(0, 12);
  const policy = {
    initialMs: config.tuning.reattachBackoffInitialMs,
    maxMs: config.tuning.reattachBackoffMaxMs,
  };
  let attempt = 0;
  let firstPass = true;
  let info: ContainerInfo | undefined;
  while (!signal.aborted) {
    try {
      info = await docker.inspect(id, signal);
      // A container announced by its `start` event may already have exited: its run's lines
      // are still read once. Any other stopped container is never attached.
      if (!info.State.Running && (start.kind !== "run" || !firstPass)) return "stopped";
      firstPass = false;
      const outcome = await followOnce(deps, info, start, signal, died());
      if (outcome.linesRead > 0) attempt = 0;
      if (outcome.ended === "eof") {
        const now = await docker.inspect(id, signal);
        if (!now.State.Running) {
          outcome.finish(true);
          return "stopped";
        }
        outcome.finish(false);
        log.info("logs_stream_ended", { id: short, reason: "eof while running" });
      }
    } catch (err) {
      if (signal.aborted) break;
      if (err instanceof DockerApiError && err.status === 404) return "gone";
      if (err instanceof DockerApiError && err.permanent) {
        log.warn("logs_unavailable", {
          id: short,
          name: info?.Name.replace(/^\//, ""),
          status: err.status,
          error: err.message,
        });
        return "unreadable";
      }
      log.warn("logs_stream_failed", { id: short, error: describe(err) });
    }
    const wait = backoff(policy, attempt++);
    log.debug("reattach_wait", { id: short, wait_ms: wait });
    try {
      await delay(wait, { signal });
    } catch {
      break;
    }
  }
  return "aborted";
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
  if (!Running && StartedAt && !StartedAt.startsWith("0001-")) {
    const nanos = timestampToNanos(StartedAt) - BigInt(RUN_START_MARGIN_MS) * 1_000_000n;
    return { kind: "since", since: nanosToSince(nanos) };
  }
  if (!FinishedAt || FinishedAt.startsWith("0001-")) return { kind: "beginning" };
  return { kind: "since", since: toSinceParam(FinishedAt) };
}

function nanosToSince(nanos: bigint): string {
  const s = nanos / 1_000_000_000n;
  const ns = nanos % 1_000_000_000n;
  return `${s}.${ns.toString().padStart(9, "0")}`;
}

interface FollowOutcome {
  ended: "eof";
  linesRead: number;
  /** At EOF: emit (container stopped) or drop (it will be re-read) the partial lines. */
  finish(stopped: boolean): void;
}

async function followOnce(
  deps: TailDeps,
  info: ContainerInfo,
  fallback: LogsStart,
  signal: AbortSignal,
  died: AbortSignal,
): Promise<FollowOutcome> {
  const { docker, queue, log, config, positions } = deps;
  const id = info.Id;
  const short = id.slice(0, 12);
  const identity = identify(id, info.Name, info.Config.Image, info.Config.Labels);
  const encoders: Record<StreamName, EnvelopeEncoder> = {
    stdout: new EnvelopeEncoder(identity, "stdout"),
    stderr: new EnvelopeEncoder(identity, "stderr"),
  };
  const known = positions.get(id);
  const resumed = known !== undefined && known.ts !== "";
  const start: LogsStart = resumed
    ? { kind: "since", since: toSinceParam(known!.ts) }
    : fallback.kind === "run"
    ? runStart(info)
    : fallback;
  // Known before the request: if it fails, the retry resumes from the first attach time.
  const position = known ?? { ts: "", count: 0 };
  if (position.ts === "" && start.kind === "now") position.ts = nowRfc3339Nano();
  positions.set(id, position);
  // After `die`, the engine closes the stream once it sent the last lines; a stream that stays
  // silent instead is given up after the grace period.
  const silence = new AbortController();
  const res = await docker.logs(id, start, AbortSignal.any([signal, silence.signal]));
  let dog: Watchdog | undefined;
  const onDied = () => {
    dog = watchdog(config.tuning.dieGraceMs, signal);
    dog.signal.addEventListener("abort", () => {
      if (!signal.aborted) silence.abort(new DOMException("silent after die", "TimeoutError"));
    }, { once: true });
  };
  if (died.aborted) onDied();
  else died.addEventListener("abort", onDied, { once: true });
  // `since` is inclusive: the first `count` messages at the resume timestamp were sent already.
  const skipTs = position.ts;
  let skipLeft = resumed ? position.count : 0;
  log.info("attached", {
    id: short,
    name: identity.containerName,
    key: `${identity.project}.${identity.service}`,
    tty: info.Config.Tty,
    from: resumed ? `${skipTs}+${skipLeft}` : start.kind === "since" ? start.since : start.kind,
  });

  const pending: OutMessage[] = [];
  let linesRead = 0;
  let warnedOversize = false;
  const assembler = new LineAssembler({
    maxLineBytes: config.maxLineBytes,
    onLine: (stream, ts, message) => {
      linesRead++;
      const timestamp = ts === "" ? nowRfc3339Nano() : ts;
      if (skipLeft > 0 && timestamp === skipTs) {
        skipLeft--;
        return;
      }
      const seq = advance(position, timestamp);
      const encoder = encoders[stream];
      pending.push({
        routingKey: encoder.routingKey,
        body: encoder.encode(timestamp, message),
        containerId: id,
        timestamp,
        seq,
      });
    },
    onOversize: () => {
      if (warnedOversize) return;
      warnedOversize = true;
      log.warn("line_cut", { id: short, max_line_bytes: config.maxLineBytes });
    },
  });
  const demux = info.Config.Tty ? undefined : new FrameDemuxer((stream, payload) => {
    if (stream === 1) assembler.pushEntry("stdout", payload);
    else if (stream === 2) assembler.pushEntry("stderr", payload);
    else if (stream === 3) {
      log.warn("engine_stream_error", { id: short, error: new TextDecoder().decode(payload) });
    }
  });
  const pause = config.overflow === "pause";
  const deliver = async () => {
    for (let i = 0; i < pending.length; i++) {
      if (pause && queue.size >= queue.capacity) {
        // Paused by our own buffer: not the engine's silence.
        dog?.stop();
        while (queue.size >= queue.capacity) await queue.waitForRoom(signal);
        dog?.kick();
      }
      queue.offer(pending[i]);
    }
    pending.length = 0;
  };
  try {
    for await (const piece of res.body()) {
      dog?.kick();
      try {
        if (demux) demux.push(piece);
        else assembler.pushRaw(piece);
      } finally {
        // Lines completed before a decoding error are real: their positions already advanced.
        if (pending.length > 0 && !signal.aborted) await deliver();
      }
    }
    demux?.end();
  } catch (err) {
    assembler.discard();
    pending.length = 0;
    if (!silence.signal.aborted || signal.aborted) throw err;
    log.warn("logs_stream_silent", { id: short, after_die_ms: config.tuning.dieGraceMs });
  } finally {
    dog?.stop();
    died.removeEventListener("abort", onDied);
  }
  return {
    ended: "eof",
    linesRead,
    finish: (stopped) => {
      if (stopped) {
        assembler.flush();
        for (const msg of pending) queue.offer(msg);
        pending.length = 0;
      } else assembler.discard();
    },
  };
}
