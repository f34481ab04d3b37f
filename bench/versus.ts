/**
 * karotten beside the performance peer (`KAROTTEN_BENCH_PEER`: a build of the seed's design), in
 * the same run, on the same private engine and broker, one after the other on each workload:
 * a 200,000-line burst (lines/s, CPU per line, peak RSS), system calls per published line
 * (`strace -f -c` over a short burst), idle RSS, 300 idle containers attached (RSS, CPU while
 * idle), fan-in lag and loss, and a churn soak (RSS slope after warm-up). The peer runs twice:
 * as the seed ships it, and with `CONFIRMS=1 OVERFLOW=pause` (karotten's guarantees). Without
 * `KAROTTEN_BENCH_PEER` karotten runs alone and one line says so. karotten runs from the bundle
 * that `deno task compile` compiles (`tools/bundle.ts`), built for the run: the stand-in for the
 * compiled binary (`BENCH_FROM_MAIN=1` runs `main.ts` instead), its modules analysed into Deno's
 * cache before the daemon starts (`analyseModules`).
 * @module
 */
import { delay } from "../lib/async/delay.ts";
import type { DockerClient } from "../lib/docker/api.ts";
import { type DockerEngine, TEST_IMAGE } from "../tests/helpers/dockerd.ts";
import { type Karotten, REPO_ROOT, spawnDaemon, startKarotten } from "../tests/helpers/karotten.ts";
import { RABBIT_URL } from "../tests/helpers/rabbit.ts";
import { BenchBinding } from "./_broker.ts";
import {
  cpuSeconds,
  loadAverage,
  memory,
  residentSplit,
  threadCpuSeconds,
  threadRunNanos,
} from "./_proc.ts";
import { burstScript, pacedScript } from "./_workloads.ts";
import { Arrivals, fanIn, throwIfDisturbed } from "./pipeline.ts";
import { MEASURE_TIMEOUT_MS } from "./raw.ts";
import { analyseModules, bundleDaemon } from "../tools/bundle.ts";

/**
 * The daemons compared: `karotten`, `peer` (as the seed ships it), `peerSafe` (with karotten's
 * guarantees), or a variant of karotten's runtime settings (`variants.ts`).
 */
export type ContenderName = string;

/** The parts of the comparison, as `BENCH_PHASES` names them (`versus-burst`, …). */
export const VERSUS_PARTS = ["burst", "strace", "idle", "fanin", "soak"] as const;
/** One part. */
export type VersusPart = (typeof VERSUS_PARTS)[number];

const env = (name: string, fallback: number) => Number(Deno.env.get(name) ?? fallback);

/** Lines of the burst (`BENCH_LINES`) and of its warm-up. */
const BURST_LINES = env("BENCH_LINES", 200_000);
const WARMUP_LINES = 20_000;
/** Bytes per line, newline included. */
const LINE_BYTES = 100;
/** Lines of the burst counted under `strace`. */
const STRACE_LINES = env("BENCH_STRACE_LINES", 20_000);
/** The burst container waits this long before it prints, and runs this long after. */
const BURST_DELAY_S = 1;
const BURST_HOLD_S = 600;
/** A burst ends when the queue stops growing this long (a daemon that drops never fills it). */
const STALL_MS = 5_000;
/** Idle containers attached at once. */
const IDLE_CONTAINERS = env("BENCH_IDLE_CONTAINERS", 300);
/**
 * At rest: after start or the last attach, this long before memory is read and the CPU window
 * starts (`BENCH_IDLE_SETTLE_S`). Long enough for the runtime's own settling to be over: V8's
 * memory reducer runs its collections about 15 and 30 s after the last burst of allocations
 * (the attaches), and frees heap pages with them.
 */
const IDLE_SETTLE_S = env("BENCH_IDLE_SETTLE_S", 40);
/**
 * CPU while idle is measured over this long (`BENCH_IDLE_CPU_S`): a minute holds every periodic
 * task of either daemon (pings, karotten's listing and stats line) at least once.
 */
const IDLE_CPU_S = env("BENCH_IDLE_CPU_S", 60);
/** Fan-in: containers, lines/s each, seconds. */
const FAN_CONTAINERS = env("BENCH_FAN_CONTAINERS", 50);
const FAN_RATE = env("BENCH_FAN_RATE", 100);
const FAN_SECONDS = env("BENCH_FAN_SECONDS", 20);
/** Soak: minutes per daemon, warm-up not counted in the slope, steady writers, churn period. */
const SOAK_MIN = env("BENCH_SOAK_MIN", 3);
/** The daemon's RSS ramps for ~3 minutes after start (binary pages, heap sizing): not a leak. */
const SOAK_WARMUP_MIN = env("BENCH_SOAK_WARMUP_MIN", Math.min(5, SOAK_MIN / 3));
const SOAK_WRITERS = 3;
const SOAK_CHURN_MS = 500;
const SOAK_SAMPLE_MS = 5_000;
/** The soak's memory breakdown (`SOAK_SERIES`) is read this often. */
const SOAK_DETAIL_MS = 30_000;
/** Wait for a daemon to be ready and connected. */
const START_TIMEOUT_MS = 30_000;
/** Containers started at once by the CLI. */
const START_CONCURRENCY = 8;

/** Where the run's bundle of karotten is written (relative to the repo root). */
const KAROTTEN_BUNDLE = "bench/out/karotten.js";

/** A daemon to compare. */
export interface Contender {
  name: ContenderName;
  /**
   * Started on the engine, publishing to `exchange`, with `env` added to its environment;
   * resolves once ready and connected.
   */
  start(engine: DockerEngine, exchange: string, env?: Record<string, string>): Promise<Karotten>;
  /** The log line it prints for each container it attaches. */
  attached: RegExp;
  /** It serves `/metrics` with karotten's memory series when given `METRICS_ADDR`. */
  metrics?: boolean;
}

/** The contenders of this run: karotten, then the peer twice when `peer` names its binary. */
function contenders(peer: string | undefined, script: string): Contender[] {
  const karotten: Contender = {
    name: "karotten",
    attached: / info attached /,
    metrics: true,
    start: async (engine, exchange, env = {}) => {
      const k = await startKarotten({
        RABBITMQ_URL: RABBIT_URL,
        DOCKER_SOCK: engine.sock,
        EXCHANGE: exchange,
        ...env,
      }, script);
      await ready(k, [/ info ready /, / info amqp_connected /]);
      return k;
    },
  };
  if (peer === undefined) return [karotten];
  const peerWith = (name: ContenderName, extra: Record<string, string>): Contender => ({
    name,
    attached: / attached \S+ \(/,
    start: async (engine, exchange) => {
      const k = spawnDaemon(peer, [], {
        RABBITMQ_URL: RABBIT_URL,
        DOCKER_SOCK: engine.sock,
        EXCHANGE: exchange,
        ...extra,
      });
      await ready(k, [/amqp: connected/]);
      return k;
    },
  });
  return [
    karotten,
    peerWith("peerSafe", { CONFIRMS: "1", OVERFLOW: "pause" }),
    peerWith("peer", {}),
  ];
}

async function ready(k: Karotten, lines: RegExp[]): Promise<void> {
  try {
    for (const re of lines) await k.waitForLog(re, START_TIMEOUT_MS);
  } catch (err) {
    await k.stop();
    throw err;
  }
}

/** A burst through one daemon. */
export interface VersusBurst {
  /** Lines the container printed. */
  lines: number;
  /** Lines that reached the queue. */
  delivered: number;
  /** From the first message in the queue to the last, lines/s. */
  linesPerS: number;
  /** The daemon's user+sys CPU per delivered line, µs. */
  cpuUsPerLine: number;
  /** `VmHWM` at the end (warm-up included), bytes. */
  hwmBytes: number;
  /** 1-minute load average when it started. */
  load: number;
}

/** System calls of one daemon over a short burst. */
export interface VersusSyscalls {
  /** Lines that reached the queue. */
  delivered: number;
  /** All system calls, per delivered line. */
  perLine: number;
  /** `write`, `writev`, `sendto`, `sendmsg` per delivered line. */
  writesPerLine: number;
  /** `read`, `readv`, `recvfrom`, `recvmsg` per delivered line. */
  readsPerLine: number;
  /** The most frequent calls, by name, per delivered line. */
  top: Record<string, number>;
  /** 1-minute load average when it started. */
  load: number;
}

/** One daemon at rest. */
export interface VersusIdle {
  /** `VmRSS` with no container, after the settle, bytes. */
  idleRssBytes: number;
  /** Containers attached in the second measure. */
  containers: number;
  /** `VmRSS` with them attached and quiet, after the settle (the larger of the window's ends). */
  attachedRssBytes: number;
  /** CPU while they are quiet (threads' run times over the window), % of one core. */
  attachedCpuPct: number;
  /** 1-minute load average when it started. */
  load: number;
}

/** Fan-in through one daemon. */
export interface VersusFanIn {
  /** Engine timestamp → consumer, ms. */
  lagP50Ms: number;
  /** Same, 99th percentile. */
  lagP99Ms: number;
  /** Lines never received. */
  lost: number;
  /** The daemon's CPU per received line, µs. */
  cpuUsPerLine: number;
  /** Largest `VmRSS` sampled, bytes. */
  maxRssBytes: number;
  /** 1-minute load average when it started. */
  load: number;
}

/**
 * The soak's memory series: resident memory (`rss`) split into `anon` and `file` (from `/proc`),
 * and, for a daemon that serves `/metrics`, its JS heap in use and reserved and its external
 * memory.
 */
export const SOAK_SERIES = ["rss", "anon", "file", "heapUsed", "heapTotal", "external"] as const;
/** One of them. */
export type SoakSeriesName = (typeof SOAK_SERIES)[number];

/** One memory series of a soak, after the warm-up. */
export interface SoakSeries {
  /** The first sample after the warm-up, bytes. */
  afterWarmupBytes: number;
  /** The last sample, bytes. */
  endBytes: number;
  /** Least-squares slope, MiB per minute. */
  slopeMiBPerMin: number;
}

/** A churn soak through one daemon. */
export interface VersusSoak {
  /** Length, minutes. */
  minutes: number;
  /** Short-lived containers started. */
  churned: number;
  /** `VmRSS` at the end of the warm-up and at the end, bytes. */
  rssAfterWarmupBytes: number;
  /** `VmRSS` at the end, bytes. */
  rssEndBytes: number;
  /** Least-squares slope of `VmRSS` after the warm-up, MiB per minute. */
  slopeMiBPerMin: number;
  /** The memory series sampled every 30 s (absent in older runs). */
  series?: Partial<Record<SoakSeriesName, SoakSeries>>;
  /**
   * Every sample of them, warm-up included: minutes since the start, then MiB of each series
   * in `SOAK_SERIES` order (`null` where not read).
   */
  trace?: (number | null)[][];
  /** 1-minute load average when it started. */
  load: number;
}

/** Everything the comparison measured, by daemon. */
export interface Versus {
  /** The peer's file name, or null when it was skipped. */
  peer: string | null;
  /** The daemons compared, in the order they ran. */
  contenders: ContenderName[];
  /** Lines of the burst, of the strace burst, bytes per line. */
  burstLines: number;
  straceLines: number;
  lineBytes: number;
  /** At rest: settle before memory and CPU are read, CPU window, seconds (absent in older runs). */
  idleShape?: { settleS: number; cpuWindowS: number };
  /** Fan-in shape. */
  fan: { containers: number; ratePerContainer: number; seconds: number };
  /** Soak shape. */
  soak: { minutes: number; warmupMinutes: number; writers: number; churnMs: number };
  burst?: Partial<Record<ContenderName, VersusBurst>>;
  syscalls?: Partial<Record<ContenderName, VersusSyscalls>>;
  idle?: Partial<Record<ContenderName, VersusIdle>>;
  fanIn?: Partial<Record<ContenderName, VersusFanIn>>;
  soakRuns?: Partial<Record<ContenderName, VersusSoak>>;
}

/**
 * Runs the parts asked for, each on every contender in turn (by default karotten and, with
 * `KAROTTEN_BENCH_PEER`, the peer twice); progress goes to `progress`.
 */
export async function runVersus(
  engine: DockerEngine,
  docker: DockerClient,
  parts: readonly VersusPart[],
  progress: (what: string) => void,
  only?: readonly Contender[],
): Promise<Versus> {
  const peer = Deno.env.get("KAROTTEN_BENCH_PEER") || undefined;
  if (peer === undefined && only === undefined) {
    progress("versus: KAROTTEN_BENCH_PEER is not set: the Go peer is skipped, karotten runs alone");
  }
  let script = "main.ts";
  if (only === undefined && Deno.env.get("BENCH_FROM_MAIN") !== "1") {
    await bundleDaemon(KAROTTEN_BUNDLE, REPO_ROOT, Deno.execPath());
    script = KAROTTEN_BUNDLE;
  }
  if (only === undefined) await analyseModules(script, REPO_ROOT);
  progress(`versus: karotten runs from ${script}`);
  const all = only ?? contenders(peer, script);
  const v: Versus = {
    peer: peer === undefined || only !== undefined ? null : peer.split("/").at(-1)!,
    contenders: all.map((c) => c.name),
    burstLines: BURST_LINES,
    straceLines: STRACE_LINES,
    lineBytes: LINE_BYTES,
    idleShape: { settleS: IDLE_SETTLE_S, cpuWindowS: IDLE_CPU_S },
    fan: { containers: FAN_CONTAINERS, ratePerContainer: FAN_RATE, seconds: FAN_SECONDS },
    soak: {
      minutes: SOAK_MIN,
      warmupMinutes: SOAK_WARMUP_MIN,
      writers: SOAK_WRITERS,
      churnMs: SOAK_CHURN_MS,
    },
  };
  const each = async <T>(part: string, f: (c: Contender) => Promise<T>) => {
    const out: Partial<Record<ContenderName, T>> = {};
    for (const c of all) {
      progress(`versus ${part}: ${c.name} (load ${loadAverage()})`);
      out[c.name] = await f(c);
      progress(`   ${JSON.stringify(out[c.name])}`);
    }
    return out;
  };
  if (parts.includes("burst")) v.burst = await each("burst", (c) => burst(engine, c));
  if (parts.includes("strace")) v.syscalls = await each("strace", (c) => syscalls(engine, c));
  if (parts.includes("idle")) {
    const idle = await each("idle", (c) => idleRss(engine, c));
    const ids = await startMany(engine, IDLE_CONTAINERS, (i) => [
      "--name",
      `idle-${i}`,
      TEST_IMAGE,
      "sh",
      "-c",
      `trap "exit 0" TERM; sleep 86400 & wait`,
    ]);
    try {
      const attached = await each("300 idle", (c) => idleAttached(engine, c, ids.length));
      v.idle = {};
      for (const c of all) v.idle[c.name] = { ...idle[c.name]!, ...attached[c.name]! };
    } finally {
      await removeAll(engine, ids);
    }
  }
  if (parts.includes("fanin")) v.fanIn = await each("fan-in", (c) => fan(engine, docker, c));
  if (parts.includes("soak")) v.soakRuns = await each("soak", (c) => soak(engine, c));
  return v;
}

/** A binding and a started daemon for `f`; both closed afterwards. */
async function withDaemon<T>(
  engine: DockerEngine,
  c: Contender,
  f: (k: Karotten, binding: BenchBinding) => Promise<T>,
): Promise<T> {
  const binding = await BenchBinding.open(RABBIT_URL);
  try {
    const k = await c.start(engine, binding.exchange);
    try {
      return await f(k, binding);
    } finally {
      await k.stop();
    }
  } finally {
    await binding.close();
  }
}

/**
 * Runs a container printing `n` lines and polls the queue until it holds `n` or stops growing
 * for `STALL_MS`. Returns the lines delivered, the rate between the first and the last seen,
 * and the daemon's CPU over the burst. Removes the container and empties the queue.
 */
async function burstOnce(
  engine: DockerEngine,
  k: Karotten,
  binding: BenchBinding,
  n: number,
  name: string,
): Promise<{ delivered: number; linesPerS: number; cpuSeconds: number }> {
  const cpu0 = cpuSeconds(k.pid);
  const run = performance.now();
  // A second before the burst: both daemons attach first (the peer's attach loses earlier lines).
  const script = `sleep ${BURST_DELAY_S}; ${burstScript(n, LINE_BYTES, BURST_HOLD_S)}`;
  const id = await engine.run("--name", name, TEST_IMAGE, "sh", "-c", script);
  let first: { at: number; count: number } | undefined;
  let last = { at: run, count: 0 };
  try {
    for (;;) {
      const count = await binding.count();
      const at = performance.now();
      if (count > 0 && first === undefined) first = { at, count };
      if (count > last.count) last = { at, count };
      if (count >= n) break;
      if (first !== undefined && at - last.at > STALL_MS) break;
      if (at - run > MEASURE_TIMEOUT_MS) break;
      await delay(20);
    }
    const cpu = cpuSeconds(k.pid) - cpu0;
    const span = first === undefined ? 0 : (last.at - first.at) / 1000;
    return {
      delivered: last.count,
      linesPerS: span > 0 ? (last.count - first!.count) / span : 0,
      cpuSeconds: cpu,
    };
  } finally {
    await engine.docker("rm", "-f", id);
    await binding.purge();
  }
}

async function burst(engine: DockerEngine, c: Contender): Promise<VersusBurst> {
  const load = loadAverage();
  return await withDaemon(engine, c, async (k, binding) => {
    const tag = crypto.randomUUID().slice(0, 6);
    await burstOnce(engine, k, binding, WARMUP_LINES, `e2e-warm-${tag}`);
    const r = await burstOnce(engine, k, binding, BURST_LINES, `e2e-run-${tag}`);
    return {
      lines: BURST_LINES,
      delivered: r.delivered,
      linesPerS: r.linesPerS,
      cpuUsPerLine: r.cpuSeconds / Math.max(1, r.delivered) * 1e6,
      hwmBytes: memory(k.pid).hwmBytes,
      load,
    };
  });
}

/** Names of the calls that write to or read from a socket or pipe. */
const WRITES = new Set(["write", "writev", "sendto", "sendmsg", "sendmmsg"]);
const READS = new Set(["read", "readv", "recvfrom", "recvmsg", "recvmmsg"]);

/** Calls by name from `strace -c` output (strace 6: `% time seconds usecs/call calls errors syscall`). */
export function parseStraceSummary(text: string): Map<string, number> {
  const calls = new Map<string, number>();
  for (const line of text.split("\n")) {
    const t = line.trim().split(/\s+/);
    if (t.length < 5 || !/^\d+\.\d+$/.test(t[0])) continue;
    const name = t[t.length - 1];
    if (name === "total") continue;
    calls.set(name, Number(t[3]));
  }
  return calls;
}

async function syscalls(engine: DockerEngine, c: Contender): Promise<VersusSyscalls> {
  const load = loadAverage();
  return await withDaemon(engine, c, async (k, binding) => {
    const tag = crypto.randomUUID().slice(0, 6);
    await burstOnce(engine, k, binding, WARMUP_LINES, `e2e-warm-${tag}`);
    const out = await Deno.makeTempFile({ prefix: "kt-strace." });
    const strace = new Deno.Command("strace", {
      args: ["-f", "-c", "-o", out, "-p", String(k.pid)],
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      await delay(500); // attached to every thread
      const r = await burstOnce(engine, k, binding, STRACE_LINES, `e2e-run-${tag}`);
      strace.kill("SIGINT");
      await strace.status;
      const calls = parseStraceSummary(await Deno.readTextFile(out));
      const per = (n: number) => n / Math.max(1, r.delivered);
      let total = 0, writes = 0, reads = 0;
      for (const [name, n] of calls) {
        total += n;
        if (WRITES.has(name)) writes += n;
        if (READS.has(name)) reads += n;
      }
      const top = [...calls].sort((a, b) => b[1] - a[1]).slice(0, 6);
      return {
        delivered: r.delivered,
        perLine: per(total),
        writesPerLine: per(writes),
        readsPerLine: per(reads),
        top: Object.fromEntries(top.map(([name, n]) => [name, Number(per(n).toFixed(3))])),
        load,
      };
    } finally {
      try {
        strace.kill("SIGKILL");
      } catch {
        // exited already
      }
      await strace.status;
      await Deno.remove(out);
    }
  });
}

async function idleRss(
  engine: DockerEngine,
  c: Contender,
): Promise<Pick<VersusIdle, "idleRssBytes" | "load">> {
  const load = loadAverage();
  return await withDaemon(engine, c, async (k) => {
    await delay(IDLE_SETTLE_S * 1000);
    return { idleRssBytes: memory(k.pid).rssBytes, load };
  });
}

async function idleAttached(
  engine: DockerEngine,
  c: Contender,
  containers: number,
): Promise<Omit<VersusIdle, "idleRssBytes" | "load">> {
  return await withDaemon(engine, c, async (k) => {
    const deadline = performance.now() + 180_000;
    while (k.lines.filter((l) => c.attached.test(l)).length < containers) {
      if (performance.now() > deadline) {
        throw new Error(`${c.name} attached ${k.lines.filter((l) => c.attached.test(l)).length}`);
      }
      await delay(250);
    }
    await delay(IDLE_SETTLE_S * 1000);
    const rss = memory(k.pid).rssBytes;
    // Thread run times, not clock ticks: a quiet daemon uses a few ms a minute, under one tick.
    const cpu0 = threadRunNanos(k.pid);
    const t0 = performance.now();
    await delay(IDLE_CPU_S * 1000);
    const cpu = threadCpuSeconds(cpu0, threadRunNanos(k.pid));
    const wall = (performance.now() - t0) / 1000;
    return {
      containers,
      attachedRssBytes: Math.max(rss, memory(k.pid).rssBytes),
      attachedCpuPct: cpu / wall * 100,
    };
  });
}

async function fan(
  engine: DockerEngine,
  docker: DockerClient,
  c: Contender,
): Promise<VersusFanIn> {
  const load = loadAverage();
  const binding = await BenchBinding.open(RABBIT_URL);
  try {
    const arrivals = new Arrivals();
    await binding.consume(arrivals.onMessage);
    const k = await c.start(engine, binding.exchange);
    try {
      const f = await fanIn(
        engine,
        docker,
        k,
        binding,
        arrivals,
        FAN_CONTAINERS,
        FAN_RATE,
        FAN_SECONDS,
        LINE_BYTES,
      );
      return {
        lagP50Ms: f.lagP50Ms,
        lagP99Ms: f.lagP99Ms,
        lost: f.lost,
        cpuUsPerLine: f.cpuUsPerLine,
        maxRssBytes: f.maxRssBytes,
        load,
      };
    } finally {
      await k.stop();
    }
  } finally {
    await binding.close();
  }
}

/** Least-squares slope of `ys` over `xs`. */
export function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  if (n < 2) return NaN;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0, den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return num / den;
}

/** A free TCP port on the loopback. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** The JS heap and external memory from karotten's `/metrics` at `base`, bytes. */
async function scrapeMemory(
  base: string,
): Promise<Pick<Record<SoakSeriesName, number>, "heapUsed" | "heapTotal" | "external">> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const value = (name: string): number => {
    const m = text.match(new RegExp(`^${name} (\\S+)$`, "m"));
    if (!m) throw new Error(`${name} is not in ${base}/metrics`);
    return Number(m[1]);
  };
  return {
    heapUsed: value("karotten_js_heap_used_bytes"),
    heapTotal: value("karotten_js_heap_total_bytes"),
    external: value("karotten_js_external_memory_bytes"),
  };
}

/** One reading of the soak's memory series, bytes (the heap ones only with `metricsBase`). */
async function soakSample(
  pid: number,
  metricsBase: string | undefined,
): Promise<Partial<Record<SoakSeriesName, number>>> {
  const split = residentSplit(pid);
  return {
    rss: split.rssBytes,
    anon: split.anonBytes,
    file: split.fileBytes,
    ...(metricsBase === undefined ? {} : await scrapeMemory(metricsBase)),
  };
}

/** Each series' first and last value and slope over the samples after the warm-up. */
function soakSeries(
  samples: { min: number; bytes: Partial<Record<SoakSeriesName, number>> }[],
): Partial<Record<SoakSeriesName, SoakSeries>> {
  const out: Partial<Record<SoakSeriesName, SoakSeries>> = {};
  const after = samples.filter((s) => s.min >= SOAK_WARMUP_MIN);
  for (const name of SOAK_SERIES) {
    const got = after.filter((s) => s.bytes[name] !== undefined);
    if (got.length === 0) continue;
    out[name] = {
      afterWarmupBytes: got[0].bytes[name]!,
      endBytes: got.at(-1)!.bytes[name]!,
      slopeMiBPerMin: slope(got.map((s) => s.min), got.map((s) => s.bytes[name]! / 2 ** 20)),
    };
  }
  return out;
}

async function soak(engine: DockerEngine, c: Contender): Promise<VersusSoak> {
  const load = loadAverage();
  const binding = await BenchBinding.open(RABBIT_URL);
  try {
    await binding.consume(() => {});
    const port = c.metrics ? freePort() : undefined;
    const metricsBase = port === undefined ? undefined : `http://127.0.0.1:${port}`;
    const k = await c.start(
      engine,
      binding.exchange,
      port === undefined ? {} : { METRICS_ADDR: `127.0.0.1:${port}` },
    );
    const writers: string[] = [];
    const inFlight = new Set<Promise<unknown>>();
    let churned = 0;
    let failed = 0;
    try {
      const seconds = Math.ceil(SOAK_MIN * 60);
      for (let i = 0; i < SOAK_WRITERS; i++) {
        writers.push(
          await engine.run(
            "--name",
            `steady-${i}`,
            TEST_IMAGE,
            "sh",
            "-c",
            pacedScript(`s${i}`, seconds * 10 + 100, 1, 100, LINE_BYTES),
          ),
        );
      }
      const t0 = performance.now();
      const end = t0 + SOAK_MIN * 60_000;
      const xs: number[] = [];
      const ys: number[] = [];
      let nextSample = t0;
      let nextDetail = t0;
      const details: { min: number; bytes: Partial<Record<SoakSeriesName, number>> }[] = [];
      let rssAfterWarmup = NaN;
      for (let i = 0;; i++) {
        const now = performance.now();
        if (now >= end) break;
        if (now >= nextSample) {
          // A broker restart takes the soak's exchange (not durable) with it: the daemon then
          // buffers, holds every container's tail at the full buffer and retries for good, which
          // is another workload, growing by the tails held.
          throwIfDisturbed(k, 0, binding);
          const min = (now - t0) / 60_000;
          const mib = memory(k.pid).rssBytes / 2 ** 20;
          if (min >= SOAK_WARMUP_MIN) {
            if (xs.length === 0) rssAfterWarmup = mib;
            xs.push(min);
            ys.push(mib);
          }
          nextSample += SOAK_SAMPLE_MS;
        }
        if (now >= nextDetail) {
          details.push({ min: (now - t0) / 60_000, bytes: await soakSample(k.pid, metricsBase) });
          nextDetail += SOAK_DETAIL_MS;
        }
        if (inFlight.size < 4) {
          const p = engine.run("--rm", TEST_IMAGE, "sh", "-c", `echo churn ${i}`)
            .then(() => churned++, () => failed++)
            .finally(() => inFlight.delete(p));
          inFlight.add(p);
        }
        await delay(Math.max(0, t0 + (i + 1) * SOAK_CHURN_MS - performance.now()));
      }
      await Promise.all(inFlight);
      if (failed > churned) throw new Error(`soak: ${failed} of ${failed + churned} runs failed`);
      return {
        minutes: SOAK_MIN,
        churned,
        rssAfterWarmupBytes: rssAfterWarmup * 2 ** 20,
        rssEndBytes: memory(k.pid).rssBytes,
        slopeMiBPerMin: slope(xs, ys),
        series: soakSeries(details),
        trace: details.map((d) => [
          round2(d.min),
          ...SOAK_SERIES.map((n) =>
            d.bytes[n] === undefined ? null : round2(d.bytes[n]! / 2 ** 20)
          ),
        ]),
        load,
      };
    } finally {
      await Promise.all(inFlight);
      await k.stop();
      if (writers.length > 0) await removeAll(engine, writers);
    }
  } finally {
    await binding.close();
  }
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

/** Starts `count` containers, a few at a time, with the `docker run` arguments `args(i)`. */
async function startMany(
  engine: DockerEngine,
  count: number,
  args: (i: number) => string[],
): Promise<string[]> {
  const ids: string[] = [];
  try {
    for (let i = 0; i < count; i += START_CONCURRENCY) {
      const batch = [];
      for (let j = i; j < Math.min(count, i + START_CONCURRENCY); j++) {
        batch.push(engine.run(...args(j)));
      }
      ids.push(...await Promise.all(batch));
    }
  } catch (err) {
    await removeAll(engine, ids);
    throw err;
  }
  return ids;
}

/** Removes containers, many per CLI call. */
async function removeAll(engine: DockerEngine, ids: readonly string[]): Promise<void> {
  for (let i = 0; i < ids.length; i += 50) {
    await engine.docker("rm", "-f", ...ids.slice(i, i + 50));
  }
}
