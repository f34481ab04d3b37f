/**
 * karotten: ships every running Docker container's log lines to a RabbitMQ topic exchange.
 * This file only wires command line, configuration, logger and daemon together; see README.md.
 * @module
 */
import { type Config, loadConfig } from "./lib/config.ts";
import { assertBrokersPermitted } from "./lib/broker_config.ts";
import { ConfigError, describe } from "./lib/errors.ts";
import { createLogger } from "./lib/log.ts";
import { runDaemon } from "./lib/daemon.ts";
import { EXIT_CONFIG, EXIT_CRASH, EXIT_OK } from "./lib/exit_codes.ts";
import { installLastResort } from "./lib/last_resort.ts";
import { type CliCommand, parseArgs, UsageError } from "./lib/cli/args.ts";
import { helpText } from "./lib/cli/help.ts";
import { VERSION } from "./lib/version.ts";

if (import.meta.main) {
  const useLogger = installLastResort(createLogger());
  let command: CliCommand;
  try {
    command = parseArgs(Deno.args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`karotten: ${err.message} (see karotten --help)`);
    Deno.exit(EXIT_CONFIG);
  }
  if (command.kind === "help") {
    await Deno.stdout.write(new TextEncoder().encode(helpText()));
    Deno.exit(EXIT_OK);
  }
  if (command.kind === "version") {
    console.log(`karotten ${VERSION} (deno ${Deno.version.deno})`);
    Deno.exit(EXIT_OK);
  }
  let config: Config;
  try {
    config = loadConfig((name) => Deno.env.get(name), { dryRun: command.dryRun });
    assertBrokersPermitted(config.brokers);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`karotten: configuration error: ${err.message}`);
    Deno.exit(EXIT_CONFIG);
  }
  const log = createLogger({ debug: config.debug, urls: config.brokers.urls });
  useLogger(log);
  try {
    Deno.exit(await runDaemon(config, log));
  } catch (err) {
    log.error("crashed", { error: describe(err) });
    Deno.exit(EXIT_CRASH);
  }
}
