/**
 * The daemon's lifetime: builds the parts, runs them until a signal or a fatal condition, then
 * stops them in order (readers, draining the buffer, publisher, the rest).
 * @module
 */
import { describe, ExchangeMissingError, isAbort } from "./errors.ts";
import { type Config, redactUrl } from "./config.ts";
import type { Logger } from "./log.ts";
import { ConnectionPool } from "./docker/conn.ts";
import { DockerClient } from "./docker/api.ts";
import { MessageQueue } from "./queue.ts";
import { Publisher } from "./amqp/publisher.ts";
import { startDropReporter } from "./drop_report.ts";
import { Supervisor } from "./supervisor/containers.ts";
import { watchHealth } from "./supervisor/health.ts";
import { pruneCheckpoints } from "./supervisor/prune_checkpoints.ts";
import { abortOnSignals } from "./shutdown.ts";
import type { Position } from "./positions.ts";
import { CheckpointStore } from "./checkpoints.ts";
import { EXIT_CONFIG, EXIT_CRASH, EXIT_ENGINE_UNREACHABLE, EXIT_OK } from "./exit_codes.ts";
import { StdoutPrinter } from "./dry_run.ts";
import { type EngineState, type Snapshot, takeSnapshot } from "./telemetry/snapshot.ts";
import { reportStats } from "./telemetry/stats_report.ts";
import { serveTelemetry } from "./telemetry/server.ts";
import { VERSION } from "./version.ts";

/** Runs the daemon until a signal or a fatal condition; resolves with the exit code. */
export async function runDaemon(config: Config, log: Logger): Promise<number> {
  const { tuning } = config;
  log.info("starting", {
    version: VERSION,
    docker_sock: config.dockerSock,
    brokers: config.dryRun ? undefined : config.brokers.urls.map(redactUrl).join(","),
    exchange: config.dryRun ? undefined : config.exchange,
    dry_run: config.dryRun || undefined,
    overflow: config.overflow,
    buffer_bytes: config.bufferBytes,
    state_dir: config.stateDir,
    metrics_addr: config.metricsAddr && `${config.metricsAddr.hostname}:${config.metricsAddr.port}`,
  });

  // Readers stop on `readers`; the publisher and pool live until draining is over.
  const readers = new AbortController();
  const service = new AbortController();
  let exitCode = EXIT_OK;
  const fail = (code: number, reason: Error) => {
    if (readers.signal.aborted) return;
    exitCode = code;
    readers.abort(reason);
  };
  const removeSignals = abortOnSignals(readers, (sig) => log.info("stopping", { signal: sig }));

  const pool = new ConnectionPool(config.dockerSock, {
    maxIdle: tuning.maxIdleConns,
    idleTimeoutMs: tuning.idleTimeoutMs,
  });
  const docker = new DockerClient(pool, tuning.headerTimeoutMs, log);
  // A dry run publishes nothing, so it must not move the checkpoints either.
  const checkpoints = config.stateDir && !config.dryRun
    ? new CheckpointStore(config.stateDir, log)
    : undefined;
  const positions: Map<string, Position> = checkpoints ? await checkpoints.load() : new Map();
  if (checkpoints) log.info("checkpoints_loaded", { containers: positions.size });
  const queue = new MessageQueue(tuning.queueCapacity, {
    budgetBytes: config.bufferBytes,
    onConfirmed: checkpoints &&
      ((msg) => checkpoints.confirmed(msg.containerId, msg.timestamp, msg.seq)),
  });
  const publisher = config.dryRun ? new StdoutPrinter(queue) : new Publisher({
    brokers: config.brokers,
    exchange: config.exchange,
    queue,
    tuning,
    log,
    debug: config.debug,
  });
  const engine: EngineState = { up: false };
  const supervisor = new Supervisor({ docker, queue, log, config, positions, checkpoints });
  const snapshot = (): Snapshot =>
    takeSnapshot(
      { containers: supervisor, queue, broker: publisher, engine },
      tuning.metricsMaxContainers,
    );
  let metrics: Promise<void> | undefined;
  if (config.metricsAddr) {
    try {
      metrics = serveTelemetry(config.metricsAddr, snapshot, log, service.signal);
    } catch (err) {
      log.error("metrics_listen_failed", { error: describe(err) });
      removeSignals();
      return EXIT_CRASH;
    }
  }

  const publishing = publisher.run(service.signal);
  publisher.firstConnect().catch((err) => {
    if (err instanceof ExchangeMissingError) {
      log.error("exchange_missing", { exchange: config.exchange, error: err.message });
      fail(EXIT_CONFIG, err);
    } else if (!isAbort(err) && !service.signal.aborted) {
      log.error("publisher_failed", { error: describe(err) });
      fail(EXIT_CRASH, err instanceof Error ? err : new Error(String(err)));
    }
  });
  const background = [
    pool.run(service.signal),
    checkpoints && pruneCheckpoints(docker, checkpoints, positions, log, readers.signal),
    checkpoints?.run(tuning.checkpointIntervalMs, service.signal),
    startDropReporter(queue, tuning.dropReportIntervalMs, log, service.signal),
    reportStats(snapshot, tuning.statsIntervalMs, log, service.signal),
    metrics,
    watchHealth(
      docker,
      tuning,
      log,
      () => {
        engine.up = false;
        pool.clear();
      },
      () => {
        log.error("engine_unreachable", { pings_failed: tuning.pingFailuresToExit });
        fail(EXIT_ENGINE_UNREACHABLE, new Error("docker engine unreachable"));
      },
      readers.signal,
      () => engine.up = true,
    ),
  ];

  await supervisor.run(readers.signal, (attached) => {
    engine.up = true;
    log.info("ready", { containers: attached });
  });

  // Readers have stopped: publish what is buffered, then close everything.
  const left = await publisher.drain(tuning.shutdownGraceMs);
  if (left > 0) log.warn("shutdown_unpublished", { lines: left });
  service.abort();
  await publishing;
  await Promise.all(background);
  removeSignals();
  log.info("stopped", { exit_code: exitCode });
  return exitCode;
}
