/**
 * karotten: ships every running Docker container's log lines to a RabbitMQ topic exchange.
 * This file only wires configuration, logger and daemon together; see README.md.
 * @module
 */
import { type Config, loadConfig } from "./lib/config.ts";
import { ConfigError, describe } from "./lib/errors.ts";
import { createLogger, urlSecrets } from "./lib/log.ts";
import { runDaemon } from "./lib/daemon.ts";
import { EXIT_CONFIG, EXIT_CRASH } from "./lib/exit_codes.ts";

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
    Deno.exit(await runDaemon(config, log));
  } catch (err) {
    log.error("crashed", { error: describe(err) });
    Deno.exit(EXIT_CRASH);
  }
}
