/**
 * The one source of the daemon's Deno permission flags. `deno task start`, `deno task compile`
 * and the tests that start the daemon all use `permissionFlags`.
 * @module
 */
import { DEFAULT_DOCKER_SOCK, ENV_NAMES, type EnvReader, parseBrokerUrl } from "./config.ts";

/**
 * The flags for the environment given: the Docker socket (net `unix:` plus read and write, which
 * Deno requires to connect to a unix socket), the broker's host:port, the env names karotten
 * reads, and `STATE_DIR` read/write only when it is set. Never `-A`.
 */
export function permissionFlags(env: EnvReader): string[] {
  const sock = env("DOCKER_SOCK")?.trim() || DEFAULT_DOCKER_SOCK;
  const net = [`unix:${sock}`];
  const url = env("RABBITMQ_URL")?.trim();
  if (url) {
    try {
      const { host, port } = parseBrokerUrl(url);
      net.push(`${host.includes(":") ? `[${host}]` : host}:${port}`);
    } catch {
      // The daemon itself reports the bad URL (exit 2); grant no broker access for it.
    }
  }
  const read = [sock];
  const write = [sock];
  const stateDir = env("STATE_DIR")?.trim();
  if (stateDir) {
    read.push(stateDir);
    write.push(stateDir);
  }
  return [
    `--allow-net=${net.join(",")}`,
    `--allow-read=${read.join(",")}`,
    `--allow-write=${write.join(",")}`,
    `--allow-env=${ENV_NAMES.join(",")}`,
    "--no-prompt",
  ];
}
