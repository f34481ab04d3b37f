/**
 * karotten: ships every running Docker container's log lines to a RabbitMQ topic exchange.
 * This file only wires the parts together; see README.md.
 * @module
 */
import { ConfigError, describe, ExchangeMissingError, isAbort } from "./lib/errors.ts";
import { type Config, loadConfig, redactUrl } from "./lib/config.ts";
import { createLogger, type Logger, urlSecrets } from "./lib/log.ts";
import { ConnectionPool } from "./lib/docker/conn.ts";
import { DockerClient } from "./lib/docker/api.ts";
import { MessageQueue } from "./lib/queue.ts";
import { Publisher } from "./lib/amqp/publisher.ts";
import { startDropReporter } from "./lib/drop_report.ts";
import { Supervisor } from "./lib/supervisor/containers.ts";
import { watchHealth } from "./lib/supervisor/health.ts";
import { abortOnSignals } from "./lib/shutdown.ts";
import type { Position } from "./lib/positions.ts";
import { CheckpointStore } from "./lib/checkpoints.ts";
import { EXIT_CONFIG, EXIT_CRASH, EXIT_ENGINE_UNREACHABLE, EXIT_OK } from "./lib/exit_codes.ts";

/** Runs the daemon until a signal or a fatal condition; resolves with the exit code. */
async function run(config: Config, log: Logger): Promise<number> {
  const { tuning } = config;
  log.info("starting", {
    docker_sock: config.dockerSock,
    broker: redactUrl(config.rabbitmqUrl),
    exchange: config.exchange,
    overflow: config.overflow,
    state_dir: config.stateDir,
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
  const queue = new MessageQueue(tuning.queueCapacity);
  const checkpoints = config.stateDir ? new CheckpointStore(config.stateDir, log) : undefined;
  const positions: Map<string, Position> = checkpoints ? await checkpoints.load() : new Map();
  if (checkpoints) {
    queue.onConfirmed = (msg) => checkpoints.confirmed(msg.containerId, msg.timestamp, msg.seq);
    log.info("checkpoints_loaded", { containers: positions.size });
  }
  const publisher = new Publisher({
    url: config.rabbitmqUrl,
    exchange: config.exchange,
    queue,
    tuning,
    log,
    debug: config.debug,
  });

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
    checkpoints?.run(tuning.checkpointIntervalMs, service.signal),
    startDropReporter(queue, tuning.dropReportIntervalMs, log, service.signal),
    watchHealth(docker, tuning, log, () => pool.clear(), () => {
      log.error("engine_unreachable", { pings_failed: tuning.pingFailuresToExit });
      fail(EXIT_ENGINE_UNREACHABLE, new Error("docker engine unreachable"));
    }, readers.signal),
  ];

  const supervisor = new Supervisor({ docker, queue, log, config, positions, checkpoints });
  await supervisor.run(readers.signal, (attached) => log.info("ready", { containers: attached }));

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

if (import.meta.main) {
  let config: Config;
  try {
    config = loadConfig((name) => Deno.env.get(name));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`karotten: configuration error: ${err.message}`);
    Deno.exit(EXIT_CONFIG);
  }
  const log = createLogger({ debug: config.debug, secrets: urlSecrets(config.rabbitmqUrl) });
  try {
    Deno.exit(await run(config, log));
  } catch (err) {
    log.error("crashed", { error: describe(err) });
    Deno.exit(EXIT_CRASH);
  }
}
