/**
 * The one source of the daemon's Deno flags. `deno task start`, `deno task compile`, the tests
 * and the benchmark that start the daemon all use `daemonFlags`.
 * @module
 */
import {
  DEFAULT_DOCKER_SOCK,
  ENV_NAMES,
  type EnvReader,
  parseListenAddr,
  permissionPath,
} from "./config.ts";
import {
  netAddress,
  parseBrokerUrl,
  resolveUrls,
  type TextFileReader,
  TLS_FILE_VARIABLES,
} from "./broker_config.ts";

/** What the command line changes in the permission set. */
export interface FlagOptions {
  /** `--dry-run`: no broker access at all. @default false */
  dryRun?: boolean;
  /** Reads the URL file the environment names. @default Deno.readTextFileSync */
  readFile?: TextFileReader;
}

/**
 * The flags for the environment given: the Docker socket (net `unix:` plus read and write, which
 * Deno requires to connect to a unix socket), every broker's host:port, the env names karotten
 * reads, read on `RABBITMQ_URL_FILE`, `$CREDENTIALS_DIRECTORY` and the TLS files only when they
 * are set, `STATE_DIR` read/write only when it is set, and `METRICS_ADDR` (listen) only when it
 * is set. A dry run gets no broker access. Never `-A`. Each flag is one argument: pass them as an
 * argument array, never through a shell. Throws `ConfigError` for a path with a comma (the
 * separator of Deno's permission lists).
 *
 * The broker list is resolved as the daemon does (`resolveUrls`), reading the URL file when
 * `readFile` can; when it cannot (a build machine without the secret), no broker is granted from
 * it: give the hosts there as `RABBITMQ_URLS` without credentials instead.
 */
export function permissionFlags(env: EnvReader, options: FlagOptions = {}): string[] {
  const sock = permissionPath("DOCKER_SOCK", env("DOCKER_SOCK")?.trim() || DEFAULT_DOCKER_SOCK);
  const net = [`unix:${sock}`];
  if (!options.dryRun) {
    for (const address of brokerAddresses(env, options.readFile ?? Deno.readTextFileSync)) {
      if (!net.includes(address)) net.push(address);
    }
  }
  try {
    const metrics = parseListenAddr("METRICS_ADDR", env("METRICS_ADDR"));
    if (metrics) net.push(netAddress({ host: metrics.hostname, port: metrics.port }));
  } catch {
    // The daemon reports the bad address (exit 2); grant nothing for it.
  }
  const read = [sock];
  const write = [sock];
  for (const name of ["RABBITMQ_URL_FILE", "CREDENTIALS_DIRECTORY", ...TLS_FILE_VARIABLES]) {
    const path = env(name)?.trim();
    if (path) read.push(permissionPath(name, path));
  }
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

/** `host:port` of every broker, or none when the list cannot be resolved. */
function brokerAddresses(env: EnvReader, readFile: TextFileReader): string[] {
  try {
    const { urls, variable } = resolveUrls(env, readFile);
    return urls.map((url) => netAddress(parseBrokerUrl(url, variable)));
  } catch {
    // The daemon itself reports the bad list (exit 2); grant no broker access for it.
    return [];
  }
}

/**
 * Runtime flags of the daemon. No V8 code cache: the daemon compiles its code once per start,
 * and the cache costs ~4 MiB of idle RSS for its whole life (the cache database's pages and
 * connection, and the code it deserializes). V8: a 1 MiB young generation keeps the heap small
 * under a burst of lines (peak RSS ~100 MB instead of ~157 MB at 20k lines/s, same CPU), and the
 * old generation may grow by half its live size between full collections instead of by V8's
 * own, larger factor: every buffered message outlives a young collection, so the growth is
 * mostly dead messages (peak RSS under a 200,000-line burst ~99 MB instead of ~116, same CPU;
 * see README, Benchmarks). Efficiency mode (V8: for work without latency needs, fewer threads)
 * takes ~6 MiB more off a burst's peak at the same CPU per line.
 */
export const RUNTIME_FLAGS: readonly string[] = [
  "--no-code-cache",
  "--v8-flags=--max-semi-space-size=1,--heap-growing-percent=50,--efficiency-mode",
];

/** Everything `deno run` / `deno compile` needs for the daemon: permissions and runtime flags. */
export function daemonFlags(env: EnvReader, options: FlagOptions = {}): string[] {
  return [...permissionFlags(env, options), ...RUNTIME_FLAGS];
}
