/**
 * `deno task bench`: karotten against the physical limits of the two systems it sits between,
 * in one run, on a private dockerd and the real RabbitMQ (env `TEST_RABBITMQ_URL`, or
 * `amqp://guest:guest@127.0.0.1:5672`). Needs what the integration tests need: root, `dockerd`,
 * `busybox-static`, `rabbitmqctl` (it stops and restarts the broker app once).
 *
 * 1. raw Docker read rate · 2. raw broker ingest · 3. karotten end to end · 4. its CPU and
 * memory, with the buffer full of short and of 1 MiB lines · 5. fan-in lag and loss · 6. attach
 * latency · 7. fairness: a quiet container's lag beside a burst · 8. beside the peer
 * (`versus.ts`, with `KAROTTEN_BENCH_PEER`). Prints a table, writes
 * `bench/results.json` and `bench/results.svg`. `BENCH_LINES` changes N (default 200000).
 * `BENCH_PHASES=e2e,fairness` runs only those phases (names in `PHASE_NAMES`) and prints their
 * figures as JSON, writing no results file.
 * @module
 */
import { ConnectionPool } from "../lib/docker/conn.ts";
import { DockerClient } from "../lib/docker/api.ts";
import { httpGet } from "../lib/docker/http.ts";
import { type ContainerIdentity, identify } from "../lib/message.ts";
import { delay } from "../lib/async/delay.ts";
import { DockerEngine, TEST_IMAGE } from "../tests/helpers/dockerd.ts";
import { type Karotten, startKarotten } from "../tests/helpers/karotten.ts";
import { RABBIT_URL } from "../tests/helpers/rabbit.ts";
import { waitFor } from "../tests/helpers/deadline.ts";
import { BenchBinding, BrokerDisturbedError, durableExchange } from "./_broker.ts";
import { loadAverage, machine, otherDenoTests, pidsOf } from "./_proc.ts";
import { burstScript } from "./_workloads.ts";
import {
  bareShipper,
  publishLoop,
  type PublishRate,
  readLogs,
  type ReadRate,
  type ShipRate,
} from "./raw.ts";
import {
  Arrivals,
  type Attach,
  attachLatency,
  type EndToEnd,
  endToEnd,
  type FanIn,
  fanIn,
  type FullBuffer,
  fullBuffer,
} from "./pipeline.ts";
import { environment, type Results, svg, table, targets } from "./report.ts";
import { type Fairness, type LongLinesFull, longLinesFull, noisyNeighbour } from "./overflow.ts";
import { runVersus, type Versus, VERSUS_PARTS } from "./versus.ts";
import { versusChart, versusConditions, versusTable, versusTargets } from "./report_versus.ts";

/** N: lines per throughput run. */
const LINES = Number(Deno.env.get("BENCH_LINES") ?? 200_000);
/** Bytes per line, newline included. */
const LINE_BYTES = 100;
/** Lines of the warm-up runs (JIT, connections), not measured. */
const WARMUP_LINES = 20_000;
/** Reads of the raw log; the best counts (the limit). */
const RAW_READS = 3;
/** Full-buffer phase: lines and their size (more lines than the 8192-message buffer holds). */
const FULL_LINES = 10_000;
const FULL_LINE_BYTES = 1024;
/** Fan-in shape. */
const FAN_CONTAINERS = 50;
const FAN_LINES_PER_S = 200;
const FAN_SECONDS = 30;
/** Full buffer of long lines: lines and their size (8 times what the 8 MiB budget holds). */
const LONG_LINES = 64;
const LONG_LINE_BYTES = 1 << 20;
/** Fairness: the burst beside a quiet container printing a line every 10 ms. */
const FAIR_BURST_LINES = 100_000;
const FAIR_QUIET_EVERY_MS = 10;
/** Attach latency: containers. */
const ATTACH_CONTAINERS = 20;
/** Wait for karotten's `ready` and first AMQP connection. */
const START_TIMEOUT_MS = 30_000;

const OUT_DIR = new URL("./", import.meta.url);

/** The phases, as `BENCH_PHASES` names them. */
const PHASE_NAMES = [
  "raw",
  "broker",
  "shipper",
  "e2e",
  "attach",
  "fanin",
  "full",
  "long",
  "fairness",
  "versus",
  "versus-burst",
  "versus-strace",
  "versus-idle",
  "versus-fanin",
  "versus-soak",
] as const;
const phasesWanted = (Deno.env.get("BENCH_PHASES") ?? "").split(",").map((s) => s.trim())
  .filter((s) => s !== "");
for (const name of phasesWanted) {
  if (!(PHASE_NAMES as readonly string[]).includes(name)) {
    throw new Error(`BENCH_PHASES: unknown phase "${name}" (known: ${PHASE_NAMES.join(", ")})`);
  }
}
/** True when the phase runs: all do unless `BENCH_PHASES` names some. */
const want = (name: (typeof PHASE_NAMES)[number]) =>
  phasesWanted.length === 0 || phasesWanted.includes(name);

const t0 = performance.now();
const progress = (what: string) =>
  console.error(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${what}`);

/** Starts karotten on the engine and exchange, and waits until it is ready and connected. */
async function karotten(
  engine: DockerEngine,
  exchange: string,
  extra: Record<string, string> = {},
): Promise<Karotten> {
  const k = await startKarotten({
    RABBITMQ_URL: RABBIT_URL,
    DOCKER_SOCK: engine.sock,
    EXCHANGE: exchange,
    ...extra,
  });
  try {
    await k.waitForLog(/ info ready /, START_TIMEOUT_MS);
    await k.waitForLog(/ info amqp_connected /, START_TIMEOUT_MS);
  } catch (err) {
    await k.stop();
    throw err;
  }
  return k;
}

/** Runs of a phase that the broker disturbed (another test's alarm or bounce), at most. */
const PHASE_ATTEMPTS = 3;

/**
 * Runs a phase; when the shared broker was blocked or restarted meanwhile (`BrokerDisturbedError`),
 * waits until it accepts connections again and runs the whole phase again.
 */
async function phase<T>(what: string, f: () => Promise<T>): Promise<T> {
  for (let attempt = 1;; attempt++) {
    try {
      return await f();
    } catch (err) {
      if (!isBrokerTrouble(err) || attempt >= PHASE_ATTEMPTS) throw err;
      const why = err instanceof Error ? err.message : String(err);
      disturbances.push(`${what}: ${why}`);
      progress(`   ${what} disturbed (${why}); again when the broker is back`);
      await waitFor(brokerUp, { timeoutMs: 120_000, intervalMs: 1_000, what: "the broker" });
      await delay(BROKER_SETTLE_MS);
    }
  }
}

/** A `BrokerDisturbedError`, or amqplib's report of a connection the broker dropped or refused. */
function isBrokerTrouble(err: unknown): boolean {
  if (err instanceof BrokerDisturbedError) return true;
  const message = err instanceof Error ? err.message : "";
  return /ECONNRESET|ECONNREFUSED|Channel ended|Channel closed|Connection closed|CONNECTION_FORCED/
    .test(message);
}

/** Calm time after the broker came back before a phase is repeated. */
const BROKER_SETTLE_MS = 3_000;

/** Broker disturbances seen during the run (phases repeated). */
const disturbances: string[] = [];

/** True when the broker accepts a connection and a channel. */
async function brokerUp(): Promise<boolean> {
  try {
    const b = await BenchBinding.open(RABBIT_URL);
    await b.close();
    return true;
  } catch (err) {
    progress(`   broker not back yet: ${err instanceof Error ? err.message : String(err)}`);
    return false;
  }
}

/** Writes karotten's log of a phase to `bench/out/` (not committed) for a look afterwards. */
async function keepLog(name: string, k: Karotten): Promise<void> {
  await Deno.mkdir(new URL("out/", OUT_DIR), { recursive: true });
  await Deno.writeTextFile(new URL(`out/karotten-${name}.log`, OUT_DIR), k.lines.join("\n") + "\n");
}

/** Stops karotten; throws when it did not exit cleanly. */
async function stopKarotten(k: Karotten): Promise<void> {
  const code = await k.stop();
  if (code !== 0) {
    throw new Error(`karotten exited with ${code}; last lines:\n${k.lines.slice(-20).join("\n")}`);
  }
}

/** Longest `/version` answer read. */
const VERSION_MAX_BYTES = 64 * 1024;

async function engineVersion(
  pool: ConnectionPool,
): Promise<{ Version: string; ApiVersion: string }> {
  const res = await httpGet(pool, "/version", {
    signal: AbortSignal.timeout(10_000),
    headerTimeoutMs: 10_000,
  });
  return JSON.parse(await res.text(VERSION_MAX_BYTES));
}

/** The processes whose CPU each phase reports, by name. */
function watched(engine: DockerEngine): Record<string, number | undefined> {
  let containerd: number | undefined;
  try {
    containerd = Number(Deno.readTextFileSync(`${engine.dir}/exec/containerd/containerd.pid`));
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return {
    bench: Deno.pid,
    dockerd: engine.pid,
    containerd,
    rabbitmq: pidsOf("beam.smp")[0],
  };
}

/**
 * 2: the bare publish loop, after a warm-up, on its own binding: with karotten's message ids,
 * then without them (what the ids cost the broker).
 */
async function rawBrokerPhase(
  identity: ContainerIdentity,
  watch: Record<string, number | undefined>,
): Promise<{ withIds: PublishRate; withoutIds: PublishRate }> {
  const binding = await BenchBinding.open(RABBIT_URL);
  try {
    await publishLoop(binding, identity, WARMUP_LINES, LINE_BYTES - 1);
    await binding.purge();
    const run = async (ids: boolean) => {
      const rate = await publishLoop(binding, identity, LINES, LINE_BYTES - 1, watch, ids);
      const inQueue = await binding.count();
      if (inQueue !== LINES) throw new Error(`raw broker: the queue holds ${inQueue} of ${LINES}`);
      await binding.purge();
      return rate;
    };
    const withIds = await run(true);
    return { withIds, withoutIds: await run(false) };
  } finally {
    await binding.close();
  }
}

/** 3, for scale: the least a shipper can do in one process, after a warm-up. */
async function shipperPhase(
  engine: DockerEngine,
  docker: DockerClient,
  identity: ContainerIdentity,
  watch: Record<string, number | undefined>,
): Promise<ShipRate> {
  const binding = await BenchBinding.open(RABBIT_URL);
  const ids: string[] = [];
  try {
    let rate: ShipRate | undefined;
    for (const n of [WARMUP_LINES, LINES]) {
      const id = await engine.run(
        "--name",
        `ship-${crypto.randomUUID().slice(0, 8)}`,
        TEST_IMAGE,
        "sh",
        "-c",
        burstScript(n, LINE_BYTES, 600),
      );
      ids.push(id);
      rate = await bareShipper(docker, binding, id, identity, n, watch);
      await binding.purge();
    }
    return rate!;
  } finally {
    if (ids.length > 0) await engine.docker("rm", "-f", ...ids);
    await binding.close();
  }
}

/** 3 and 4: karotten with `OVERFLOW=pause` (a burst must not be dropped), after a warm-up. */
async function endToEndPhase(
  engine: DockerEngine,
  watch: Record<string, number | undefined>,
): Promise<EndToEnd> {
  const binding = await BenchBinding.open(RABBIT_URL);
  try {
    const k = await karotten(engine, binding.exchange, { OVERFLOW: "pause" });
    try {
      const tag = crypto.randomUUID().slice(0, 6);
      await endToEnd(engine, k, binding, WARMUP_LINES, LINE_BYTES, `e2e-warm-${tag}`);
      return await endToEnd(engine, k, binding, LINES, LINE_BYTES, `e2e-run-${tag}`, watch);
    } finally {
      await stopKarotten(k);
      await keepLog("end-to-end", k);
    }
  } finally {
    await binding.close();
  }
}

/** 6 or 5: karotten with its default settings, and a consumer that times each arrival. */
async function lagPhase<T>(
  engine: DockerEngine,
  name: string,
  f: (k: Karotten, binding: BenchBinding, arrivals: Arrivals) => Promise<T>,
): Promise<T> {
  const binding = await BenchBinding.open(RABBIT_URL);
  try {
    const arrivals = new Arrivals();
    await binding.consume(arrivals.onMessage);
    const k = await karotten(engine, binding.exchange);
    try {
      return await f(k, binding, arrivals);
    } finally {
      await stopKarotten(k);
      await keepLog(name, k);
    }
  } finally {
    await binding.close();
  }
}

/** 4: memory with a full buffer; the broker app is stopped for a few seconds. */
async function fullBufferPhase(engine: DockerEngine): Promise<FullBuffer> {
  const durable = await durableExchange(RABBIT_URL);
  try {
    // Dropping: the buffer holds its 8192 messages and reports the rest at once.
    const k = await karotten(engine, durable.exchange, {
      OVERFLOW: "drop",
      KAROTTEN_TUNING: JSON.stringify({ dropReportIntervalMs: 200 }),
    });
    try {
      return await fullBuffer(engine, k, FULL_LINES, FULL_LINE_BYTES);
    } finally {
      // It may be waiting out a reconnect backoff: its exit code does not matter here.
      await k.stop();
      await keepLog("full-buffer", k);
    }
  } finally {
    await durable.remove();
  }
}

/** 4: memory with the buffer full of 1 MiB lines (defaults; a short lag warning says "full"). */
async function longLinesPhase(engine: DockerEngine): Promise<LongLinesFull> {
  const durable = await durableExchange(RABBIT_URL);
  try {
    const k = await karotten(engine, durable.exchange, {
      KAROTTEN_TUNING: JSON.stringify({ lagWarnMs: 2_000 }),
    });
    try {
      return await longLinesFull(engine, k, LONG_LINES, LONG_LINE_BYTES);
    } finally {
      await k.stop();
      await keepLog("long-lines", k);
    }
  } finally {
    await durable.remove();
  }
}

/** The figures of a run of some phases only (`BENCH_PHASES`). */
type Partial = Record<string, unknown>;

/** When the run started, and the load average then. */
const runDate = new Date().toISOString();
const runLoad = loadAverage();

async function run(): Promise<Results | Partial> {
  const date = runDate;
  const loadBefore = runLoad;
  const otherTestsBefore = otherDenoTests().length;
  progress(`starting a private dockerd (load ${loadBefore}, other deno tests ${otherTestsBefore})`);
  const engine = await DockerEngine.start();
  const pool = new ConnectionPool(engine.sock, { maxIdle: 2, idleTimeoutMs: 60_000 });
  const docker = new DockerClient(pool, 15_000);
  try {
    const engineV = await engineVersion(pool);
    const rabbitmq = await phase("broker version", brokerVersion);

    const got: Partial = {};
    let identity: ContainerIdentity | undefined;
    let rawDocker: ReadRate | undefined;
    if (want("raw") || want("broker") || want("shipper")) {
      progress(`1. raw Docker: a container prints ${LINES} lines, then our client reads them`);
      const src = await engine.run(
        "--name",
        "raw-src",
        TEST_IMAGE,
        "sh",
        "-c",
        burstScript(LINES, LINE_BYTES),
      );
      await engine.docker("wait", src);
      for (let i = 0; i < RAW_READS; i++) {
        const r = await readLogs(pool, src, LINES);
        progress(`   read ${i + 1}: ${Math.round(r.lines / r.seconds)} lines/s`);
        if (rawDocker === undefined || r.seconds < rawDocker.seconds) rawDocker = r;
      }
      got.rawDocker = rawDocker;
      const info = await docker.inspect(src, AbortSignal.timeout(10_000));
      // The identity of the end-to-end container: same name length, same image, so same bodies.
      identity = identify(info.Id, "/e2e-run-000000", info.Config.Image, info.Config.Labels);
      await engine.docker("rm", "-f", src);
    }
    const { bench: _, ...others } = watched(engine);

    let broker: { withIds: PublishRate; withoutIds: PublishRate } | undefined;
    if (want("broker")) {
      progress(`2. raw broker: bare amqplib loop, ${WARMUP_LINES} warm-up + ${LINES} envelopes`);
      broker = await phase("raw broker", () => rawBrokerPhase(identity!, others));
      got.rawBroker = broker;
      progress(
        `   ${Math.round(LINES / broker.withIds.seconds)} msg/s; without message ids ` +
          `${Math.round(LINES / broker.withoutIds.seconds)} msg/s`,
      );
    }

    let shipper: ShipRate | undefined;
    if (want("shipper")) {
      progress("3. for scale: a bare shipper (our client + bare amqplib loop, one process)");
      shipper = await phase("bare shipper", () => shipperPhase(engine, docker, identity!, others));
      got.shipper = shipper;
      progress(`   ${Math.round((shipper.lines - shipper.before) / shipper.seconds)} lines/s`);
    }

    let e2e: EndToEnd | undefined;
    if (want("e2e")) {
      progress("3. end to end: karotten (OVERFLOW=pause) follows a container into the queue");
      e2e = await phase("end to end", () => endToEndPhase(engine, watched(engine)));
      got.endToEnd = e2e;
      progress(
        `   ${Math.round((e2e.lines - e2e.before) / e2e.seconds)} lines/s, ` +
          `${e2e.cpuUsPerLine.toFixed(1)} µs CPU/line`,
      );
    }

    let attach: Attach | undefined;
    if (want("attach")) {
      progress(`6. attach latency: ${ATTACH_CONTAINERS} containers, one after the other`);
      attach = await phase("attach", () =>
        lagPhase(
          engine,
          "attach",
          (k, binding, arrivals) =>
            attachLatency(engine, docker, k, binding, arrivals, ATTACH_CONTAINERS),
        ));
      got.attach = attach;
      progress(`   p50 ${attach.p50Ms.toFixed(0)} ms, p99 ${attach.p99Ms.toFixed(0)} ms`);
    }

    let fan: FanIn | undefined;
    if (want("fanin")) {
      progress(
        `5. fan-in: ${FAN_CONTAINERS} containers × ${FAN_LINES_PER_S} lines/s × ${FAN_SECONDS} s`,
      );
      fan = await phase(
        "fan-in",
        () =>
          lagPhase(engine, "fan-in", (k, binding, arrivals) =>
            fanIn(
              engine,
              docker,
              k,
              binding,
              arrivals,
              FAN_CONTAINERS,
              FAN_LINES_PER_S,
              FAN_SECONDS,
              LINE_BYTES,
              watched(engine),
            )),
      );
      got.fanIn = fan;
      progress(
        `   p50 ${fan.lagP50Ms.toFixed(0)} ms, p99 ${fan.lagP99Ms.toFixed(0)} ms, lost ${fan.lost}`,
      );
    }

    let fairness: Fairness | undefined;
    if (want("fairness")) {
      progress(
        `7. fairness: ${FAIR_BURST_LINES} lines at once beside a line every ${FAIR_QUIET_EVERY_MS} ms`,
      );
      fairness = await phase(
        "fairness",
        () =>
          lagPhase(engine, "fairness", (k, binding, arrivals) =>
            noisyNeighbour(
              engine,
              k,
              binding,
              arrivals,
              FAIR_BURST_LINES,
              FAIR_QUIET_EVERY_MS,
            )),
      );
      got.fairness = fairness;
      progress(
        `   quiet lag p50 ${fairness.quietP50Ms.toFixed(0)} ms, p99 ${
          fairness.quietP99Ms.toFixed(0)
        } ms; lost ${fairness.lostBurst} + ${fairness.lostQuiet}`,
      );
    }

    let full: FullBuffer | undefined;
    if (want("full")) {
      progress(`4. full buffer: broker stopped, ${FULL_LINES} lines of ${FULL_LINE_BYTES} bytes`);
      full = await fullBufferPhase(engine);
      got.fullBuffer = full;
      progress(`   VmHWM ${(full.hwmBytes / 1024 / 1024).toFixed(1)} MB`);
    }

    let long: LongLinesFull | undefined;
    if (want("long")) {
      progress(`4. full buffer: broker stopped, ${LONG_LINES} lines of ${LONG_LINE_BYTES} bytes`);
      long = await longLinesPhase(engine);
      got.longLines = long;
      progress(`   VmHWM ${(long.hwmBytes / 1024 / 1024).toFixed(1)} MB`);
    }

    const versusParts = VERSUS_PARTS.filter((p) => want("versus") || want(`versus-${p}`));
    let versus: Versus | undefined;
    if (versusParts.length > 0) {
      progress(`8. beside the peer: ${versusParts.join(", ")}`);
      versus = await runVersus(engine, docker, versusParts, progress);
      got.versus = versus;
    }

    if (phasesWanted.length > 0) return got;
    const deno = Deno.version;
    return {
      date,
      runSeconds: (performance.now() - t0) / 1000,
      machine: machine(),
      versions: {
        deno: deno.deno,
        v8: deno.v8,
        docker: engineV.Version,
        dockerApi: engineV.ApiVersion,
        rabbitmq,
      },
      load: {
        loadBefore,
        loadAfter: loadAverage(),
        otherTestsBefore,
        otherTestsAfter: otherDenoTests().length,
        disturbances,
      },
      lines: LINES,
      lineBytes: LINE_BYTES,
      rawDocker: rawDocker!,
      rawBroker: broker!.withIds,
      rawBrokerNoIds: broker!.withoutIds,
      shipper: shipper!,
      endToEnd: e2e!,
      fullBuffer: full!,
      longLines: long!,
      fanIn: fan!,
      attach: attach!,
      fairness: fairness!,
      versus,
    };
  } finally {
    pool.clear();
    await engine.stop();
  }
}

async function brokerVersion(): Promise<string> {
  const b = await BenchBinding.open(RABBIT_URL);
  try {
    return b.version;
  } finally {
    await b.close();
  }
}

if (import.meta.main) {
  const ran = await run();
  if (phasesWanted.length > 0) {
    console.log(JSON.stringify(ran, null, 2));
    const v = (ran as Partial).versus as Versus | undefined;
    if (v !== undefined) {
      printVersus(v);
      await writeVersus(v);
    }
    Deno.exit(0);
  }
  const results = ran as Results;
  const tg = [...targets(results), ...(results.versus ? versusTargets(results.versus) : [])];
  console.log(environment(results).join("\n"));
  console.log();
  console.log(table(results));
  console.log();
  if (results.versus) {
    printVersus(results.versus);
    await writeVersus(results.versus);
  }
  const missed = tg.filter((t) => !t.holds);
  console.log(
    missed.length === 0
      ? `all ${tg.length} targets hold`
      : `${tg.length - missed.length} of ${tg.length} targets hold; missed: ${
        missed.map((t) => t.name).join("; ")
      }`,
  );
  await Deno.writeTextFile(
    new URL("results.json", OUT_DIR),
    JSON.stringify({ ...results, targets: tg }, null, 2) + "\n",
  );
  await Deno.writeTextFile(new URL("results.svg", OUT_DIR), svg(results));
  console.error(`wrote bench/results.json and bench/results.svg`);
}

/**
 * Writes `bench/versus.json` (with the run's date, machine, versions and load) and
 * `bench/versus.svg`: this part also runs alone (`BENCH_PHASES=versus`), and its figures are
 * kept apart from `results.json`, whose other phases it does not repeat.
 */
async function writeVersus(v: Versus): Promise<void> {
  const deno = Deno.version;
  const run = {
    date: runDate,
    machine: machine(),
    versions: { deno: deno.deno, v8: deno.v8 },
    load: { loadBefore: runLoad, loadAfter: loadAverage() },
  };
  await Deno.writeTextFile(
    new URL("versus.json", OUT_DIR),
    JSON.stringify({ ...run, ...v, targets: versusTargets(v) }, null, 2) + "\n",
  );
  await Deno.writeTextFile(new URL("versus.svg", OUT_DIR), versusChart(v, run.date, run.machine));
  console.error("wrote bench/versus.json and bench/versus.svg");
}

/** Prints the side-by-side table, its conditions and its targets. */
function printVersus(v: Versus): void {
  console.log(versusConditions(v).join("\n"));
  console.log();
  console.log(versusTable(v));
  console.log();
  for (const t of versusTargets(v)) {
    const op = t.op === ">=" ? "≥" : "≤";
    console.log(
      `${t.holds ? "holds" : "MISSED"}: ${t.name}: ${t.value.toFixed(2)} ${op} ${
        t.limit.toFixed(2)
      } ${t.unit}`,
    );
  }
  console.log();
}
