/**
 * karotten itself, spawned as users run it (`startKarotten`: its real permission flags), on the
 * private engine and the real broker: end-to-end throughput with its CPU and memory, memory with
 * a full buffer, fan-in delivery lag, and attach latency.
 * @module
 */
import { delay } from "../lib/async/delay.ts";
import type { DockerClient } from "../lib/docker/api.ts";
import type { DockerEngine } from "../tests/helpers/dockerd.ts";
import { TEST_IMAGE } from "../tests/helpers/dockerd.ts";
import type { Karotten } from "../tests/helpers/karotten.ts";
import { rabbitStartApp, rabbitStopApp } from "../tests/helpers/rabbit.ts";
import { waitFor } from "../tests/helpers/deadline.ts";
import { type BenchBinding, BrokerDisturbedError } from "./_broker.ts";
import { CpuMeter, inotifyInstances, memory } from "./_proc.ts";
import { percentile, timestampMs } from "./_stats.ts";
import { burstScript, pacedScript, parsePaced } from "./_workloads.ts";
import { MEASURE_TIMEOUT_MS, perItem } from "./raw.ts";

/** The end-to-end container keeps running this long after its burst (removed once read). */
const HOLD_SECONDS = 600;

/** How often the queue depth is polled (a passive declare each time). */
export const COUNT_POLL_MS = 20;

/** karotten's log events that say the broker blocked it or went away. */
const DISTURBANCE = / (amqp_blocked|amqp_disconnected|amqp_reconnect) /;

/**
 * Throws `BrokerDisturbedError` when the binding's connection was blocked or dropped, or when
 * karotten logged a broker disturbance since its line `from`.
 */
export function throwIfDisturbed(k: Karotten, from: number, binding: BenchBinding): void {
  binding.disturbed.throwIfAborted();
  const line = k.lines.slice(from).find((l) => DISTURBANCE.test(l));
  if (line !== undefined) throw new BrokerDisturbedError(`karotten logged: ${line}`);
}

/** One end-to-end run. */
export interface EndToEnd {
  /** Lines the container printed (the queue held this many at the end). */
  lines: number;
  /** From the first message seen in the queue to the last. */
  seconds: number;
  /** Lines in the queue when the first was seen (they are not in `seconds`). */
  before: number;
  /** From `docker run` to the last message (container start and attach included). */
  secondsFromRun: number;
  /** karotten's user+sys CPU per line, µs. */
  cpuUsPerLine: number;
  /** CPU per line of each process watched (`karotten`, …) and `machine`, µs. */
  cpuUs: Record<string, number>;
  /** Busy share of all the machine's CPUs from `docker run` to the last line, 0–1. */
  machineBusy: number;
  /** karotten's largest resident size sampled while the lines flowed, bytes. */
  maxRssBytes: number;
  /** karotten's `VmHWM` at the end, bytes (its whole life, warm-up included). */
  hwmBytes: number;
}

/**
 * Runs a container printing `n` lines of `lineBytes` while karotten (ready, connected, queue
 * empty) follows it; polls the queue depth until it holds `n`. Removes the container and
 * empties the queue afterwards.
 */
export async function endToEnd(
  engine: DockerEngine,
  k: Karotten,
  binding: BenchBinding,
  n: number,
  lineBytes: number,
  name: string,
  watch: Record<string, number | undefined> = {},
): Promise<EndToEnd> {
  const logged = k.lines.length;
  const meter = new CpuMeter({ karotten: k.pid, ...watch });
  let maxRss = memory(k.pid).rssBytes;
  const run = performance.now();
  const id = await engine.run(
    "--name",
    name,
    TEST_IMAGE,
    "sh",
    "-c",
    burstScript(n, lineBytes, HOLD_SECONDS),
  );
  let first: { at: number; count: number } | undefined;
  let end = 0;
  for (;;) {
    const count = await binding.count();
    const at = performance.now();
    maxRss = Math.max(maxRss, memory(k.pid).rssBytes);
    if (count > 0 && first === undefined) first = { at, count };
    if (count >= n) {
      end = at;
      break;
    }
    throwIfDisturbed(k, logged, binding);
    if (at - run > MEASURE_TIMEOUT_MS) {
      throw new Error(`end to end: the queue holds ${count} of ${n} after ${MEASURE_TIMEOUT_MS}ms`);
    }
    await delay(COUNT_POLL_MS);
  }
  const cpu = meter.take();
  const { hwmBytes } = memory(k.pid);
  await engine.docker("rm", "-f", id);
  await binding.purge();
  throwIfDisturbed(k, logged, binding);
  return {
    lines: n,
    seconds: (end - first!.at) / 1000,
    before: first!.count,
    secondsFromRun: (end - run) / 1000,
    cpuUsPerLine: (cpu.karotten / n) * 1e6,
    cpuUs: perItem(cpu, n),
    machineBusy: cpu.machine / ((end - run) / 1000 * navigator.hardwareConcurrency),
    maxRssBytes: maxRss,
    hwmBytes,
  };
}

/** karotten's memory with its buffer full. */
export interface FullBuffer {
  /** Resident size when connected and idle, before the broker stopped, bytes. */
  idleRssBytes: number;
  /** Largest resident size sampled with the buffer full, bytes. */
  maxRssBytes: number;
  /** `VmHWM` at the end, bytes. */
  hwmBytes: number;
  /** Lines the container printed (more than the buffer holds). */
  lines: number;
  /** Size of each line, newline included. */
  lineBytes: number;
}

/** How long resident memory is sampled once the buffer is full. */
const FULL_SAMPLE_MS = 1_500;

/**
 * With karotten connected (it must log `dropped` soon after its buffer is full: a short
 * `dropReportIntervalMs`), stops the broker app, runs a container printing `lines` lines of
 * `lineBytes`, waits for the first drop report and samples memory. Always starts the broker app
 * again.
 */
export async function fullBuffer(
  engine: DockerEngine,
  k: Karotten,
  lines: number,
  lineBytes: number,
): Promise<FullBuffer> {
  const idleRssBytes = memory(k.pid).rssBytes;
  const seen = k.lines.length;
  await rabbitStopApp();
  try {
    await waitFor(() => k.lines.slice(seen).some((l) => / amqp_disconnected /.test(l)), {
      timeoutMs: 30_000,
      what: "karotten to see the broker go",
    });
    await engine.run(
      "--name",
      "full-buffer",
      TEST_IMAGE,
      "sh",
      "-c",
      burstScript(lines, lineBytes),
    );
    await waitFor(() => k.lines.slice(seen).some((l) => / warn dropped /.test(l)), {
      timeoutMs: 60_000,
      what: "karotten to report dropped lines (its buffer full)",
    });
    let maxRssBytes = 0;
    const until = performance.now() + FULL_SAMPLE_MS;
    while (performance.now() < until) {
      maxRssBytes = Math.max(maxRssBytes, memory(k.pid).rssBytes);
      await delay(50);
    }
    return { idleRssBytes, maxRssBytes, hwmBytes: memory(k.pid).hwmBytes, lines, lineBytes };
  } finally {
    await rabbitStartApp();
  }
}

/** Routes consumed messages to the phase running now. */
export class Arrivals {
  #handler: ((tag: string, seq: number, tsMs: number, receivedMs: number) => void) | undefined;
  /** Bodies that were not a paced line. */
  other = 0;
  readonly #decoder = new TextDecoder();

  /** The consumer callback for `BenchBinding.consume`. */
  readonly onMessage = (body: Uint8Array, receivedMs: number): void => {
    const parsed: { timestamp: string; message: string } = JSON.parse(this.#decoder.decode(body));
    const line = parsePaced(parsed.message);
    if (line === undefined || this.#handler === undefined) {
      this.other++;
      return;
    }
    this.#handler(line.tag, line.seq, timestampMs(parsed.timestamp), receivedMs);
  };

  /** Sets (or clears) who gets the paced lines. */
  route(handler?: (tag: string, seq: number, tsMs: number, receivedMs: number) => void): void {
    this.#handler = handler;
  }
}

/** Fan-in results. */
export interface FanIn {
  /** Containers run at once. */
  containers: number;
  /** Lines each printed. */
  linesPerContainer: number;
  /** Lines per second each was set to print. */
  ratePerContainer: number;
  /** Distinct lines received. */
  received: number;
  /** Lines never received. */
  lost: number;
  /** Lines received more than once. */
  duplicates: number;
  /**
   * Containers whose median lag exceeded `SLOW_FOLLOWER_MS`: the engine follows a log file with
   * inotify, and polls it every 200 ms when it cannot get an inotify instance.
   */
  slowContainers: number;
  /** Most inotify instances open on the machine (all users) during the run. */
  maxInotifyInstances: number;
  /** Engine timestamp → consumer receive, ms. */
  lagP50Ms: number;
  /** Same, 99th percentile. */
  lagP99Ms: number;
  /** Same, largest. */
  lagMaxMs: number;
  /** Lines received per second over the run (first to last). */
  linesPerS: number;
  /** karotten's CPU per line, µs. */
  cpuUsPerLine: number;
  /** CPU per line of each process watched and `machine`, µs. */
  cpuUs: Record<string, number>;
  /** Busy share of all the machine's CPUs during the run, 0–1. */
  machineBusy: number;
  /** From the first container start to the last line, s. */
  seconds: number;
  /** karotten's largest resident size sampled during the run, bytes. */
  maxRssBytes: number;
}

/** A fan-in container whose median lag is above this is counted as slow. */
const SLOW_FOLLOWER_MS = 50;

/** How long lines may arrive after the last fan-in container exited. */
const LATE_LINES_MS = 30_000;

/** Containers started concurrently by the CLI while setting up fan-in. */
const START_CONCURRENCY = 5;

/**
 * Runs `containers` containers printing `perS` numbered lines per second for `seconds`; the
 * consumer behind `arrivals` records each line's lag; waits for every line (or gives up 30 s
 * after the last container exited) and counts the missing ones.
 */
export async function fanIn(
  engine: DockerEngine,
  docker: DockerClient,
  k: Karotten,
  binding: BenchBinding,
  arrivals: Arrivals,
  containers: number,
  perS: number,
  seconds: number,
  lineBytes: number,
  watch: Record<string, number | undefined> = {},
): Promise<FanIn> {
  const tickMs = 100;
  const perTick = Math.round(perS * tickMs / 1000);
  const n = perS * seconds;
  const seen = new Map<string, Uint8Array>();
  for (let i = 0; i < containers; i++) seen.set(`f${i}`, new Uint8Array(n + 1));
  const lags: number[] = [];
  const lagsByTag = new Map<string, number[]>();
  let received = 0;
  let duplicates = 0;
  let firstAt = Infinity;
  let lastAt = 0;
  arrivals.route((tag, seq, tsMs, receivedMs) => {
    const marks = seen.get(tag);
    if (marks === undefined || seq < 1 || seq > n) return;
    if (marks[seq] === 1) {
      duplicates++;
      return;
    }
    marks[seq] = 1;
    received++;
    lags.push(receivedMs - tsMs);
    let own = lagsByTag.get(tag);
    if (own === undefined) lagsByTag.set(tag, own = []);
    own.push(receivedMs - tsMs);
    if (receivedMs < firstAt) firstAt = receivedMs;
    lastAt = receivedMs;
  });
  const logged = k.lines.length;
  const meter = new CpuMeter({ karotten: k.pid, ...watch });
  const start = performance.now();
  let maxRss = memory(k.pid).rssBytes;
  const ids: string[] = [];
  let cpu: Record<string, number> = {};
  let wall = 0;
  let maxInotify = 0;
  try {
    for (let i = 0; i < containers; i += START_CONCURRENCY) {
      const batch = [];
      for (let j = i; j < Math.min(containers, i + START_CONCURRENCY); j++) {
        batch.push(engine.run(
          "--name",
          `fan-${j}`,
          TEST_IMAGE,
          "sh",
          "-c",
          pacedScript(`f${j}`, n, perTick, tickMs, lineBytes),
        ));
      }
      ids.push(...await Promise.all(batch));
    }
    const ours = new Set(ids);
    const deadline = performance.now() + (seconds * 3 + 60) * 1000;
    while ((await docker.listRunning(AbortSignal.timeout(10_000))).some((c) => ours.has(c.Id))) {
      maxRss = Math.max(maxRss, memory(k.pid).rssBytes);
      maxInotify = Math.max(maxInotify, inotifyInstances());
      throwIfDisturbed(k, logged, binding);
      if (performance.now() > deadline) throw new Error("fan-in containers still run");
      await delay(250);
    }
    // Whatever has not arrived 30 s after the last container exited is counted as lost.
    const total = containers * n;
    const giveUp = performance.now() + LATE_LINES_MS;
    while (received < total && performance.now() < giveUp) await delay(50);
    cpu = meter.take();
    wall = (performance.now() - start) / 1000;
    throwIfDisturbed(k, logged, binding);
  } finally {
    arrivals.route();
    if (ids.length > 0) await engine.docker("rm", "-f", ...ids);
  }
  return {
    containers,
    linesPerContainer: n,
    ratePerContainer: perS,
    received,
    lost: containers * n - received,
    duplicates,
    slowContainers: [...lagsByTag.values()].filter((l) => percentile(l, 50) > SLOW_FOLLOWER_MS)
      .length,
    maxInotifyInstances: maxInotify,
    lagP50Ms: percentile(lags, 50),
    lagP99Ms: percentile(lags, 99),
    lagMaxMs: percentile(lags, 100),
    linesPerS: received / ((lastAt - firstAt) / 1000),
    cpuUsPerLine: (cpu.karotten / Math.max(received, 1)) * 1e6,
    cpuUs: perItem(cpu, Math.max(received, 1)),
    machineBusy: cpu.machine / (wall * navigator.hardwareConcurrency),
    seconds: wall,
    maxRssBytes: maxRss,
  };
}

/** Attach latency results. */
export interface Attach {
  /** Containers started, one after the other. */
  containers: number;
  /** Container start → first message received, ms, per container. */
  latenciesMs: number[];
  /** Median. */
  p50Ms: number;
  /** 99th percentile. */
  p99Ms: number;
}

/**
 * Starts `count` containers one after the other, each printing one line at once; for each,
 * the time from its start (the earlier of `State.StartedAt` and its first line's engine
 * timestamp) to the arrival of that line at the consumer.
 */
export async function attachLatency(
  engine: DockerEngine,
  docker: DockerClient,
  k: Karotten,
  binding: BenchBinding,
  arrivals: Arrivals,
  count: number,
): Promise<Attach> {
  const logged = k.lines.length;
  const latenciesMs: number[] = [];
  const ids: string[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const tag = `a${i}`;
      const got = Promise.withResolvers<{ tsMs: number; receivedMs: number }>();
      arrivals.route((t, _seq, tsMs, receivedMs) => {
        if (t === tag) got.resolve({ tsMs, receivedMs });
      });
      const id = await engine.run(
        "--name",
        `attach-${i}`,
        TEST_IMAGE,
        "sh",
        "-c",
        `trap "exit 0" TERM; echo "fan ${tag} 1 first"; sleep 2`,
      );
      ids.push(id);
      const timer = setTimeout(() => got.reject(new Error(`no line of ${tag} in 10 s`)), 10_000);
      let arrival: { tsMs: number; receivedMs: number };
      try {
        arrival = await got.promise;
      } catch (err) {
        throwIfDisturbed(k, logged, binding); // the likelier cause
        throw err;
      } finally {
        clearTimeout(timer);
      }
      const info = await docker.inspect(id, AbortSignal.timeout(10_000));
      const startedMs = Math.min(timestampMs(info.State.StartedAt ?? ""), arrival.tsMs);
      latenciesMs.push(arrival.receivedMs - startedMs);
      throwIfDisturbed(k, logged, binding);
    }
  } finally {
    arrivals.route();
    if (ids.length > 0) await engine.docker("rm", "-f", ...ids);
  }
  return {
    containers: count,
    latenciesMs,
    p50Ms: percentile(latenciesMs, 50),
    p99Ms: percentile(latenciesMs, 99),
  };
}
