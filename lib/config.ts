/**
 * Configuration: read once from the environment, validated, frozen.
 * Every default, interval and limit lives here, named with its unit.
 * @module
 */
import { ConfigError } from "./errors.ts";
import { type FilterRules, type LabelMatch, splitList } from "./filter.ts";
import {
  type BrokerConfig,
  loadBrokerConfig,
  type TextFileReader,
  TLS_FILE_VARIABLES,
  URL_VARIABLES,
} from "./broker_config.ts";

export { type BrokerEndpoint, parseBrokerUrl } from "./broker_config.ts";

/**
 * What a full buffer does: `pause` reading Docker until there is room (the default: the lines
 * wait in the engine's log file), or `drop` the newest line and count it (the seed's behaviour).
 */
export type OverflowPolicy = "drop" | "pause";

/** Intervals and limits. The seed's defaults; `KAROTTEN_TUNING` may override them (tests, tuning). */
export interface Tuning {
  /** Wait for the status line and headers of any Docker response. @default 15000 */
  headerTimeoutMs: number;
  /** An idle pooled socket connection is closed after this. @default 60000 */
  idleTimeoutMs: number;
  /** Idle socket connections kept for reuse. @default 4 */
  maxIdleConns: number;
  /** No event for this long -> the events stream is reconnected. @default 180000 */
  eventsWatchdogMs: number;
  /** Reconcile attachments with `/containers/json` this often. @default 60000 */
  reconcileIntervalMs: number;
  /** `/_ping` period. @default 30000 */
  pingIntervalMs: number;
  /** Consecutive failed pings that make the daemon exit (code 3). @default 3 */
  pingFailuresToExit: number;
  /** Messages the buffer holds, published or not yet confirmed. @default 8192 */
  queueCapacity: number;
  /** A container whose line being read is older than this gets a `lagging` warning. @default 60000 */
  lagWarnMs: number;
  /** Report dropped lines this often while any were dropped. @default 60000 */
  dropReportIntervalMs: number;
  /** First wait before an AMQP reconnect. @default 500 */
  amqpBackoffInitialMs: number;
  /** Longest wait between AMQP reconnects. @default 30000 */
  amqpBackoffMaxMs: number;
  /**
   * Longest wait after an attempt the broker refused outright (nothing listening: it costs the
   * broker nothing), so that publishing resumes soon after it comes back. Jittered like the
   * backoff; never more than `amqpBackoffMaxMs`. @default 1000
   */
  amqpProbeIntervalMs: number;
  /** First wait before re-attaching a logs stream that ended while its container runs. @default 250 */
  reattachBackoffInitialMs: number;
  /** Longest such wait. @default 30000 */
  reattachBackoffMaxMs: number;
  /** Time allowed on SIGTERM to publish what is buffered. @default 5000 */
  shutdownGraceMs: number;
  /** Checkpoints are written at most this often (with `STATE_DIR`). @default 1000 */
  checkpointIntervalMs: number;
  /** Messages published and not yet confirmed, at most. @default 512 */
  publishWindow: number;
  /** After a `die` event, the logs stream gets this long to end by itself. @default 5000 */
  dieGraceMs: number;
  /**
   * TCP connect plus AMQP handshake must finish within this; then, within as long again, the
   * broker must answer channel.open and the passive exchange check. @default 5000
   */
  amqpConnectTimeoutMs: number;
  /** A clean AMQP close gets this long before the socket is destroyed. @default 1000 */
  amqpCloseTimeoutMs: number;
  /** The one-line stats summary is logged this often. @default 60000 */
  statsIntervalMs: number;
  /** Containers with their own series on `/metrics`, at most. @default 500 */
  metricsMaxContainers: number;
}

/** The seed's defaults. */
export const DEFAULT_TUNING: Readonly<Tuning> = Object.freeze({
  headerTimeoutMs: 15_000,
  idleTimeoutMs: 60_000,
  maxIdleConns: 4,
  eventsWatchdogMs: 180_000,
  reconcileIntervalMs: 60_000,
  pingIntervalMs: 30_000,
  pingFailuresToExit: 3,
  queueCapacity: 8192,
  lagWarnMs: 60_000,
  dropReportIntervalMs: 60_000,
  amqpBackoffInitialMs: 500,
  amqpBackoffMaxMs: 30_000,
  amqpProbeIntervalMs: 1_000,
  reattachBackoffInitialMs: 250,
  reattachBackoffMaxMs: 30_000,
  shutdownGraceMs: 5_000,
  checkpointIntervalMs: 1_000,
  publishWindow: 512,
  dieGraceMs: 5_000,
  amqpConnectTimeoutMs: 5_000,
  amqpCloseTimeoutMs: 1_000,
  statsIntervalMs: 60_000,
  metricsMaxContainers: 500,
});

/** Default exchange name. */
export const DEFAULT_EXCHANGE = "containers-logs";
/** Default Docker socket. */
export const DEFAULT_DOCKER_SOCK = "/var/run/docker.sock";
/** Default cap for one merged log line, bytes (1 MiB). */
export const DEFAULT_MAX_LINE_BYTES = 1 << 20;
/**
 * Default byte budget of the buffer with `OVERFLOW=drop`: message bodies held at most (8 MiB).
 * It holds the 8192 messages of lines up to ~800 bytes (the seed's buffer); longer lines are
 * dropped sooner, and memory stays within reach of the heap that holds them.
 */
export const DEFAULT_BUFFER_BYTES = 8 << 20;
/**
 * Default byte budget with `OVERFLOW=pause` (the default): 1 MiB, ~3,000 messages of 100-byte
 * lines. There the engine's log file is the real buffer: the budget changes where a backlog
 * waits, not how fast it drains, and each message held in a burst outlives V8's young
 * generation, so a smaller budget is a smaller heap (see README, Benchmarks).
 */
export const DEFAULT_PAUSE_BUFFER_BYTES = 1 << 20;
/** Default full-buffer policy. */
export const DEFAULT_OVERFLOW: OverflowPolicy = "pause";

/** Default cap on attached containers (`MAX_CONTAINERS`): one socket each. */
export const DEFAULT_MAX_CONTAINERS = 2000;
/**
 * File descriptors karotten needs besides one per attached container: the events stream, the
 * idle pool, pings and inspects in flight, the broker, the checkpoint file, the runtime's own.
 * `MAX_CONTAINERS` plus this must fit the unit's `LimitNOFILE`.
 */
export const FD_MARGIN = 256;

/** Longest `/containers/json` answer read, bytes (16 MiB: thousands of containers). */
export const MAX_LIST_BYTES = 16 << 20;
/** Longest `/containers/{id}/json` answer read, bytes (4 MiB). */
export const MAX_INSPECT_BYTES = 4 << 20;
/** Longest `/_ping` answer read, bytes. */
export const MAX_PING_BYTES = 4 << 10;
/** Longest error body read (any endpoint), bytes. */
export const MAX_ERROR_BODY_BYTES = 64 << 10;
/** Longest line of the `/events` body, bytes (1 MiB: an event carries the container's labels). */
export const MAX_EVENT_LINE_BYTES = 1 << 20;

/** The environment variables karotten reads: the permission set allows exactly these. */
export const ENV_NAMES = [
  ...URL_VARIABLES,
  ...TLS_FILE_VARIABLES,
  "CREDENTIALS_DIRECTORY",
  "EXCHANGE",
  "DOCKER_SOCK",
  "DEBUG",
  "OVERFLOW",
  "STATE_DIR",
  "MAX_LINE_BYTES",
  "MAX_CONTAINERS",
  "BUFFER_BYTES",
  "KAROTTEN_TUNING",
  "INCLUDE",
  "EXCLUDE",
  "INCLUDE_LABEL",
  "METRICS_ADDR",
] as const;

/** A TCP address to listen on. */
export interface ListenAddr {
  /** Host name or address (IPv6 without brackets). */
  readonly hostname: string;
  /** Port, 1-65535. */
  readonly port: number;
}

/** Options of `loadConfig` that come from the command line. */
export interface LoadOptions {
  /** `--dry-run`: print instead of publishing; no broker variable is needed or read. */
  dryRun?: boolean;
  /** Reads the files the environment names. @default Deno.readTextFileSync */
  readFile?: TextFileReader;
}

/** The brokers of a dry run: none. */
const NO_BROKERS: BrokerConfig = Object.freeze({
  urls: Object.freeze([]),
  tls: Object.freeze({}),
  variable: "RABBITMQ_URL",
});

/** The validated configuration. */
export interface Config {
  /** The brokers, in order, and the TLS material (URLs hold passwords: see `redactUrl`); none in a dry run. */
  readonly brokers: BrokerConfig;
  /** `--dry-run`: lines go to stdout, nothing to a broker. */
  readonly dryRun: boolean;
  /** Topic exchange to publish into (passively declared). */
  readonly exchange: string;
  /** Docker Engine unix socket path. */
  readonly dockerSock: string;
  /** Log every published message. */
  readonly debug: boolean;
  /** Full-buffer policy. */
  readonly overflow: OverflowPolicy;
  /** Checkpoint folder; undefined: no resume across restarts. */
  readonly stateDir: string | undefined;
  /** Longest message; longer lines are cut into pieces of this size. */
  readonly maxLineBytes: number;
  /** Which containers are shipped (`INCLUDE`, `EXCLUDE`, `INCLUDE_LABEL`). */
  readonly filters: FilterRules;
  /** Where `/metrics` and `/healthz` are served (`METRICS_ADDR`); undefined: not served. */
  readonly metricsAddr: ListenAddr | undefined;
  /** Containers attached at most at once. */
  readonly maxContainers: number;
  /** Body bytes the buffer holds at most (a single larger message passes alone). */
  readonly bufferBytes: number;
  /** Intervals and limits. */
  readonly tuning: Readonly<Tuning>;
}

/** Reads an environment variable; `Deno.env.get` in the daemon, a map in tests. */
export type EnvReader = (name: string) => string | undefined;

/**
 * Parses and validates the environment, reading the files it names (URL list, TLS) once;
 * throws `ConfigError` naming the variable.
 */
export function loadConfig(env: EnvReader, options: LoadOptions = {}): Config {
  const dryRun = options.dryRun ?? false;
  const brokers = dryRun
    ? NO_BROKERS
    : loadBrokerConfig(env, options.readFile ?? Deno.readTextFileSync);
  const exchange = nonEmpty(env("EXCHANGE")) ?? DEFAULT_EXCHANGE;
  if (exchange.length > 255) throw new ConfigError("EXCHANGE", "is longer than 255 bytes");
  const dockerSock = nonEmpty(env("DOCKER_SOCK")) ?? DEFAULT_DOCKER_SOCK;
  if (!dockerSock.startsWith("/")) {
    throw new ConfigError("DOCKER_SOCK", `must be an absolute socket path, got "${dockerSock}"`);
  }
  permissionPath("DOCKER_SOCK", dockerSock);
  const overflowRaw = nonEmpty(env("OVERFLOW")) ?? DEFAULT_OVERFLOW;
  if (overflowRaw !== "drop" && overflowRaw !== "pause") {
    throw new ConfigError("OVERFLOW", `must be "drop" or "pause", got "${overflowRaw}"`);
  }
  const stateDir = nonEmpty(env("STATE_DIR"));
  if (stateDir !== undefined && !stateDir.startsWith("/")) {
    throw new ConfigError("STATE_DIR", `must be an absolute path, got "${stateDir}"`);
  }
  if (stateDir !== undefined) permissionPath("STATE_DIR", stateDir);
  const maxLineBytes = positiveInt("MAX_LINE_BYTES", env("MAX_LINE_BYTES")) ??
    DEFAULT_MAX_LINE_BYTES;
  const bufferBytes = positiveInt("BUFFER_BYTES", env("BUFFER_BYTES")) ??
    (overflowRaw === "pause" ? DEFAULT_PAUSE_BUFFER_BYTES : DEFAULT_BUFFER_BYTES);
  return Object.freeze({
    brokers,
    dryRun,
    exchange,
    dockerSock,
    debug: truthy(env("DEBUG")),
    overflow: overflowRaw,
    stateDir,
    maxLineBytes,
    filters: Object.freeze({
      include: splitList(env("INCLUDE")),
      exclude: splitList(env("EXCLUDE")),
      includeLabels: parseLabelMatches(env("INCLUDE_LABEL")),
    }),
    metricsAddr: parseListenAddr("METRICS_ADDR", env("METRICS_ADDR")),
    maxContainers: positiveInt("MAX_CONTAINERS", env("MAX_CONTAINERS")) ?? DEFAULT_MAX_CONTAINERS,
    bufferBytes,
    tuning: Object.freeze(parseTuning(env("KAROTTEN_TUNING"))),
  });
}

/** `INCLUDE_LABEL`: comma-separated `key=value` pairs. */
function parseLabelMatches(raw: string | undefined): LabelMatch[] {
  return splitList(raw).map((item) => {
    const eq = item.indexOf("=");
    if (eq <= 0) {
      throw new ConfigError("INCLUDE_LABEL", `must be key=value[,key=value...], got "${item}"`);
    }
    return { key: item.slice(0, eq).trim(), value: item.slice(eq + 1).trim() };
  });
}

/**
 * A `host:port` to listen on (`127.0.0.1:9464`, `[::1]:9464`); undefined when unset. Throws
 * `ConfigError` naming `variable` when it has no host or no valid port.
 */
export function parseListenAddr(variable: string, raw: string | undefined): ListenAddr | undefined {
  const t = nonEmpty(raw);
  if (t === undefined) return undefined;
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\[\]]+)):(\d{1,5})$/.exec(t);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535) {
    throw new ConfigError(variable, `must be host:port (e.g. 127.0.0.1:9464), got "${t}"`);
  }
  return Object.freeze({ hostname: m[1] ?? m[2], port });
}

/** The URL with its password replaced by `***`: the only form of it that may be logged. */
export function redactUrl(raw: string): string {
  try {
    const url = new URL(raw);
    if (url.password !== "") url.password = "***";
    return url.toString();
  } catch {
    return "<invalid url>";
  }
}

/**
 * Refuses a path that cannot be one entry of a Deno permission list: those lists are
 * comma-separated, so `/a.sock,b` would grant `b` as well.
 */
export function permissionPath(variable: string, path: string): string {
  if (path.includes(",")) {
    throw new ConfigError(variable, `must not contain a comma (got "${path}")`);
  }
  return path;
}

function parseTuning(raw: string | undefined): Tuning {
  const tuning: Tuning = { ...DEFAULT_TUNING };
  if (nonEmpty(raw) === undefined) return tuning;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw!);
  } catch (err) {
    throw new ConfigError("KAROTTEN_TUNING", "is not valid JSON", { cause: err });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError("KAROTTEN_TUNING", "must be a JSON object");
  }
  for (const [key, value] of Object.entries(parsed)) {
    if (!(key in DEFAULT_TUNING)) {
      throw new ConfigError("KAROTTEN_TUNING", `unknown field "${key}"`);
    }
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
      throw new ConfigError("KAROTTEN_TUNING", `field "${key}" must be a positive number`);
    }
    tuning[key as keyof Tuning] = value;
  }
  return tuning;
}

function nonEmpty(v: string | undefined): string | undefined {
  const t = v?.trim();
  return t === undefined || t === "" ? undefined : t;
}

function truthy(v: string | undefined): boolean {
  const t = nonEmpty(v)?.toLowerCase();
  return t !== undefined && t !== "0" && t !== "false" && t !== "no" && t !== "off";
}

function positiveInt(name: string, v: string | undefined): number | undefined {
  const t = nonEmpty(v);
  if (t === undefined) return undefined;
  const n = Number(t);
  if (!Number.isInteger(n) || n <= 0) {
    throw new ConfigError(name, `must be a positive whole number, got "${t}"`);
  }
  return n;
}
