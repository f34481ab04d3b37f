/**
 * The text of `karotten --help`: usage, every environment variable with its default and
 * meaning, and the exit codes. The variable table is typed by `ENV_NAMES`: a variable added to
 * the configuration without a help entry does not compile.
 * @module
 */
import {
  DEFAULT_BUFFER_BYTES,
  DEFAULT_DOCKER_SOCK,
  DEFAULT_EXCHANGE,
  DEFAULT_MAX_CONTAINERS,
  DEFAULT_MAX_LINE_BYTES,
  DEFAULT_OVERFLOW,
  DEFAULT_PAUSE_BUFFER_BYTES,
  ENV_NAMES,
} from "../config.ts";
import { EXIT_CONFIG, EXIT_CRASH, EXIT_ENGINE_UNREACHABLE, EXIT_OK } from "../exit_codes.ts";
import { IGNORE_LABEL } from "../filter.ts";
import { VERSION } from "../version.ts";

/** One variable's help: its default (or `required`/`unset`) and what it does. */
export interface VariableHelp {
  /** Shown in the default column. */
  readonly default: string;
  /** One line. */
  readonly meaning: string;
}

/** Help for every variable karotten reads, in `ENV_NAMES` order. */
export const VARIABLE_HELP: Readonly<Record<(typeof ENV_NAMES)[number], VariableHelp>> = {
  RABBITMQ_URL: {
    default: "required",
    meaning: "broker(s), amqp[s]://user:pass@host:port/vhost, comma-separated (not with --dry-run)",
  },
  RABBITMQ_URLS: { default: "unset", meaning: "the same list under another name (set only one)" },
  RABBITMQ_URL_FILE: {
    default: "unset",
    meaning: "file holding the list, read once at start (instead of RABBITMQ_URL)",
  },
  RABBITMQ_CA_FILE: { default: "system CAs", meaning: "PEM CA certificates trusted for amqps://" },
  RABBITMQ_CERT_FILE: {
    default: "unset",
    meaning: "PEM client certificate for amqps:// (no user in the URL: EXTERNAL login)",
  },
  RABBITMQ_KEY_FILE: { default: "unset", meaning: "its PEM private key" },
  CREDENTIALS_DIRECTORY: {
    default: "unset",
    meaning: "set by systemd: the list is read from its rabbitmq-url when no other is set",
  },
  EXCHANGE: {
    default: DEFAULT_EXCHANGE,
    meaning: "existing topic exchange, checked passively at start",
  },
  DOCKER_SOCK: { default: DEFAULT_DOCKER_SOCK, meaning: "the engine's unix socket" },
  DEBUG: { default: "off", meaning: "1: log every Docker request and published message" },
  OVERFLOW: {
    default: DEFAULT_OVERFLOW,
    meaning: "full buffer: pause reading Docker (lines wait in its log file), or drop (counted)",
  },
  STATE_DIR: { default: "unset", meaning: "folder for checkpoints: resume across restarts" },
  MAX_LINE_BYTES: {
    default: String(DEFAULT_MAX_LINE_BYTES),
    meaning: "longest message; longer lines are cut into pieces",
  },
  MAX_CONTAINERS: {
    default: String(DEFAULT_MAX_CONTAINERS),
    meaning: "containers attached at once (one socket each; keep LimitNOFILE above it)",
  },
  BUFFER_BYTES: {
    default: `${DEFAULT_PAUSE_BUFFER_BYTES}; ${DEFAULT_BUFFER_BYTES} with OVERFLOW=drop`,
    meaning: "message bytes the buffer holds, beside its 8192 messages; one longer line passes",
  },
  KAROTTEN_TUNING: { default: "unset", meaning: "JSON overriding intervals and limits" },
  INCLUDE: {
    default: "unset",
    meaning: "comma-separated globs on <project>/<service> or the name: ship only these",
  },
  EXCLUDE: { default: "unset", meaning: "comma-separated globs: never ship these (wins)" },
  INCLUDE_LABEL: {
    default: "unset",
    meaning: "comma-separated key=value: ship only containers with all these labels",
  },
  METRICS_ADDR: {
    default: "unset",
    meaning: "host:port serving /metrics (Prometheus) and /healthz, e.g. 127.0.0.1:9464",
  },
};

/** The whole `--help` text, ending in a newline. */
export function helpText(): string {
  const names = ENV_NAMES as readonly (keyof typeof VARIABLE_HELP)[];
  const rows = names.map((n) => {
    const { default: def, meaning } = VARIABLE_HELP[n];
    return `  ${n} (${def})\n      ${meaning}`;
  });
  return [
    `karotten ${VERSION}: ships every running Docker container's log lines to a RabbitMQ topic`,
    "exchange, one message per line, routing key <project>.<service>.<stream>.",
    "",
    "Usage: karotten [--dry-run]",
    "       karotten --help | --version",
    "",
    "Options:",
    "  --dry-run   print '<routing key> <envelope JSON>' lines to stdout instead of publishing",
    "  --help, -h  this text",
    "  --version   the version",
    "",
    "Environment:",
    ...rows,
    `  A container labelled ${IGNORE_LABEL}=true is never shipped.`,
    "",
    "Exit codes:",
    `  ${EXIT_OK}  stopped by SIGTERM/SIGINT after publishing what was buffered`,
    `  ${EXIT_CRASH}  internal error`,
    `  ${EXIT_CONFIG}  unknown option, bad configuration (the message names the variable), or the`,
    "     exchange missing at start: a restart cannot fix it",
    `  ${EXIT_ENGINE_UNREACHABLE}  the Docker engine stopped answering pings`,
    "",
  ].join("\n");
}
