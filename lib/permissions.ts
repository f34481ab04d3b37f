/**
 * The one source of the daemon's Deno flags. `deno task start`, `deno task compile`, the tests
 * and the benchmark that start the daemon all use `daemonFlags`.
 * @module
 */
import {
  DEFAULT_DOCKER_SOCK,
  ENV_NAMES,
  type EnvReader,
  parseBrokerUrl,
  parseListenAddr,
  permissionPath,
} from "./config.ts";

/** What the command line changes in the permission set. */
export interface FlagOptions {
  /** `--dry-run`: no broker access at all. @default false */
  dryRun?: boolean;
}

/**
 * The flags for the environment given: the Docker socket (net `unix:` plus read and write, which
 * Deno requires to connect to a unix socket), the broker's host:port, the env names karotten
 * reads, `STATE_DIR` read/write only when it is set, and `METRICS_ADDR` (listen) only when it is
 * set. A dry run gets no broker access. Never `-A`. Each flag is one argument: pass them as an
 * argument array, never through a shell. Throws `ConfigError` for a path with a comma (the
 * separator of Deno's permission lists).
 */
export function permissionFlags(env: EnvReader, options: FlagOptions = {}): string[] {
  const sock = permissionPath("DOCKER_SOCK", env("DOCKER_SOCK")?.trim() || DEFAULT_DOCKER_SOCK);
  const net = [`unix:${sock}`];
  const url = env("RABBITMQ_URL")?.trim();
  if (url && !options.dryRun) {
    try {
      const { host, port } = parseBrokerUrl(url);
      net.push(hostPort(host, port));
    } catch {
      // The daemon itself reports the bad URL (exit 2); grant no broker access for it.
    }
  }
  try {
    const metrics = parseListenAddr("METRICS_ADDR", env("METRICS_ADDR"));
    if (metrics) net.push(hostPort(metrics.hostname, metrics.port));
  } catch {
    // The daemon reports the bad address (exit 2); grant nothing for it.
  }
  const read = [sock];
  const write = [sock];
  const stateDir = env("STATE_DIR")?.trim();
  if (stateDir) {
    permissionPath("STATE_DIR", stateDir);
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

function hostPort(host: string, port: number): string {
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/**
 * V8 flags of the daemon: a 1 MiB young generation keeps the heap small under a burst of lines
 * (peak RSS ~100 MB instead of ~157 MB at 20k lines/s, same CPU; see README, Benchmarks).
 */
export const RUNTIME_FLAGS: readonly string[] = ["--v8-flags=--max-semi-space-size=1"];

/** Everything `deno run` / `deno compile` needs for the daemon: permissions and runtime flags. */
export function daemonFlags(env: EnvReader, options: FlagOptions = {}): string[] {
  return [...permissionFlags(env, options), ...RUNTIME_FLAGS];
}
