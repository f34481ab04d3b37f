/**
 * karotten with a full buffer under its default `OVERFLOW=pause`: how long a quiet container's
 * lines wait while a neighbour bursts (fairness), and its memory while the broker is away and
 * the buffer holds 1 MiB lines (the byte budget).
 * @module
 */
import { delay } from "../lib/async/delay.ts";
import type { DockerEngine } from "../tests/helpers/dockerd.ts";
import { TEST_IMAGE } from "../tests/helpers/dockerd.ts";
import type { Karotten } from "../tests/helpers/karotten.ts";
import { rabbitStartApp, rabbitStopApp } from "../tests/helpers/rabbit.ts";
import { waitFor } from "../tests/helpers/deadline.ts";
import type { BenchBinding } from "./_broker.ts";
import { loadAverage, memory } from "./_proc.ts";
import { percentile } from "./_stats.ts";
import { pacedScript } from "./_workloads.ts";
import { type Arrivals, throwIfDisturbed } from "./pipeline.ts";

/** Noisy-neighbour results. */
export interface Fairness {
  /** Lines of the burst. */
  burstLines: number;
  /** The quiet container prints a line this often, ms. */
  quietEveryMs: number;
  /** Quiet lines received while the burst was read (from its first line to its last arrival). */
  quietDuring: number;
  /** Quiet lag (engine timestamp → consumer) during the burst, ms. */
  quietP50Ms: number;
  /** Same, 99th percentile. */
  quietP99Ms: number;
  /** Same, largest. */
  quietMaxMs: number;
  /** The burst's lines per second at the consumer. */
  burstLinesPerS: number;
  /** The machine's 1-minute load average as the burst's last line arrived. */
  loadAverage: number;
  /** Lines never received: burst and quiet. */
  lostBurst: number;
  /** Same, quiet container. */
  lostQuiet: number;
}

/** How long the burst may take to arrive. */
const ARRIVAL_TIMEOUT_MS = 180_000;
/** How long quiet lines may arrive after the quiet container stopped. */
const LATE_LINES_MS = 30_000;

/**
 * Starts a quiet container (one line every `quietEveryMs`), then beside it one that prints
 * `burstLines` lines at once; records the quiet lines' lag while the burst is read, and what
 * either lost.
 */
export async function noisyNeighbour(
  engine: DockerEngine,
  k: Karotten,
  binding: BenchBinding,
  arrivals: Arrivals,
  burstLines: number,
  quietEveryMs: number,
): Promise<Fairness> {
  const logged = k.lines.length;
  const quietSeen = new Set<number>();
  const quietLines: { tsMs: number; lagMs: number }[] = [];
  const burstSeen = new Uint8Array(burstLines + 1);
  let burstCount = 0;
  let burstFirstTs = Infinity;
  let burstFirstAt = Infinity;
  let burstLastAt = 0;
  arrivals.route((tag, seq, tsMs, receivedMs) => {
    if (tag === "q") {
      if (quietSeen.has(seq)) return;
      quietSeen.add(seq);
      quietLines.push({ tsMs, lagMs: receivedMs - tsMs });
    } else if (tag === "b" && seq >= 1 && seq <= burstLines && burstSeen[seq] === 0) {
      burstSeen[seq] = 1;
      burstCount++;
      burstFirstTs = Math.min(burstFirstTs, tsMs);
      burstFirstAt = Math.min(burstFirstAt, receivedMs);
      burstLastAt = Math.max(burstLastAt, receivedMs);
    }
  });
  const ids: string[] = [];
  try {
    const quiet = await engine.run(
      "--name",
      `quiet-${crypto.randomUUID().slice(0, 6)}`,
      TEST_IMAGE,
      "sh",
      "-c",
      pacedScript("q", 1_000_000, 1, quietEveryMs, 100),
    );
    ids.push(quiet);
    await waitFor(() => quietSeen.size >= 50, { timeoutMs: 30_000, what: "50 quiet lines" });
    ids.push(
      await engine.run(
        "--name",
        `burst-${crypto.randomUUID().slice(0, 6)}`,
        TEST_IMAGE,
        "sh",
        "-c",
        `seq 1 ${burstLines} | sed 's/^/fan b /; s/$/ xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx/'`,
      ),
    );
    // What has not arrived by the deadline is counted as lost.
    await untilOrDeadline(() => {
      throwIfDisturbed(k, logged, binding);
      return burstCount >= burstLines;
    }, ARRIVAL_TIMEOUT_MS);
    const load = loadAverage();
    await engine.docker("stop", "-t", "5", quiet);
    const written = quietWritten(await engine.docker("logs", quiet));
    await untilOrDeadline(() => quietSeen.size >= written, LATE_LINES_MS);
    throwIfDisturbed(k, logged, binding);
    const during = quietLines
      .filter((l) => l.tsMs >= burstFirstTs && l.tsMs <= burstLastAt)
      .map((l) => l.lagMs);
    return {
      burstLines,
      quietEveryMs,
      quietDuring: during.length,
      quietP50Ms: percentile(during, 50),
      quietP99Ms: percentile(during, 99),
      quietMaxMs: percentile(during, 100),
      burstLinesPerS: burstCount / ((burstLastAt - burstFirstAt) / 1000),
      loadAverage: load,
      lostBurst: burstLines - burstCount,
      lostQuiet: Math.max(0, written - quietSeen.size),
    };
  } finally {
    arrivals.route();
    if (ids.length > 0) await engine.docker("rm", "-f", ...ids);
  }
}

/** Waits until `cond()` holds or `ms` passed (then returns: the caller counts what is missing). */
async function untilOrDeadline(cond: () => boolean, ms: number): Promise<void> {
  const end = performance.now() + ms;
  while (!cond() && performance.now() < end) await delay(100);
}

/** Quiet lines in `docker logs` output (`fan q <n> …`). */
function quietWritten(logs: string): number {
  return logs.split("\n").filter((l) => l.startsWith("fan q ")).length;
}

/** karotten's memory with its buffer full of long lines. */
export interface LongLinesFull {
  /** Lines the container printed. */
  lines: number;
  /** Bytes of each. */
  lineBytes: number;
  /** Resident size, connected and idle, before the broker stopped, bytes. */
  idleRssBytes: number;
  /** Largest resident size sampled once reading had paused, bytes. */
  maxRssBytes: number;
  /** `VmHWM` before the broker came back, bytes. */
  hwmBytes: number;
}

/** How long resident memory is sampled once reading has paused. */
const SAMPLE_MS = 1_500;

/**
 * Stops the broker app, runs a container printing `lines` lines of `lineBytes` (more than the
 * byte budget holds), waits until karotten warns that the container lags (its buffer is full:
 * start karotten with a short `lagWarnMs`), samples memory. Always starts the broker app again.
 */
export async function longLinesFull(
  engine: DockerEngine,
  k: Karotten,
  lines: number,
  lineBytes: number,
): Promise<LongLinesFull> {
  const idleRssBytes = memory(k.pid).rssBytes;
  const seen = k.lines.length;
  let id: string | undefined;
  await rabbitStopApp();
  try {
    await waitFor(() => k.lines.slice(seen).some((l) => / amqp_disconnected /.test(l)), {
      timeoutMs: 30_000,
      what: "karotten to see the broker go",
    });
    id = await engine.run(
      "--name",
      `long-${crypto.randomUUID().slice(0, 6)}`,
      TEST_IMAGE,
      "sh",
      "-c",
      `i=1; while [ $i -le ${lines} ]; do p="$i "; printf '%s' "$p"; ` +
        `head -c $((${lineBytes - 1} - \${#p})) /dev/zero | tr '\\0' x; echo; i=$((i+1)); done`,
    );
    await engine.docker("wait", id);
    await waitFor(() => k.lines.slice(seen).some((l) => / warn lagging /.test(l)), {
      timeoutMs: 60_000,
      what: "karotten to warn of the lag (its buffer full)",
    });
    let maxRssBytes = 0;
    const until = performance.now() + SAMPLE_MS;
    while (performance.now() < until) {
      maxRssBytes = Math.max(maxRssBytes, memory(k.pid).rssBytes);
      await delay(50);
    }
    return { lines, lineBytes, idleRssBytes, maxRssBytes, hwmBytes: memory(k.pid).hwmBytes };
  } finally {
    await rabbitStartApp();
    if (id !== undefined) await engine.docker("rm", "-f", id);
  }
}
